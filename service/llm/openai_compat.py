"""Any OpenAI-compatible chat-completions server (DashScope compatible mode, vLLM, llama.cpp)."""
from __future__ import annotations

import openai

from service.llm.base import LLMBackend, LLMError, timed_out

SEED = 7


class OpenAIBackend(LLMBackend):
    name = "openai"

    def __init__(self, base_url: str, api_key: str, model: str, timeout_s: float):
        self.model = model
        self.endpoint = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)

    def complete(self, messages: list[dict[str, str]], schema: dict) -> str:
        try:
            response = self.client.chat.completions.create(
                model=self.model, messages=messages, temperature=0, seed=SEED,
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "genres", "schema": schema, "strict": True}})
        except openai.APIStatusError as exc:
            raise LLMError(f"the OpenAI-compatible server answered HTTP {exc.status_code}", "failed") from exc
        except openai.APITimeoutError as exc:
            raise timed_out(self.timeout_s) from exc
        except openai.APIError as exc:
            raise LLMError(f"the OpenAI-compatible server is unreachable: {type(exc).__name__}",
                           "unreachable") from exc
        if not response.choices:
            raise LLMError("the OpenAI-compatible server answered no choice")
        return response.choices[0].message.content or ""

    def reachable(self) -> bool:
        try:
            self.client.models.list()
            return True
        except Exception:  # noqa: BLE001 - an odd answer raises whatever the client meets: not reachable
            return False

    def close(self) -> None:
        self.client.close()
