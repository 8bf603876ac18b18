"""/health, /genres, /admin/reload and the web page."""
from __future__ import annotations

import threading
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from service.api.deps import current_runtime, require_admin
from service.api.models import ErrorResponse, GenresResponse, HealthResponse, LLMHealth, ReloadResponse
from service.api.state import Runtime, load_classifier, runtime_for
from service.genres import VOCABULARY
from service.store import IndexLoadError

WEB = Path(__file__).resolve().parent.parent.parent / "web"
router = APIRouter(tags=["service"])
_reload_lock = threading.Lock()


@router.get("/health", response_model=HealthResponse, responses={503: {"model": ErrorResponse}})
def health(runtime: Runtime = Depends(current_runtime)) -> HealthResponse:
    """Whether the index is loaded, and whether the configured LLM answers."""
    classifier = runtime.classifier
    reachable = classifier.llm_reachable()
    degraded = classifier.llm is not None and (reachable is False or classifier.llm_last_error is not None)
    llm = LLMHealth(backend=classifier.llm.describe() if classifier.llm else "none",
                    configured=classifier.llm is not None, reachable=reachable, degraded=degraded,
                    last_error=classifier.llm_last_error)
    return HealthResponse(status="degraded" if degraded else "ok", index_films=len(classifier.index),
                          model=classifier.embedder.model_name, built_at=classifier.index.manifest.get("built_at"),
                          llm=llm)


@router.get("/genres", response_model=GenresResponse)
def genres() -> GenresResponse:
    """The vocabulary every answer is drawn from."""
    return GenresResponse(genres=list(VOCABULARY))


@router.post("/admin/reload", response_model=ReloadResponse, dependencies=[Depends(require_admin)],
             responses={code: {"model": ErrorResponse} for code in (401, 403, 409)})
def reload(request: Request) -> ReloadResponse:
    """Load the index `make build-index` last wrote and serve it; requests in flight finish on the old one,
    which is closed after them. A damaged or incompatible index is refused and the current one keeps
    serving. A service that started without an index starts serving here."""
    state = request.app.state
    with _reload_lock:
        old = state.runtime
        try:
            classifier = load_classifier(state.settings, old.classifier.embedder if old else None)
        except IndexLoadError as exc:
            keeps = "the current one keeps serving" if old else "the service still has no index"
            raise HTTPException(409, f"the new index was refused, {keeps}: {exc}") from exc
        state.runtime, state.unavailable = runtime_for(classifier), None
    if old is not None:
        old.retire()
    return ReloadResponse(index_films=len(classifier.index), built_at=classifier.index.manifest.get("built_at"))


def page_route(max_chars: int) -> APIRouter:
    page = (WEB / "index.html").read_text(encoding="utf-8").replace("{{MAX_CHARS}}", str(max_chars))
    pages = APIRouter(include_in_schema=False)

    @pages.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    return pages
