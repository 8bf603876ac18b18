"""Whether the LLM server answers, for /health: probed on a thread of its own at most once per TTL.

/health is open and may be polled by any monitor. Probing from the request path would make every poll an
outbound call and, with a hung server, hold a worker for as long as the client's timeout."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ReachabilityProbe:
    def __init__(self, check: Callable[[], bool], ttl_s: float = 15.0, first_wait_s: float = 2.0):
        self._check = check
        self.ttl_s = ttl_s
        self.first_wait_s = first_wait_s
        self._lock = threading.Lock()
        self._reachable: bool | None = None   # None until a probe has finished
        self._checked_at = float("-inf")
        self._probing: threading.Thread | None = None

    def reachable(self) -> bool:
        """The last probe's answer; a stale one starts a new probe in the background (never two at once).
        Only the very first call waits, briefly, for an answer: until a probe answers, the LLM reads as
        unreachable."""
        with self._lock:
            first = self._checked_at == float("-inf") and self._probing is None
            if self._probing is None and time.monotonic() - self._checked_at > self.ttl_s:
                self._probing = threading.Thread(target=self._probe, name="llm-probe", daemon=True)
                self._probing.start()
            probing = self._probing
        if first:
            probing.join(self.first_wait_s)
        return bool(self._reachable)

    def _probe(self) -> None:
        try:
            answer = bool(self._check())
        except Exception:  # noqa: BLE001 - whatever a server's odd answer makes a client raise: not reachable
            answer = False
        with self._lock:
            self._reachable, self._checked_at, self._probing = answer, time.monotonic(), None
