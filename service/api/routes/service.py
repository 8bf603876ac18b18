"""/health, the probes, /metrics, /genres, /admin/reload and the web pages.

/livez, /readyz and /metrics answer from the event loop, calling nothing that blocks (they read what is in
memory); /health on a thread of its own (api/lanes.py). So neither classification, nor lookups waiting on TMDb, nor
anything holding the thread pool of FastAPI's plain `def` routes can make a probe wait."""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import current_runtime, require_admin
from service.api.models import (AnswerCacheOut, ErrorResponse, FeedbackHealth, FusionOut, GenresResponse,
                                HealthResponse, JobsHealth, LLMHealth, LLMLoadOut, MultilingualHealth, ProbeResponse,
                                ReadyResponse, ReloadResponse)
from service.api.state import Runtime, reload_runtime
from service.store import IndexLoadError

WEB = Path(__file__).resolve().parent.parent.parent / "web"
router = APIRouter(tags=["service"])


@router.get("/health", response_model=HealthResponse, responses={503: {"model": ErrorResponse}})
async def health(request: Request, runtime: Runtime = Depends(current_runtime)) -> HealthResponse:
    """Whether the index is loaded, and whether the configured LLM answers."""
    return await request.app.state.admission.probes.run(None, health_of, request, runtime)


def health_of(request: Request, runtime: Runtime) -> HealthResponse:
    """/health's answer, made on the probes' own thread: the first look at the LLM waits for its probe (briefly),
    which must hold neither the event loop nor the thread pool of the `def` routes."""
    classifier = runtime.classifier
    reachable = classifier.llm_reachable()
    degraded = classifier.llm is not None and (reachable is False or classifier.llm_last_error is not None)
    llm = LLMHealth(backend=classifier.llm.describe() if classifier.llm else "none",
                    configured=classifier.llm is not None, reachable=reachable, degraded=degraded,
                    last_error=classifier.llm_last_error,
                    fusion={r.name: FusionOut(**vars(r.fusion)) for r in classifier.routes()} if classifier.llm else {},
                    cache=AnswerCacheOut(**classifier.llm.stats()) if classifier.llm else None,
                    load=LLMLoadOut(**classifier.llm.load()) if classifier.llm else None)
    multilingual = MultilingualHealth(status=classifier.multilingual_status,
                                      model=classifier.settings.index.multilingual_model or None,
                                      last_error=request.app.state.multilingual_error)
    settings = classifier.settings
    corrections = settings.corrections
    side = classifier.corrections  # None only where a caller took corrections out (an evaluation)
    feedback = FeedbackHealth(enabled=bool(corrections.editors()) or corrections.feedback_page,
                              page=corrections.feedback_page, corrections=len(side) if side is not None else 0,
                              store=side.store.kind if side is not None else "sqlite",
                              available=side is not None and side.problem is None,
                              problem=side.problem if side is not None else "corrections are off")
    degraded = degraded or not feedback.available
    return HealthResponse(status="degraded" if degraded else "ok", index_films=len(classifier.index),
                          model=classifier.embedder.model_name, multilingual=multilingual,
                          built_at=classifier.index.manifest.get("built_at"), llm=llm, feedback=feedback,
                          jobs=_jobs_health(request))


def _jobs_health(request: Request) -> JobsHealth:
    settings = request.app.state.settings
    return JobsHealth(enabled=request.app.state.jobs.store.writable(),
                      needs_key=bool(settings.service.api_keys() or settings.corrections.editors()),
                      max_upload_bytes=settings.jobs.max_upload_bytes, max_jobs=settings.jobs.max_jobs,
                      keep_hours=settings.jobs.keep_hours)


@router.get("/livez", response_model=ProbeResponse)
async def livez() -> ProbeResponse:
    """Liveness: the process is up and answering (whether an index is loaded or not)."""
    return ProbeResponse(status="alive")


@router.get("/readyz", response_model=ReadyResponse, responses={503: {"model": ErrorResponse}})
async def readyz(request: Request) -> ReadyResponse:
    """Readiness: an index is loaded and serving (and, with MOVIEGENRE_READY_NEEDS_MULTILINGUAL, its multilingual
    part too). 503 while there is none, or while it is being built or reloaded."""
    state = request.app.state
    runtime = state.runtime
    if runtime is None:
        raise HTTPException(503, f"not ready: {state.unavailable or 'no index loaded yet'}")
    status = runtime.classifier.multilingual_status
    if state.settings.operations.ready_needs_multilingual and status != "ready":
        raise HTTPException(503, f"not ready: the multilingual part is {status}")
    corrections = runtime.classifier.corrections
    store_down = corrections is not None and corrections.problem is not None
    return ReadyResponse(status="ready", degraded=["corrections_store"] if store_down else [])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format (MOVIEGENRE_METRICS=false turns it off)."""
    if request.app.state.metrics is None:
        raise HTTPException(404, "metrics are off (MOVIEGENRE_METRICS=false)")
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/genres", response_model=GenresResponse, responses={503: {"model": ErrorResponse}})
def genres(runtime: Runtime = Depends(current_runtime)) -> GenresResponse:
    """The vocabulary every answer is drawn from: the serving index's."""
    vocabulary = runtime.classifier.vocabulary
    return GenresResponse(genres=list(vocabulary.names), learned=list(vocabulary.labels),
                          llm_only=list(vocabulary.llm_only))


@router.post("/admin/reload", response_model=ReloadResponse, dependencies=[Depends(require_admin)],
             responses={code: {"model": ErrorResponse} for code in (401, 403, 409)})
def reload(request: Request) -> ReloadResponse:
    """Load the index `make build-index` last wrote and serve it; requests in flight finish on the old one,
    which is closed after them. A damaged or incompatible index is refused and the current one keeps
    serving. A service that started without an index starts serving here."""
    had_one = request.app.state.runtime is not None
    try:
        classifier = reload_runtime(request.app.state).classifier
    except IndexLoadError as exc:
        keeps = "the current one keeps serving" if had_one else "the service still has no index"
        raise HTTPException(409, f"the new index was refused, {keeps}: {exc}") from exc
    return ReloadResponse(index_films=len(classifier.index), built_at=classifier.index.manifest.get("built_at"))


PAGES = {"/": "index.html", "/review": "review.html", "/files": "files.html"}


def page_route(max_chars: int) -> APIRouter:
    """The pages: / (one film), /review (editors review corrections), /files (a catalogue classified as a job)."""
    pages = APIRouter(include_in_schema=False)
    for path, name in PAGES.items():
        page = (WEB / name).read_text(encoding="utf-8").replace("{{MAX_CHARS}}", str(max_chars))
        pages.add_api_route(path, _serving(page), methods=["GET"], response_class=HTMLResponse)
    return pages


def _serving(page: str):
    def serve() -> str:
        return page

    return serve
