"""An event loop on a daemon thread of its own, for the LLM's calls: the service's requests, file runs, Ray actors
and evaluations all wait on the LLM through it, so a call in flight costs a coroutine, not a thread."""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine

CLOSE_TIMEOUT_S = 5.0


class BackgroundLoop:
    """Started on first use; `close()` cancels what still runs and stops it."""

    def __init__(self, name: str):
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def submit(self, coroutine: Coroutine) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self._running())

    def run(self, coroutine: Coroutine, timeout: float | None = None):
        """Blocks the calling thread (never the loop's own) until the coroutine is done."""
        return self.submit(coroutine).result(timeout)

    async def wait(self, coroutine: Coroutine):
        """Awaited from another event loop (the API's): runs there, costs the caller no thread."""
        return await asyncio.wrap_future(self.submit(coroutine))

    def close(self, last: Coroutine | None = None) -> None:
        """Cancel every task still running, run `last` (closing clients), stop the loop and its thread."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            if last is not None:
                last.close()  # never started: nothing to close on it
            return
        try:
            asyncio.run_coroutine_threadsafe(_shut_down(last), loop).result(CLOSE_TIMEOUT_S)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CLOSE_TIMEOUT_S)
        if not thread.is_alive():
            loop.close()

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name=self.name, daemon=True)
                self._thread.start()
            return self._loop


async def _shut_down(last: Coroutine | None) -> None:
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    if last is not None:
        await last
