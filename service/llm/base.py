"""The one interface every LLM backend implements, and the parsing all of them share."""
from __future__ import annotations

import json
from abc import ABC, abstractmethod

from service.genres import Vocabulary


class LLMError(RuntimeError):
    """The LLM could not give a usable answer. `outcome` says how, for metrics: "unreachable", "timed_out",
    "busy" (no answer could be expected within the request's budget: this service's LLM queue is full, or the
    server said it is), "failed" (the server answered another HTTP error) or "unusable" (an answer that is not
    usable JSON)."""

    def __init__(self, message: str, outcome: str = "unusable"):
        super().__init__(message)
        self.outcome = outcome


def timed_out(timeout_s: float) -> LLMError:
    """The one message for an LLM that is too slow, whichever clock noticed first."""
    return LLMError(f"the LLM did not answer within {timeout_s:.3g} s", "timed_out")


def busy(why: str) -> LLMError:
    """The one message for an LLM that cannot answer in time because it is busy: the vote answers at once."""
    return LLMError(f"the LLM is busy: {why}", "busy")


# HTTP statuses with which a server says it is busy rather than broken: Ollama answers 503 when its queue
# (OLLAMA_MAX_QUEUE) is full; vLLM and hosted OpenAI-compatible servers answer 429
BUSY_STATUSES = (429, 503)


def http_error(server: str, status: int, detail: str = "") -> LLMError:
    if status in BUSY_STATUSES:
        return busy(f"{server} answered HTTP {status}")
    return LLMError(f"{server} answered HTTP {status}{': ' + detail[:120] if detail else ''}", "failed")


class LLMBackend(ABC):
    """An LLM server through its official async client: waiting on it holds no thread (llm/gate.py)."""
    name: str
    model: str
    endpoint: str  # the server's address: two servers may serve different models under one name (llama.cpp)

    @abstractmethod
    async def complete(self, messages: list[dict[str, str]], schema: dict) -> str:
        """The model's raw answer to the chat messages, constrained to the JSON schema. Raises LLMError."""

    @abstractmethod
    async def served_model(self) -> str | None:
        """What the server's model list says it serves under the configured name (Ollama: the model's digest; an
        OpenAI-compatible server: the ids it lists; None: no such model is on it), to tell servers of a pool that
        serve another model, or none, apart (llm/one_model.py). Raises whatever its client meets when the server
        does not answer."""

    def describe(self) -> str:
        return f"{self.name}:{self.model}"

    def identity(self) -> dict[str, str]:
        """Everything that tells this model's answers from another's: what caches and calibrations are kept by."""
        return {"backend": self.name, "model": self.model, "base_url": self.endpoint}

    async def close(self) -> None:
        """Release the client's connections."""


def parse_genres(text: str, vocabulary: Vocabulary) -> list[str]:
    """The labels of the vocabulary (the one the LLM was asked to choose from) in an answer like
    {"genres": [...]}; labels outside it are dropped. Raises LLMError when the text is not such JSON or names
    no label of the vocabulary."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise LLMError(f"the LLM answered invalid JSON: {str(text)[:80]!r}") from exc
    labels = data.get("genres") if isinstance(data, dict) else None
    if not isinstance(labels, list):
        raise LLMError("the LLM answer has no list of genres")
    genres: list[str] = []
    for label in labels:
        genre = vocabulary.canonical(label) if isinstance(label, str) else None
        if genre and genre not in genres:
            genres.append(genre)
    if not genres:
        raise LLMError(f"the LLM named no genre of the vocabulary: {labels[:5]!r}")
    return genres
