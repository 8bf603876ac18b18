"""LLM backends, chosen by LLM_BACKEND. Adding one: a module with an LLMBackend class and a line below."""
from __future__ import annotations

from service.llm.base import LLMBackend, LLMError, parse_genres
from service.settings import Settings


def make_backend(settings: Settings) -> LLMBackend | None:
    """The configured backend, or None for `none` (the neighbour vote alone)."""
    if settings.llm_backend == "ollama":
        from service.llm.ollama import OllamaBackend
        return OllamaBackend(settings.ollama_host, settings.ollama_model, settings.llm_timeout_s)
    if settings.llm_backend == "openai":
        from service.llm.openai_compat import OpenAIBackend
        return OpenAIBackend(settings.openai_base_url, settings.openai_api_key.get_secret_value(),
                             settings.openai_model, settings.llm_timeout_s)
    return None


__all__ = ["LLMBackend", "LLMError", "make_backend", "parse_genres"]
