"""All configuration in one typed object, read from environment variables once and passed in."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore", populate_by_name=True)

    # Data and index
    data_path: Path = Field(PROJECT_ROOT.parent / "shared" / "data" / "reference", alias="MOVIEGENRE_DATA")
    index_dir: Path = Field(PROJECT_ROOT / "index", alias="MOVIEGENRE_INDEX_DIR")
    embedding_model: str = Field("all-MiniLM-L6-v2", alias="MOVIEGENRE_EMBEDDING_MODEL")
    # for descriptions in other languages; "" turns the multilingual path off
    multilingual_model: str = Field("multilingual-e5-small", alias="MOVIEGENRE_MULTILINGUAL_MODEL")
    # where build-index keeps the exported int8 ONNX models (default: <index>/models)
    models_dir: Path | None = Field(None, alias="MOVIEGENRE_MODELS_DIR")
    # texts embedded in parallel, one core each (see embedding/onnx.py); the cores of the machine
    embed_workers: int = Field(2, ge=1, alias="MOVIEGENRE_EMBED_WORKERS")

    # Classification
    top_k: int = Field(25, ge=1, le=200, alias="MOVIEGENRE_TOP_K")
    prompt_examples: int = Field(8, ge=0, le=25, alias="MOVIEGENRE_PROMPT_EXAMPLES")
    # None: the threshold tuned on a validation split at build time.
    vote_threshold: float | None = Field(None, gt=0, lt=1, alias="MOVIEGENRE_THRESHOLD")
    max_genres: int = Field(5, ge=1, le=10, alias="MOVIEGENRE_MAX_GENRES")
    # a description of a film the reference holds is answered with that film's labels (recognition.py)
    recognise_films: bool = Field(True, alias="MOVIEGENRE_RECOGNISE_FILMS")
    # the LLM's say when its model was never calibrated (`make calibrate-llm`; see calibration.py)
    fusion_weight: float = Field(0.2, ge=0, le=1, alias="MOVIEGENRE_FUSION_WEIGHT")
    fusion_floor: float = Field(0.1, ge=0, le=1, alias="MOVIEGENRE_FUSION_FLOOR")

    # LLM backends
    llm_backend: Literal["ollama", "openai", "none"] = Field("ollama", alias="LLM_BACKEND")
    llm_timeout_s: float = Field(20.0, gt=0, alias="LLM_TIMEOUT")
    # requests in flight to the LLM server at once, from one process
    llm_concurrency: int = Field(4, ge=1, le=64, alias="LLM_CONCURRENCY")
    # answers kept in memory by model and prompt: a repeated description makes no second call
    llm_cache_size: int = Field(4096, ge=1, alias="LLM_CACHE_SIZE")
    ollama_host: str = Field("http://127.0.0.1:11434", alias="OLLAMA_HOST")
    ollama_model: str = Field("qwen2:7b", alias="OLLAMA_MODEL")
    openai_base_url: str = Field("http://127.0.0.1:8080/v1", alias="OPENAI_BASE_URL")
    openai_api_key: SecretStr = Field(SecretStr("not-needed"), alias="OPENAI_API_KEY")
    openai_model: str = Field("qwen2-7b-instruct", alias="OPENAI_MODEL")

    # Lookup (mode=lookup)
    imdb_db: Path = Field(PROJECT_ROOT / "index" / "imdb" / "cinemagoer.db", alias="IMDB_DB")
    tmdb_api_key: SecretStr | None = Field(None, alias="TMDB_API_KEY")
    tmdb_base_url: str = Field("https://api.themoviedb.org", alias="TMDB_BASE_URL")
    lookup_timeout_s: float = Field(5.0, gt=0, alias="LOOKUP_TIMEOUT")
    lookup_cache_size: int = Field(1024, ge=1, alias="LOOKUP_CACHE_SIZE")

    # HTTP service
    host: str = Field("127.0.0.1", alias="MOVIEGENRE_HOST")
    port: int = Field(5000, alias="MOVIEGENRE_PORT")
    max_body_bytes: int = Field(64 * 1024, alias="MOVIEGENRE_MAX_BODY_BYTES")
    max_description_chars: int = Field(10_000, alias="MOVIEGENRE_MAX_DESCRIPTION_CHARS")
    max_batch_items: int = Field(64, alias="MOVIEGENRE_MAX_BATCH_ITEMS")
    api_key: SecretStr | None = Field(None, alias="MOVIEGENRE_API_KEY")
    admin_token: SecretStr | None = Field(None, alias="MOVIEGENRE_ADMIN_TOKEN")
    cors_origins: list[str] = Field([], alias="MOVIEGENRE_CORS_ORIGINS")
    log_level: Literal["debug", "info", "warning"] = Field("info", alias="MOVIEGENRE_LOG_LEVEL")

    def exported_models(self) -> Path:
        return self.models_dir or self.index_dir / "models"

    def part_models(self) -> dict[str, str]:
        """Index part → embedding model: the English part always, the multilingual one unless turned off."""
        return {"english": self.embedding_model} | (
            {"multilingual": self.multilingual_model} if self.multilingual_model else {})
