"""All configuration, read from environment variables once and passed in: one typed object of groups by concern
(index, classification, llm, lookup, service, corrections, operations, jobs), each group a pydantic-settings model that
reads its own variables. Code reads `settings.llm.timeout_s`; an operator sets LLM_TIMEOUT.

A setting's flat name is its environment variable in lower case, without MOVIEGENRE_ (`llm_timeout`,
`max_in_flight`): `Settings(llm_backend="none")` and `settings.replace(max_in_flight=2)` take those."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "MOVIEGENRE_"


class ConfigurationError(ValueError):
    """Settings the service refuses to start with; the message says which and why."""


def named_secrets(value: str, default_name: str | None = None) -> dict[str, str]:
    """Secret → name, from "name:secret" pairs, comma-separated. With a `default_name`, a value holding neither
    separator is one secret of that name. Raises ValueError for anything else: an entry that is not exactly one
    pair (a name or a secret holding ':' or ',' cannot be told apart from the pairs), a blank name or secret, one
    secret given two names. The message never shows a secret."""
    value = value.strip()
    if default_name is not None and not any(separator in value for separator in ":,"):
        return {value: default_name} if value else {}
    secrets: dict[str, str] = {}
    for number, entry in enumerate(value.split(","), start=1):
        name, colon, secret = (part.strip() for part in entry.partition(":"))
        if not (colon and name and secret) or ":" in secret:
            raise ValueError(f"entry {number} is not one 'name:secret' pair (a name or a secret may hold neither "
                             "':' nor ',', and neither may be blank)")
        if secrets.setdefault(secret, name) != name:
            raise ValueError(f"entry {number} gives another name's secret to {name!r}")
    return secrets


def _pairs(value: SecretStr | None) -> SecretStr | None:
    if value is not None and value.get_secret_value().strip():
        named_secrets(value.get_secret_value())
    return value


def _blank_is_none(value):
    """An empty value is no value: for a secret, a compose file's unset variable keeps the route or source it guards
    off, never open."""
    return None if isinstance(value, str) and not value.strip() else value


def _a_rate(value: str | None) -> str | None:
    if value is not None:
        from limits import parse

        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"a rate limit must read like '60/minute' or '10/second', not {value!r}") from exc
    return value


class Group(BaseSettings):
    """A group of settings, each read from its environment variable (the field's alias)."""
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    @classmethod
    def alias_of(cls, field: str) -> str:
        return cls.model_fields[field].alias


class IndexSettings(Group):
    data: Path = Field(PROJECT_ROOT.parent / "shared" / "data" / "reference", alias="MOVIEGENRE_DATA")
    dir: Path = Field(PROJECT_ROOT / "index", alias="MOVIEGENRE_INDEX_DIR")
    embedding_model: str = Field("all-MiniLM-L6-v2", alias="MOVIEGENRE_EMBEDDING_MODEL")
    # for descriptions in other languages; "" turns the multilingual path off
    multilingual_model: str = Field("multilingual-e5-small", alias="MOVIEGENRE_MULTILINGUAL_MODEL")
    # where build-index keeps the exported int8 ONNX models (default: <index>/models)
    models_dir: Path | None = Field(None, alias="MOVIEGENRE_MODELS_DIR")
    # texts embedded in parallel, one core each (see embedding/onnx.py); the cores of the machine
    embed_workers: int = Field(2, ge=1, alias="MOVIEGENRE_EMBED_WORKERS")

    def exported_models(self) -> Path:
        return self.models_dir or self.dir / "models"

    def dev_eval(self) -> Path:
        """The development evaluation files beside the reference corpus (../shared/data/dev-eval)."""
        return self.data.parent / "dev-eval"

    def part_models(self) -> dict[str, str]:
        """Index part → embedding model: the English part always, the multilingual one unless turned off."""
        return {"english": self.embedding_model} | (
            {"multilingual": self.multilingual_model} if self.multilingual_model else {})


class ClassificationSettings(Group):
    top_k: int = Field(25, ge=1, le=200, alias="MOVIEGENRE_TOP_K")
    prompt_examples: int = Field(8, ge=0, le=25, alias="MOVIEGENRE_PROMPT_EXAMPLES")
    # None: the threshold tuned on a validation split at build time.
    threshold: float | None = Field(None, gt=0, lt=1, alias="MOVIEGENRE_THRESHOLD")
    max_genres: int = Field(5, ge=1, le=10, alias="MOVIEGENRE_MAX_GENRES")
    # a description of a film the reference holds is answered with that film's labels (recognition.py)
    recognise_films: bool = Field(True, alias="MOVIEGENRE_RECOGNISE_FILMS")
    # the LLM's say when its model was never calibrated (`make calibrate-llm`; see calibration.py)
    fusion_weight: float = Field(0.2, ge=0, le=1, alias="MOVIEGENRE_FUSION_WEIGHT")
    fusion_floor: float = Field(0.1, ge=0, le=1, alias="MOVIEGENRE_FUSION_FLOOR")


class LLMSettings(Group):
    backend: Literal["ollama", "openai", "none"] = Field("ollama", alias="LLM_BACKEND")
    # a request's budget for the LLM (its queue and its answer); a file run's for each answer
    timeout_s: float = Field(20.0, gt=0, alias="LLM_TIMEOUT")
    # questions in flight to each LLM server at once, from one process: its parallel slots (OLLAMA_NUM_PARALLEL,
    # llama.cpp's --parallel)
    concurrency: int = Field(4, ge=1, le=64, alias="LLM_CONCURRENCY")
    # seconds a server of a pool that failed is set aside before it is probed back (llm/breaker.py)
    cooldown_s: float = Field(15.0, gt=0, le=3600, alias="LLM_COOLDOWN")
    # answers kept in memory by model and prompt: a repeated description makes no second call
    cache_size: int = Field(4096, ge=1, alias="LLM_CACHE_SIZE")
    # one server, or a pool of them, comma-separated (each with its own LLM_CONCURRENCY slots; llm/pool.py)
    ollama_host: str = Field("http://127.0.0.1:11434", alias="OLLAMA_HOST")
    ollama_model: str = Field("qwen2:7b", alias="OLLAMA_MODEL")
    openai_base_url: str = Field("http://127.0.0.1:8080/v1", alias="OPENAI_BASE_URL")
    openai_api_key: SecretStr = Field(SecretStr("not-needed"), alias="OPENAI_API_KEY")
    openai_model: str = Field("qwen2-7b-instruct", alias="OPENAI_MODEL")

    _servers = field_validator("ollama_host", "openai_base_url")(lambda value: _names_a_server(value))

    def servers(self) -> list[str]:
        """The configured backend's servers, in the order given (none for the vote alone)."""
        if self.backend == "none":
            return []
        return _servers_of(self.ollama_host if self.backend == "ollama" else self.openai_base_url)

    def model(self) -> str | None:
        return {"ollama": self.ollama_model, "openai": self.openai_model}.get(self.backend)

    def identity(self) -> dict[str, str] | None:
        """The configured LLM as its backend names it (llm/base.py identity()); None for the vote alone. A pool is
        named by its first server: the others serve its model or are kept out of the pool (llm/pool.py), so
        answers and calibrations kept for one server hold for the pool it leads."""
        if self.backend == "none":
            return None
        return {"backend": self.backend, "model": self.model(), "base_url": self.servers()[0]}


def _names_a_server(value: str) -> str:
    _servers_of(value)
    return value


def _servers_of(value: str) -> list[str]:
    """"http://a:11434, http://b:11434/" → ["http://a:11434", "http://b:11434"]; an empty list is refused."""
    servers = [server.strip().rstrip("/") for server in value.split(",") if server.strip()]
    if not servers:
        raise ValueError("names no server: give one address, or several comma-separated")
    return servers


class LookupSettings(Group):
    imdb_db: Path = Field(PROJECT_ROOT / "index" / "imdb" / "cinemagoer.db", alias="IMDB_DB")
    tmdb_api_key: SecretStr | None = Field(None, alias="TMDB_API_KEY")
    tmdb_base_url: str = Field("https://api.themoviedb.org", alias="TMDB_BASE_URL")
    timeout_s: float = Field(5.0, gt=0, alias="LOOKUP_TIMEOUT")
    cache_size: int = Field(1024, ge=1, alias="LOOKUP_CACHE_SIZE")

    _blank = field_validator("tmdb_api_key", mode="before")(_blank_is_none)


class ServiceSettings(Group):
    host: str = Field("127.0.0.1", alias="MOVIEGENRE_HOST")
    port: int = Field(5000, alias="MOVIEGENRE_PORT")
    max_body_bytes: int = Field(64 * 1024, alias="MOVIEGENRE_MAX_BODY_BYTES")
    max_description_chars: int = Field(10_000, alias="MOVIEGENRE_MAX_DESCRIPTION_CHARS")
    max_batch_items: int = Field(64, alias="MOVIEGENRE_MAX_BATCH_ITEMS")
    # /classify's keys, each consumer with its own rate-limit allowance and its own label in the metrics: one key,
    # taken whole whatever it holds (its consumer is "default"), and "name:key" pairs, comma-separated
    # ("shop:k3y,app:0ther"; a name or key holding ':' or ',' is refused)
    api_key: SecretStr | None = Field(None, alias="MOVIEGENRE_API_KEY")
    named_api_keys: SecretStr | None = Field(None, alias="MOVIEGENRE_API_KEYS")
    admin_token: SecretStr | None = Field(None, alias="MOVIEGENRE_ADMIN_TOKEN")
    cors_origins: list[str] = Field([], alias="MOVIEGENRE_CORS_ORIGINS")
    log_level: Literal["debug", "info", "warning"] = Field("info", alias="MOVIEGENRE_LOG_LEVEL")

    # an empty API key is refused at start (ensure_servable): it cannot mean "no key" nor "any key"
    _blank = field_validator("admin_token", mode="before")(_blank_is_none)
    _named = field_validator("named_api_keys")(_pairs)

    def api_keys(self) -> dict[str, str]:
        """Key → the consumer it was given to (MOVIEGENRE_API_KEYS, and MOVIEGENRE_API_KEY as "default")."""
        named = named_secrets(self.named_api_keys.get_secret_value()) if self.named_api_keys else {}
        whole = self.api_key.get_secret_value().strip() if self.api_key else ""
        return named | ({whole: "default"} if whole else {})


class CorrectionsSettings(Group):
    # "name:token" pairs, comma-separated ("alice:s3cret,bob:0ther"), or one bare token (named "editor"); a name or
    # token holding ':' or ',' is refused; unset or empty: feedback is off. The page may send corrections without a
    # token only when MOVIEGENRE_FEEDBACK_PAGE is true (anonymous, rate-limited, and waiting for an editor's review).
    feedback_token: SecretStr | None = Field(None, alias="MOVIEGENRE_FEEDBACK_TOKEN")
    feedback_page: bool = Field(False, alias="MOVIEGENRE_FEEDBACK_PAGE")
    # what anonymous corrections (the page's) may do: so many per client address, so many waiting for an editor,
    # of which one client (an IPv6 client by its /48) may hold this share
    feedback_page_rate_limit: str = Field("20/hour", alias="MOVIEGENRE_FEEDBACK_PAGE_RATE_LIMIT")
    max_pending_feedback: int = Field(1000, ge=1, alias="MOVIEGENRE_MAX_PENDING_FEEDBACK")
    pending_share: float = Field(0.05, gt=0, le=1, alias="MOVIEGENRE_PENDING_SHARE")
    # corrections served beside the index at most (the side index holds their vectors): a build folds them in
    max_corrections: int = Field(20_000, ge=1, alias="MOVIEGENRE_MAX_CORRECTIONS")
    # how often a process reads the corrections other processes stored (0: never; a file run keeps its snapshot)
    poll_s: float = Field(1.0, ge=0, le=3600, alias="MOVIEGENRE_CORRECTIONS_POLL")
    # where corrections are kept: a PostgreSQL database replicas on many machines share
    # (postgresql://user:password@host:5432/db); unset, the SQLite file in the index folder (one machine)
    url: SecretStr | None = Field(None, alias="MOVIEGENRE_CORRECTIONS_URL")

    _blank = field_validator("feedback_token", "url", mode="before")(_blank_is_none)
    _rate = field_validator("feedback_page_rate_limit")(_a_rate)

    @field_validator("feedback_token")
    @classmethod
    def _editors(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            named_secrets(value.get_secret_value(), "editor")
        return value

    @field_validator("url")
    @classmethod
    def _a_postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        """A postgresql:// URL libpq can read (the message never shows it: it may hold a password)."""
        if value is None:
            return value
        if not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("a corrections store URL starts with postgresql:// (unset, corrections are kept in the "
                             "index folder)")
        from psycopg.conninfo import conninfo_to_dict

        try:
            conninfo_to_dict(value.get_secret_value())
        except Exception:  # noqa: BLE001 - psycopg's message quotes the URL: say what to do instead
            raise ValueError("the corrections store URL cannot be read: percent-encode the characters of the user "
                             "and password that a URL reserves (% @ : / ? #)") from None
        return value

    def editors(self) -> dict[str, str]:
        """Token → the name a correction is stored under (MOVIEGENRE_FEEDBACK_TOKEN)."""
        return named_secrets(self.feedback_token.get_secret_value(), "editor") if self.feedback_token else {}


class OperationsSettings(Group):
    ssl_certfile: Path | None = Field(None, alias="MOVIEGENRE_SSL_CERTFILE")
    ssl_keyfile: Path | None = Field(None, alias="MOVIEGENRE_SSL_KEYFILE")
    # requests classified at once; requests that always wait their turn, up to 5 s each (so MAX_IN_FLIGHT +
    # MIN_QUEUE clients asking again and again, 16 by default, are queued, not turned away); beyond them, the longest
    # a request may expect to wait for a slot (else a 503 at once); seconds a client has to send its body
    # (api/admission.py)
    max_in_flight: int = Field(4, ge=1, le=1024, alias="MOVIEGENRE_MAX_IN_FLIGHT")
    min_queue: int = Field(12, ge=0, le=100_000, alias="MOVIEGENRE_MIN_QUEUE")
    max_queue_wait_s: float = Field(0.1, ge=0, le=60, alias="MOVIEGENRE_MAX_QUEUE_WAIT")
    body_timeout_s: float = Field(10.0, gt=0, le=600, alias="MOVIEGENRE_BODY_TIMEOUT")
    # lookups (mode=lookup/auto) waiting on IMDb and TMDb at once, on threads of their own; lookups that may wait
    # for one of them (beyond, a 503 at once)
    lookup_concurrency: int = Field(8, ge=1, le=256, alias="MOVIEGENRE_LOOKUP_CONCURRENCY")
    lookup_queue: int = Field(16, ge=0, le=10_000, alias="MOVIEGENRE_LOOKUP_QUEUE")
    # per API key's consumer (or client address without a key), e.g. "60/minute"; None: no limit
    rate_limit: str | None = Field(None, alias="MOVIEGENRE_RATE_LIMIT")
    # where the counts live: memory:// (one process), or a shared store for several replicas (redis://host:6379)
    rate_limit_storage: str = Field("memory://", alias="MOVIEGENRE_RATE_LIMIT_STORAGE")
    metrics: bool = Field(True, alias="MOVIEGENRE_METRICS")
    # /readyz waits for the multilingual part too (a pod must serve every language before it takes traffic)
    ready_needs_multilingual: bool = Field(False, alias="MOVIEGENRE_READY_NEEDS_MULTILINGUAL")

    _blank = field_validator("rate_limit", "ssl_certfile", "ssl_keyfile", mode="before")(_blank_is_none)
    _rate = field_validator("rate_limit")(_a_rate)


class JobsSettings(Group):
    """Files classified as jobs of the service (POST /jobs, service/jobs/)."""
    # where a job's upload, progress and output are kept (default: <index dir>/jobs); replicas that share it report
    # and resume each other's jobs
    dir: Path | None = Field(None, alias="MOVIEGENRE_JOBS_DIR")
    # an upload larger than this is refused (413) as it streams in; it never goes through MAX_BODY_BYTES
    max_upload_bytes: int = Field(200 * 1024 * 1024, ge=1, alias="MOVIEGENRE_MAX_UPLOAD_BYTES")
    # jobs kept at once, whatever their state (429 beyond): a finished job frees its place when it is removed
    max_jobs: int = Field(20, ge=1, le=10_000, alias="MOVIEGENRE_MAX_JOBS")
    # jobs classified at once by one process (each takes one CPU slot at a time, beside /classify)
    running: int = Field(1, ge=1, le=8, alias="MOVIEGENRE_JOBS_RUNNING")
    # a finished job's files are removed this long after it finished
    keep_hours: float = Field(24.0, gt=0, le=24 * 366, alias="MOVIEGENRE_JOBS_KEEP_HOURS")
    # rows read, classified and kept together: what a restart resumes after (classify-file's --chunk-rows)
    chunk_rows: int = Field(2000, ge=1, le=100_000, alias="MOVIEGENRE_JOBS_CHUNK_ROWS")

    _blank = field_validator("dir", mode="before")(_blank_is_none)

    def folder(self, index_dir: Path) -> Path:
        return self.dir or Path(index_dir) / "jobs"


GROUPS: dict[str, type[Group]] = {"index": IndexSettings, "classification": ClassificationSettings,
                                  "llm": LLMSettings, "lookup": LookupSettings, "service": ServiceSettings,
                                  "corrections": CorrectionsSettings, "operations": OperationsSettings,
                                  "jobs": JobsSettings}


def flat_name(alias: str) -> str:
    return alias.removeprefix(PREFIX).lower()


# flat name → (group, field)
FLAT: dict[str, tuple[str, str]] = {flat_name(field.alias): (group, name) for group, model in GROUPS.items()
                                    for name, field in model.model_fields.items()}


class Settings(BaseModel):
    index: IndexSettings
    classification: ClassificationSettings
    llm: LLMSettings
    lookup: LookupSettings
    service: ServiceSettings
    corrections: CorrectionsSettings
    operations: OperationsSettings
    jobs: JobsSettings

    # what an answer depends on (no secrets, no limits of the HTTP service): a resumed file run and a stored
    # result are only reused when these are the same
    ANSWER_SETTINGS: ClassVar[tuple[str, ...]] = (
        "embedding_model", "multilingual_model", "top_k", "prompt_examples", "threshold", "max_genres",
        "recognise_films", "fusion_weight", "fusion_floor", "max_description_chars")

    def __init__(self, **values: Any):
        """Every group read from the environment; `values` (flat names, or whole groups) override."""
        given: dict[str, dict] = {group: {} for group in GROUPS}
        groups = {}
        for name, value in values.items():
            if name in GROUPS:
                groups[name] = value
                continue
            if name not in FLAT:
                raise TypeError(f"no setting {name!r}")
            group, field = FLAT[name]
            given[group][GROUPS[group].alias_of(field)] = value
        made, problems = {}, []
        for group, model in GROUPS.items():
            try:
                made[group] = groups.get(group) or model(**given[group])
            except ValidationError as exc:
                problems += _described(exc)
            except SettingsError as exc:  # a list variable that is not JSON
                problems.append(_undecodable(exc, model))
        if problems:
            raise ConfigurationError(f"invalid settings: {'; '.join(problems)}")
        super().__init__(**made)

    def replace(self, **values: Any) -> Settings:
        """A copy with these settings (flat names) changed, validated like the originals (ConfigurationError)."""
        changed: dict[str, dict] = {}
        for name, value in values.items():
            if name not in FLAT:
                raise TypeError(f"no setting {name!r}")
            group, field = FLAT[name]
            changed.setdefault(group, {})[GROUPS[group].alias_of(field)] = value
        return Settings(**{group: _changed(getattr(self, group), changed[group]) if group in changed
                           else getattr(self, group) for group in GROUPS})

    def get(self, name: str) -> Any:
        """A setting by its flat name."""
        group, field = FLAT[name]
        return getattr(getattr(self, group), field)

    def ensure_servable(self) -> None:
        """Raise ConfigurationError for settings the service must not serve with. An API key set but empty
        cannot mean "no key" (the operator meant to require one) nor "any key": the service refuses to start."""
        service, operations = self.service, self.operations
        for secret, alias, wanted in ((service.api_key, "MOVIEGENRE_API_KEY", "a key (taken whole)"),
                                      (service.named_api_keys, "MOVIEGENRE_API_KEYS", "'name:key' pairs")):
            if secret is not None and not secret.get_secret_value().strip():
                raise ConfigurationError(f"{alias} is set but names no key: give it {wanted}, or unset it to serve "
                                         "without a key")
        if (operations.ssl_certfile is None) != (operations.ssl_keyfile is None):
            raise ConfigurationError("HTTPS needs both MOVIEGENRE_SSL_CERTFILE and MOVIEGENRE_SSL_KEYFILE")
        for path in (operations.ssl_certfile, operations.ssl_keyfile):
            if path is not None and not path.is_file():
                raise ConfigurationError(f"no such file: {path} (MOVIEGENRE_SSL_CERTFILE / MOVIEGENRE_SSL_KEYFILE)")

    def answer_settings(self) -> dict:
        return {name: self.get(name) for name in self.ANSWER_SETTINGS} | {"llm": self.llm.identity()}


def _changed(group: Group, fields: dict) -> Group:
    """The group with `fields` (by alias) changed, validated (its environment is not read again)."""
    try:
        return type(group).model_validate(group.model_dump(by_alias=True) | fields)
    except ValidationError as exc:
        raise ConfigurationError(f"invalid settings: {'; '.join(_described(exc))}") from None


def _described(exc: ValidationError) -> list[str]:
    """Each problem as the operator set it: "MOVIEGENRE_PORT='abc': Input should be a valid integer" (a key's or
    a token's value is never shown)."""
    secrets = {field.alias for model in GROUPS.values() for field in model.model_fields.values()
               if SecretStr in (field.annotation, *get_args(field.annotation))}
    described = []
    for error in exc.errors():
        where = ".".join(map(str, error["loc"]))
        described.append(f"{where}: {error['msg']}" if where in secrets else
                         f"{where}={error['input']!r}: {error['msg']}")
    return described


def _undecodable(exc: SettingsError, model: type[Group]) -> str:
    """A value pydantic-settings could not decode as JSON (a list), as one line naming its variable."""
    field = re.search(r'field "(\w+)"', str(exc))
    alias = model.model_fields[field.group(1)].alias if field and field.group(1) in model.model_fields else str(exc)
    return f'{alias}: not valid JSON (a list is written ["https://a.example", "https://b.example"])'
