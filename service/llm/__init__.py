"""LLM backends, chosen by LLM_BACKEND. Adding one: a module with an LLMBackend class and a line below."""
from __future__ import annotations

from pathlib import Path

from service.llm.base import LLMBackend, LLMError, parse_genres
from service.llm.cache import CachedBackend
from service.llm.gate import LLMGate
from service.settings import Settings


def make_backend(settings: Settings, answers_file: Path | None = None) -> CachedBackend | None:
    """The configured backend behind its answer cache (LLM_CACHE_SIZE answers in memory, and in
    `answers_file` too when given), or None for `none` (the neighbour vote alone)."""
    if settings.llm.backend == "ollama":
        from service.llm.ollama import OllamaBackend
        backend = OllamaBackend(settings.llm.ollama_host, settings.llm.ollama_model, settings.llm.timeout_s)
    elif settings.llm.backend == "openai":
        from service.llm.openai_compat import OpenAIBackend
        backend = OpenAIBackend(settings.llm.openai_base_url, settings.llm.openai_api_key.get_secret_value(),
                                settings.llm.openai_model, settings.llm.timeout_s)
    else:
        return None
    return CachedBackend(backend, settings.llm.cache_size, answers_file)


def make_gate(settings: Settings, answers_file: Path | None = None) -> LLMGate | None:
    """The configured backend as the classifier asks it: behind its cache and its gate (LLM_CONCURRENCY calls at
    once, a queue bounded by expected wait); None for `none`."""
    backend = make_backend(settings, answers_file)
    return LLMGate(backend, settings.llm.concurrency, settings.llm.timeout_s) if backend is not None else None


__all__ = ["CachedBackend", "LLMBackend", "LLMError", "LLMGate", "make_backend", "make_gate", "parse_genres"]
