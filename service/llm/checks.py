"""Reading what each LLM server of a pool serves (its model list: one_model.py), one read at a time a server: for
every server at the health probe, and for a server set aside once its cool-down has passed (breaker.py), which is how
it comes back. Also the one way a server is set aside, with its reason in /health and the log."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from service.llm.base import LLMError
from service.llm.one_model import OneModel
from service.llm.server import Server

log = logging.getLogger("moviegenre")


def set_aside(server: Server, why: str) -> None:
    server.breaker.trip(why)
    log.warning("LLM server %s set aside for %.0f s: %s", server.address, server.breaker.retry_in(), why)


class ModelChecks:
    """Used on the gate's event loop only."""

    def __init__(self, servers: list[Server], pooled: bool, timeout_s: float, one_model: OneModel,
                 checked: Callable[[], None]):
        """`servers`: the pool's; `timeout_s`: what a read may take; `checked()`: after each read, whatever it found
        (the pool hands out the slots it may have freed)."""
        self.servers = servers
        self.pooled = pooled
        self.timeout_s = timeout_s
        self.one_model = one_model
        self._checked = checked
        self._under_way: dict[Server, asyncio.Task] = {}

    def under_way(self, server: Server) -> bool:
        return server in self._under_way

    def start_due(self) -> None:
        for server in self.servers:
            if server.breaker.due():
                self._checking(server)

    async def all(self) -> bool:
        """Every server's model list read (the health probe); whether any of them answered."""
        await asyncio.gather(*(self._checking(server) for server in self.servers))
        return any(server.reachable for server in self.servers)

    def _checking(self, server: Server) -> asyncio.Task:
        if server not in self._under_way:
            self._under_way[server] = asyncio.get_running_loop().create_task(self._check(server))
        return self._under_way[server]

    async def _check(self, server: Server) -> None:
        """Read what the server serves (one_model.py): a server of a pool that answers and serves the pool's model
        comes back once its cool-down has passed; one that serves another model is set aside, saying so."""
        read = False
        try:
            model = await asyncio.wait_for(server.backend.served_model(), self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - whatever a server's odd answer makes a client raise
            server.reachable = False
            if self.pooled and not server.breaker.closed:
                set_aside(server, f"its model list did not answer: {_why(exc, self.timeout_s)}")
        else:
            server.reachable, server.model, read = True, model, True
        finally:
            del self._under_way[server]
            if self.pooled:
                self.one_model.checked(server if read else None, self.servers, self._under_way)
            self._checked()


def _why(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:.3g} s"
    return str(exc) if isinstance(exc, LLMError) else type(exc).__name__
