"""The API contract as pydantic models."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, StrictFloat, StrictStr,
                      StringConstraints, model_validator)

from service.corrections.store import CLIENT_PATTERN
from service.genres import MAX_LABEL_CHARS
from service.text import VISIBLE, is_blank

# A label of the index's vocabulary (or of the request's own `labels`): the index, not the code, says which.
Genre = str
MAX_REQUEST_LABELS = 50


def _usable_text(value):
    """Clear messages for the two ways a string can be unusable; other types fail as StrictStr.
    The text is kept as sent, so length limits apply to what was sent."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        if is_blank(value):
            raise ValueError("must not be empty or whitespace (or invisible characters alone)")
    return value


# The pattern states in the schema what the validator enforces: some non-space character, no NUL.
USABLE_TEXT = rf"^[^\u0000]*{VISIBLE}[^\u0000]*$"
Description = Annotated[StrictStr, StringConstraints(pattern=USABLE_TEXT), BeforeValidator(_usable_text)]
# A label: some visible character, no control character (no line break, tab or NUL), at most MAX_LABEL_CHARS.
USABLE_LABEL = rf"^[^\u0000-\u001f\u007f]*{VISIBLE}[^\u0000-\u001f\u007f]*$"
RequestLabel = Annotated[StrictStr, StringConstraints(pattern=USABLE_LABEL, max_length=MAX_LABEL_CHARS)]


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"description": "A young wizard embarks on an adventure to defeat a dark sorcerer."}]})

    description: Description = Field(description="What you know about the film: a plot, a title, a review…")
    kind: Literal["title", "review", "company", "description"] | None = Field(
        None, description="With mode=lookup: what the text is; detected when absent")
    labels: list[RequestLabel] | None = Field(
        None, min_length=1, max_length=MAX_REQUEST_LABELS,
        description="Score exactly these labels (any language): labels the index knows as always, others zero-shot "
                    "(by the LLM where one is configured, else by the multilingual embedding); see label_scores")



MAX_TITLE_CHARS = 300
Title = Annotated[StrictStr, StringConstraints(pattern=USABLE_LABEL, max_length=MAX_TITLE_CHARS)]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"text": "A young wizard embarks on an adventure to defeat a dark sorcerer.",
         "genres": ["Fantasy", "Adventure", "Family"], "title": "The Sorcerer's Road", "year": 2019},
        {"text": "Halloween", "year": 1978, "genres": ["Horror", "Thriller"]}]})

    text: Description = Field(validation_alias=AliasChoices("text", "description"),
                              description="The text that was classified (a description), or a title the reference "
                                          "knows; sent as `text` or, as to /classify, `description`")
    genres: list[RequestLabel] = Field(min_length=1, max_length=10,
                                       description="The genres it should have: labels of the index's vocabulary")
    title: Title | None = Field(None, description="The film's title, when known: with `year`, it names the "
                                                  "reference film corrected (a title that names several films "
                                                  "needs its year: 409 lists them)")
    year: int | None = Field(None, ge=1870, le=2100)


class CandidateFilm(BaseModel):
    title: str
    year: int | None


class AmbiguousFilm(BaseModel):
    error: str
    candidates: list[CandidateFilm] = Field(description="The reference's films of that title: send one's year")


class CorrectionOut(BaseModel):
    id: int
    text: str
    title: str | None
    year: int | None
    genres: list[Genre]
    status: Literal["pending", "served", "superseded", "revoked"] = Field(
        description="pending: sent from the page, waiting for an editor's approval; served: answers use it; "
                    "superseded: a newer correction of the same film answers instead; revoked")
    author: str = Field(description="The name of the token that sent it (never the token); 'page' from the web page")
    client: str | None = Field(None, description="Sent from the page: its client (the address, an IPv6 one by its "
                                                 "/48) as a pseudonym, to list or reject its corrections by")
    created_at: str
    approved_at: str | None = None
    approved_by: str | None = None
    revoked_at: str | None = None
    revoked_by: str | None = None
    answer: list[Genre] | None = Field(None, description="GET /feedback?answers=true: what the service answers the "
                                                         "text today (the vote, no LLM)")


class CorrectionPage(BaseModel):
    corrections: list[CorrectionOut] = Field(description="The newest first")
    total: int
    offset: int
    limit: int
    next_offset: int | None = Field(description="The offset of the next page; null on the last")
    note: str | None = Field(None, description=(
        "Why the answers asked for (answers=true) are left out (each `answer` null): the service is at capacity. "
        "null otherwise"))


class RejectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"client": "c0123456789abcdef"}, {"older_than_hours": 72}]})

    client: str | None = Field(None, pattern=CLIENT_PATTERN,
                               description="Reject what this client sent (`client` of a listed correction)")
    older_than_hours: StrictFloat | None = Field(None, ge=0, le=24 * 366 * 10,
                                           description="Reject what has waited this long or longer (0: all)")

    @model_validator(mode="after")
    def _says_which(self) -> RejectRequest:
        if self.client is None and self.older_than_hours is None:
            raise ValueError("say which corrections to reject: `client`, `older_than_hours`, or both")
        return self


class RejectResult(BaseModel):
    rejected: int = Field(description="How many corrections waiting for review were rejected")
    ids: list[int]


class QueueClient(BaseModel):
    client: str | None = Field(description="null: sent before clients were kept")
    waiting: int
    oldest: str


class ReviewQueue(BaseModel):
    waiting: int = Field(description="Corrections from the page waiting for an editor's review")
    max_waiting: int = Field(description="The most that may wait (MOVIEGENRE_MAX_PENDING_FEEDBACK)")
    client_share: int = Field(description="The most one client may have waiting (MOVIEGENRE_PENDING_SHARE of it)")
    clients: list[QueueClient] = Field(description="The clients with the most waiting, the most first")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    descriptions: Annotated[list[Description], Field(min_length=1)]


class NeighbourOut(BaseModel):
    title: str
    year: int | None
    genres: list[str]
    similarity: float
    source: str = Field(description="Where the film comes from: a reference source, or 'correction' (an editor's)")


class SeriesFilmOut(BaseModel):
    title: str
    year: int | None


class RecognisedOut(BaseModel):
    title: str = Field(description="The film's title; for a series (source 'series'), its name and '(series)'")
    year: int | None
    similarity: float
    genres: list[Genre] = Field(description="The film's labels in the reference, which the answer leads with; for a "
                                            "series, the labels all its films in `series` share")
    source: Literal["reference", "correction", "series"] = Field(
        "reference", description="correction: an editor's correction decided the answer (POST /feedback); series: "
                                 "the text is surely of a film of this series, but of none of them surely")
    correction_id: int | None = None
    series: list[SeriesFilmOut] | None = Field(
        None, description="source 'series': the series' films the text may be of (none is named as the answer)")


class MatchOut(BaseModel):
    title: str
    year: int | None
    imdb_id: str | None
    tmdb_id: int | None
    rating: float | None
    alias: str | None = Field(None, description="The film's other title that matched (its original title, a "
                                                "title in another language), when the text was not its own title")


class CandidateOut(BaseModel):
    title: str
    year: int | None
    genres: list[Genre]


class CompanyOut(BaseModel):
    name: str
    tmdb_id: int | None
    films: int
    genre_shares: dict[str, float]
    titles: list[str] = Field(description="Its films in the reference, the newest first")
    source: Literal["tmdb", "reference"] = Field(description="Whose figures these are: TMDb's when a key is set")


class LookupOut(BaseModel):
    kind: Literal["title", "review", "company", "description"] = Field(description="What the text was taken for")
    available: bool = Field(description="False when no database could be asked; the text was classified as it is")
    matched: MatchOut | None = None
    candidates: list[CandidateOut] = Field([], description="Other films of the same title, to pick from")
    company: CompanyOut | None = None
    known_genres: dict[str, list[Genre]] = Field(
        description="Genres each source gives the match: 'correction' (an editor's, which then is the answer), "
                    "'imdb', 'tmdb', 'reference' (the labelled films)")
    plot_source: Literal["tmdb", "reference"] | None = Field(
        description="Whose plot was classified; null when the text itself was")
    notes: list[str] = Field(description="Why a database was skipped or failed, or what was not found")


class LabelScoreOut(BaseModel):
    label: str = Field(description="A label of the request, as it was sent")
    score: float = Field(description="0..1")
    source: Literal["index", "llm", "embedding"] = Field(
        description="index: learned from the reference's labelled films; llm: the LLM picked it (or not) among the "
                    "request's labels; embedding: zero-shot similarity of the description to the label")


