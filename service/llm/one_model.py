"""A pool of LLM servers serves one model: the answer cache and the calibration belong to a model (cache.py,
calibration.py), so a server whose model list says it serves another is kept out, not silently mixed in.

The pool's model is its first server's, in the order given, whose model list answered and lists the model (once every
server before it has answered or failed to); a server of another model is set aside with that reason, and so is one
whose list does not have the model at all (never the pool's model: "absent" is no model), each read again at each
probe. When every reachable server that has the model lists one other than the pool's, and no server was last
read serving the pool's (an upgrade on all of them: `ollama pull`, a new file loaded), the pool adopts it, the
servers it kept out for their model come back at once, and the gate is told (its cached answers were the previous
model's). What a model list tells is the backend's
`served_model()` (Ollama: the model's digest; an OpenAI-compatible server: the ids it lists; None: not there)."""
from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from service.llm.server import Server

log = logging.getLogger("moviegenre")

NOT_HERE = "the model is not on this server: its model list does not list it"


class OneModel:
    def __init__(self, set_aside: Callable[[Server, str], None], adopted: Callable[[str, str], None]):
        """`adopted(old, new)`: the pool now serves `new` instead of `old`, which no reachable server serves."""
        self.reference: str | None = None  # the model the pool serves, as a model list said it
        self._set_aside = set_aside
        self._adopted = adopted
        self._kept_out: set[Server] = set()  # set aside for the model they serve (or lack), by _judge

    def checked(self, server: Server | None, servers: list[Server], probing: Collection[Server] = ()) -> None:
        """After a probe of `server` (None: its model list did not answer); `probing`: the servers whose probe is
        under way (each is judged when its probe ends, not on its last read)."""
        if self.reference is None:
            self._settle(servers, probing)
        elif server is not None:
            self._follow(servers)
            self._judge(server)

    def _judge(self, server: Server) -> None:
        """A server serving another model, or none, is set aside (unless it was already, and is not due for its
        probe); one serving the pool's comes back once its cool-down has passed."""
        why = self._mismatch(server)
        if why is not None:
            if server.breaker.closed or server.breaker.due():
                self._set_aside(server, why)
                self._kept_out.add(server)
        elif server.breaker.due():
            self._rejoin(server)

    def _mismatch(self, server: Server) -> str | None:
        if server.model is None:
            return NOT_HERE
        if server.model != self.reference:
            return (f"it serves another model than the pool's: its model list says {server.model!r}, the pool's is "
                    f"{self.reference!r}")
        return None

    def _rejoin(self, server: Server) -> None:
        server.breaker.rejoin()
        self._kept_out.discard(server)
        log.info("LLM server %s is back in the pool", server.address)

    def _settle(self, servers: list[Server], probing: Collection[Server]) -> None:
        """The pool's model is not known yet: the first server's that lists one, once those before it were read."""
        for server in servers:
            if server.reachable is None:
                return  # not read yet: the model of a server before it may be the pool's
            if server.reachable and server.model is None:
                if server not in probing:
                    self._judge(server)
            elif server.reachable:
                self.reference = server.model
                log.info("the LLM pool serves %r (as %s lists it)", server.model, server.address)
                for other in servers:
                    if other.reachable and other not in probing:
                        self._judge(other)
                return

    def _follow(self, servers: list[Server]) -> None:
        """Every server last read serving the pool's model lists another now, and every reachable server that has the
        model lists the same one: an upgrade on all of them. The pool adopts it; those kept out for serving it come
        back at once. (A server of the pool's model out of reach for a moment is no upgrade: its last read counts.)"""
        if any(s.model == self.reference for s in servers):
            return
        listing = [s for s in servers if s.reachable and s.model is not None]
        models = {s.model for s in listing}
        if len(models) != 1:
            return
        old, self.reference = self.reference, models.pop()
        log.warning("the LLM pool serves %r from now on: every reachable server lists it (it served %r)",
                    self.reference, old)
        for server in listing:
            if server in self._kept_out:
                self._rejoin(server)
        self._adopted(old, self.reference)
