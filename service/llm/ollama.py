"""Ollama through the official async client: POST /api/chat with a JSON-schema `format`."""
from __future__ import annotations

import httpx
import ollama

from service.llm.base import LLMBackend, LLMError, http_error, timed_out

SEED = 7


class OllamaBackend(LLMBackend):
    name = "ollama"

    def __init__(self, host: str, model: str, timeout_s: float):
        self.model = model
        self.endpoint = host.rstrip("/")
        self.timeout_s = timeout_s
        self.client = ollama.AsyncClient(host=host, timeout=timeout_s)

    async def complete(self, messages: list[dict[str, str]], schema: dict) -> str:
        try:
            response = await self.client.chat(model=self.model, messages=messages, format=schema, stream=False,
                                              options={"temperature": 0, "seed": SEED})
        except ollama.ResponseError as exc:
            raise http_error("ollama", exc.status_code, str(exc.error)) from exc
        except httpx.TimeoutException as exc:
            raise timed_out(self.timeout_s) from exc
        except (ConnectionError, httpx.HTTPError) as exc:
            raise LLMError(f"ollama is unreachable: {type(exc).__name__}", "unreachable") from exc
        return response.message.content or ""

    async def served_model(self) -> str | None:
        """The configured model's digest, as /api/tags lists it; None when it lists no such model (not pulled)."""
        listed = (await self.client.list()).models
        names = (self.model, f"{self.model}:latest")
        return next((f"{m.model}@{m.digest}" for m in listed if m.model in names), None)

    async def close(self) -> None:
        await self.client.close()