class ClassifyResponse(BaseModel):
    genres: list[Genre] = Field(description="Most confident first, every entry from the index's vocabulary (with "
                                            "`labels`: the request's labels whose score passes)")
    scores: dict[Genre, float] = Field(description="Per-genre confidence (0..1) behind the answer")
    backend: str = Field(description="'vote', or the LLM backend that answered ('ollama', 'openai')")
    llm_genres: list[Genre] | None = Field(None, description="What the LLM picked, when it answered")
    fallback_reason: str | None = Field(None, description="Why the LLM's answer was not used, if it was not")
    latency_ms: float
    language: str | None = Field(None, description="The description's language (ISO 639-1), when it could be told")
    confidence: Literal["high", "medium", "low"] | None = Field(
        None, description="How well the text matched the reference's films; low: it may not describe a film")
    confidence_reason: str | None = Field(None, description="Why, in one line")
    recognised: RecognisedOut | None = Field(
        None, description="The reference film the description was taken to describe; its labels lead the answer")
    notes: list[str] = Field([], description="What the person should know about this answer")
    neighbours: list[NeighbourOut] | None = Field(None, description="The reference films used (explain=true)")
    genre_sources: dict[Genre, list[str]] | None = Field(
        None, description="mode=lookup/auto: where each genre came from ('imdb', 'tmdb', 'reference', 'predicted')")
    lookup: LookupOut | None = Field(None, description="mode=lookup/auto: what the text was taken for, what was found")
    label_scores: list[LabelScoreOut] | None = Field(
        None, description="With `labels`: one entry per requested label, in the request's order (a label asked twice, "
                          "in another case or as a synonym of the index, once)")


class BatchResponse(BaseModel):
    results: list[ClassifyResponse]


class FusionOut(BaseModel):
    weight: float = Field(description="what the LLM's pick adds to a genre's score")
    floor: float = Field(description="the vote score a genre needs before the LLM can move it")
    source: str = Field(description="'default', or the calibration this setting comes from")
    stale: str | None = Field(None, description="Why a calibration of this model is not used: it was measured on "
                                                "another index (rerun make calibrate-llm)")


class AnswerCacheOut(BaseModel):
    hits: int
    misses: int
    size: int
    capacity: int


class LLMServerOut(BaseModel):
    address: str = Field(description="the server (OLLAMA_HOST / OPENAI_BASE_URL entry), without credentials")
    in_flight: int = Field(description="questions it is answering now")
    slots: int = Field(description="LLM_CONCURRENCY: questions in flight on it at most")
    answer_s: float = Field(description="the mean time it took to answer lately")
    set_aside: bool = Field(description="it gets no question now: it failed, serves another model than the pool, or "
                                        "its model list was not read yet")
    why: str | None = Field(None, description="why it is set aside")
    retry_in_s: float | None = Field(None, description="seconds until it is probed back (0: at the next question)")
    model: str | None = Field(None, description="what its model list said it serves (Ollama: the model's digest; "
                                                "an OpenAI-compatible server: the ids it lists)")
    reachable: bool | None = Field(None, description="whether its model list answered the last probe")
    calls: dict[str, int] = Field({}, description="questions it was asked, by outcome")


class LLMLoadOut(BaseModel):
    in_flight: int = Field(description="questions the LLM servers are answering now")
    waiting: int = Field(description="questions waiting for a slot of any server (one queue, served in turn by "
                                     "consumer)")
    concurrency: int = Field(description="LLM_CONCURRENCY: questions in flight at most on each server")
    answer_s: float = Field(description="the mean time an answer took lately (over the servers in use): what the "
                                        "queue's bound is measured by")
    model: str | None = Field(None, description="the model the pool serves, as its servers' model lists say (a pool "
                                               "of several servers: one model list, read; one server: not read)")
    model_change: str | None = Field(None, description="what the pool's last change of model did: the model every "
                                                      "reachable server served after an upgrade adopted, and the "
                                                      "answers cached of the previous one dropped")
    servers: list[LLMServerOut] = Field([], description="each server of the pool (OLLAMA_HOST / OPENAI_BASE_URL)")


class LLMHealth(BaseModel):
    backend: str
    configured: bool
    reachable: bool | None
    degraded: bool
    last_error: str | None
    fusion: dict[str, FusionOut] = Field({}, description="per route (english, multilingual): the LLM's say")
    cache: AnswerCacheOut | None = None
    load: LLMLoadOut | None = Field(None, description="The LLM's queue in this process and each of its servers")


class MultilingualHealth(BaseModel):
    status: Literal["ready", "building", "off"] = Field(
        description="ready: every language is matched with the multilingual model; building: its index part is "
                    "still being built, non-English text is matched with the English model meanwhile")
    model: str | None
    last_error: str | None = Field(None, description="Why the last attempt to take the multilingual part failed; "
                                                     "the service keeps trying")


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    index_films: int
    model: str
    multilingual: MultilingualHealth
    built_at: str | None
    llm: LLMHealth
    feedback: FeedbackHealth
    jobs: JobsHealth


