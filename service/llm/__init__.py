"""LLM backends, chosen by LLM_BACKEND. Adding one: a module with an LLMBackend class and a line below."""
from __future__ import annotations

from pathlib import Path

from service.llm.base import LLMBackend, LLMError, parse_genres
from service.llm.cache import AnswerCache
from service.llm.gate import LLMGate
from service.settings import Settings


def make_backends(settings: Settings) -> list[LLMBackend]:
    """The configured backend, one client per server of its pool (OLLAMA_HOST / OPENAI_BASE_URL, comma-separated);
    none for `none` (the neighbour vote alone)."""
    llm = settings.llm
    if llm.backend == "ollama":
        from service.llm.ollama import OllamaBackend
        return [OllamaBackend(host, llm.ollama_model, llm.timeout_s) for host in llm.servers()]
    if llm.backend == "openai":
        from service.llm.openai_compat import OpenAIBackend
        return [OpenAIBackend(url, llm.openai_api_key.get_secret_value(), llm.openai_model, llm.timeout_s)
                for url in llm.servers()]
    return []


def make_gate(settings: Settings, answers_file: Path | None = None) -> LLMGate | None:
    """The configured backend as the classifier asks it: its servers as one pool behind one answer cache
    (LLM_CACHE_SIZE answers in memory, and in `answers_file` too when given) and one gate (LLM_CONCURRENCY calls at
    once on each server, a queue bounded by expected wait, served in turn by consumer); None for `none`."""
    backends = make_backends(settings)
    if not backends:
        return None
    cache = AnswerCache(settings.llm.identity(), settings.llm.cache_size, answers_file)
    return LLMGate(backends, cache, settings.llm.concurrency, settings.llm.timeout_s, settings.llm.cooldown_s)


__all__ = ["AnswerCache", "LLMBackend", "LLMError", "LLMGate", "make_backends", "make_gate", "parse_genres"]
