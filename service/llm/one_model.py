"""A pool of LLM servers serves one model: the answer cache and the calibration belong to a model (cache.py,
calibration.py), so a server whose model list says it serves another is kept out, not silently mixed in.

The pool's model is its first server's, in the order given, whose model list answered (once every server before it
has answered or failed to); a server of another model is set aside with that reason, and read again at each probe.
What a model list tells is the backend's `served_model()` (Ollama: the model's digest; an OpenAI-compatible server:
the ids it lists)."""
from __future__ import annotations

import logging
from collections.abc import Callable

from service.llm.server import Server

log = logging.getLogger("moviegenre")


class OneModel:
    def __init__(self, set_aside: Callable[[Server, str], None]):
        self.reference: str | None = None  # the model the pool serves, as a model list said it
        self._set_aside = set_aside

    def checked(self, server: Server | None, servers: list[Server]) -> None:
        """After a probe of `server` (None: its model list did not answer)."""
        if self.reference is None:
            self._settle(servers)
        elif server is not None:
            self._judge(server)

    def _judge(self, server: Server) -> None:
        """A server serving another model is set aside (unless it was already, and is not due for its probe); one
        serving the pool's comes back once its cool-down has passed."""
        if server.model != self.reference:
            if server.breaker.closed or server.breaker.due():
                self._set_aside(server, f"it serves another model than the pool's: its model list says "
                                        f"{server.model!r}, the pool's is {self.reference!r}")
        elif server.breaker.due():
            server.breaker.rejoin()
            log.info("LLM server %s is back in the pool", server.address)

    def _settle(self, servers: list[Server]) -> None:
        for server in servers:
            if server.reachable is None:
                return  # not read yet: the model of a server before it may be the pool's
            if server.reachable:
                self.reference = server.model
                log.info("the LLM pool serves %r (as %s lists it)", server.model, server.address)
                for other in servers:
                    if other.reachable:
                        self._judge(other)
                return
