"""What the /jobs routes share with the service: the job store and runners of this process (app.state.jobs), started
and stopped with the app, and how a job classifies here — with the runtime serving now, each text under one of the
CPU slots the routes take (the admission's queue, in arrival order with every request)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import time
from dataclasses import dataclass

from fastapi import HTTPException, Request

from service.api.admission import RETRY_AFTER_S
from service.api.errors import Overloaded
from service.api.keys import caller_of
from service.api.state import serving_runtime
from service.jobs.runner import AtCapacity, IndexChanged, JobRunner, NotReady, Stopped
from service.jobs.store import JobStore
from service.settings import Settings
from service.store import index_identity

LOOP_CHECK_S = 1.0  # how often a runner waiting for its text looks whether the app's event loop still runs
REPLICA = f"{socket.gethostname()}:{os.getpid()}"


class ServiceDrafting:
    """Drafting (jobs/runner.py) by this app: called from a runner's thread, run on the app's event loop."""

    def __init__(self, state, loop: asyncio.AbstractEventLoop):
        self.state, self.loop = state, loop

    def manifest(self) -> dict | None:
        runtime = self.state.runtime
        return runtime.classifier.index.manifest if runtime is not None else None

    def draft(self, texts: list[str], index: str) -> list:
        """One try, bounded by the admission's patience and the texts' CPU work, as long as the loop runs: a try
        the admission turned away is the runner's to make again (AtCapacity), never a retry left running here."""
        if not self.loop.is_running():
            raise Stopped
        future = asyncio.run_coroutine_threadsafe(self._draft(texts, index), self.loop)
        while not future.done():
            concurrent.futures.wait([future], LOOP_CHECK_S)
            if not future.done() and not self.loop.is_running():  # the app is gone: its job resumes at the next start
                future.cancel()
                raise Stopped
        try:
            return future.result()
        except Overloaded as exc:
            raise AtCapacity(RETRY_AFTER_S) from exc
        except concurrent.futures.CancelledError as exc:  # by the loop as it ends
            raise Stopped from exc

    async def _draft(self, texts: list[str], index: str) -> list:
        """Under a CPU slot, in the admission's queue with every request (Overloaded when it turns them away)."""
        with serving_runtime(self.state) as runtime:
            if runtime is None:
                raise NotReady
            if index_identity(runtime.classifier.index.manifest) != index:  # ~25 µs, beside a text's ~3 ms: not cached
                raise IndexChanged
            return await self.state.admission.run(runtime.classifier.draft, texts)


@dataclass
class Jobs:
    store: JobStore
    runner: JobRunner | None = None  # made when the app starts (it needs the app's event loop)


def jobs_of(settings: Settings) -> Jobs:
    jobs = settings.jobs
    return Jobs(JobStore(jobs.folder(settings.index.dir), jobs.max_jobs, jobs.keep_hours * 3600))


def start_jobs(app) -> None:
    """The runners, on the app's event loop (called from its lifespan); they resume the jobs left unfinished."""
    state = app.state
    state.jobs.runner = JobRunner(state.jobs.store, state.settings, ServiceDrafting(state, asyncio.get_running_loop()),
                                  time.time)
    state.jobs.runner.start()


async def stop_jobs(app) -> None:
    """Each runner stops before its next text (the one in flight finishes on the loop, which still runs)."""
    runner = app.state.jobs.runner
    if runner is not None:
        await asyncio.to_thread(runner.stop)
        app.state.jobs.runner = None


async def job_caller(request: Request) -> str:
    """Who sends or reads a job: with API keys or editors' tokens set, a holder of one (401 otherwise); without any,
    anyone ("anonymous"), a job's id being then what gives access to it."""
    settings = request.app.state.settings
    if not settings.service.api_keys() and not settings.corrections.editors():
        return "anonymous"
    caller = caller_of(request.scope, settings)
    if caller is None or not caller.startswith(("api:", "editor:")):
        raise HTTPException(401, "jobs need an API key or an editor's token: send it as X-API-Key or "
                                 "Authorization: Bearer", headers={"WWW-Authenticate": "Bearer"})
    return caller
