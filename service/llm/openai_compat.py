"""Any OpenAI-compatible chat-completions server (vLLM, llama.cpp, DashScope compatible mode), through the
official async client."""
from __future__ import annotations

import openai

from service.llm.base import LLMBackend, LLMError, http_error, timed_out

SEED = 7
SERVER = "the OpenAI-compatible server"


class OpenAIBackend(LLMBackend):
    name = "openai"

    def __init__(self, base_url: str, api_key: str, model: str, timeout_s: float):
        self.model = model
        self.endpoint = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)

    async def complete(self, messages: list[dict[str, str]], schema: dict) -> str:
        try:
            response = await self.client.chat.completions.create(
                model=self.model, messages=messages, temperature=0, seed=SEED,
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "genres", "schema": schema, "strict": True}})
        except openai.APIStatusError as exc:
            raise http_error(SERVER, exc.status_code) from exc
        except openai.APITimeoutError as exc:
            raise timed_out(self.timeout_s) from exc
        except openai.APIError as exc:
            raise LLMError(f"{SERVER} is unreachable: {type(exc).__name__}", "unreachable") from exc
        if not response.choices:
            raise LLMError(f"{SERVER} answered no choice")
        return response.choices[0].message.content or ""

    async def served_model(self) -> str | None:
        """The ids /v1/models lists (llama.cpp lists the model it loaded, whatever name a request asks for); None
        when it lists none."""
        return ", ".join(sorted(model.id for model in (await self.client.models.list()).data)) or None

    async def close(self) -> None:
        await self.client.close()