class GenresResponse(BaseModel):
    genres: list[str] = Field(description="Every label an answer may carry: the index's vocabulary")
    learned: list[str] = Field(description="Labels learned from the reference's films (the vote and the heads)")
    llm_only: list[str] = Field(description="Labels with too few examples to learn: only an LLM names them")


class FeedbackHealth(BaseModel):
    enabled: bool = Field(description="POST /feedback accepts corrections (an editor token is set, or the page may)")
    page: bool = Field(description="the web page may send corrections (MOVIEGENRE_FEEDBACK_PAGE)")
    corrections: int = Field(description="corrections served beside the index (made since its build)")
    store: Literal["sqlite", "postgresql"] = Field(description="where corrections are kept: the SQLite file in the "
                                                   "index folder, or PostgreSQL (MOVIEGENRE_CORRECTIONS_URL)")
    available: bool = Field(description="the store answered its last read: false while it cannot be reached (the "
                                        "service answers with the corrections read before, if any)")
    problem: str | None = Field(None, description="why the store did not answer, while it does not")


class JobsHealth(BaseModel):
    enabled: bool = Field(description="POST /jobs takes files (the jobs folder can be written)")
    needs_key: bool = Field(description="jobs need an API key or an editor's token (some are set)")
    max_upload_bytes: int = Field(description="the largest file a job takes (MOVIEGENRE_MAX_UPLOAD_BYTES)")
    max_jobs: int = Field(description="jobs kept at once (MOVIEGENRE_MAX_JOBS)")
    keep_hours: float = Field(description="a finished job's files are removed this long after it finished")


class GlanceBin(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    low: float = Field(alias="from")
    high: float = Field(alias="to")
    rows: int


class UnsureRow(BaseModel):
    row: int = Field(description="The row's number in the file (the header excluded), as the rejected rows name it")
    text: str = Field(description="Its text (the first 300 characters)")
    genres: list[Genre]
    score: float = Field(description="The score of its first genre: how sure the answer is (0..1)")


class JobGlance(BaseModel):
    genres: dict[Genre, int] = Field(description="Rows given each genre, the most first")
    confidence: list[GlanceBin] = Field(description="Rows by the score of their first genre, in tenths")
    least_sure: list[UnsureRow] = Field(description="The rows the service was least sure of, the least first")


class JobOut(BaseModel):
    id: str
    name: str = Field(description="The uploaded file's name")
    state: Literal["uploading", "queued", "running", "done", "failed"] = Field(
        description="queued: waiting for a runner; running; done: the output can be downloaded; failed: see `error`")
    input_format: str
    output_format: str
    text_column: str | None = Field(description="The column classified")
    created_at: str
    finished_at: str | None
    expires_at: str | None = Field(description="When its files are removed (MOVIEGENRE_JOBS_KEEP_HOURS after it "
                                               "finished)")
    upload_bytes: int
    rows_total: int | None = Field(description="Rows in the file (for CSV, counted by lines until it is done)")
    rows_done: int
    progress: float | None = Field(description="0..1")
    rows_per_s: float | None = Field(description="Rows classified per second since the current run started")
    eta_s: float | None = Field(description="Seconds left, at that rate")
    classified: int | None
    rejected: int | None
    error: str | None
    waiting: str | None = Field(None, description=(
        "Why a queued or running job does not go on now: the service at capacity, the corrections store not "
        "answering, a full disk; it goes on by itself once that passes. null otherwise"))
    notes: list[str]
    replica: str = Field(description="The process that received it (host:pid)")
    output: str | None = Field(description="Where to download the output, once done")
    rejected_rows: str | None = Field(description="Where to download the rejected rows (JSON lines), once done")
    glance: JobGlance | None = Field(None, description="Once done: the catalogue at a glance")


class JobRemoved(BaseModel):
    id: str
    state: Literal["removed", "cancelling"] = Field(
        description="removed: its files are gone; cancelling: its runner stops at its next text and removes them")


class ErrorResponse(BaseModel):
    error: str
    detail: list[dict] | str | None = None


class ProbeResponse(BaseModel):
    status: Literal["alive", "ready"]


class ReadyResponse(ProbeResponse):
    degraded: list[str] = Field([], description="what the service answers without, while ready (an unreachable "
                                                "corrections store, say): it still takes traffic")


class ReloadResponse(BaseModel):
    index_films: int
    built_at: str | None
