"""The FastAPI application: routes, error shapes, and the classifier it serves."""
from __future__ import annotations

import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.limits import BodySizeLimit
from service.api.models import (BatchRequest, BatchResponse, ClassifyRequest, ClassifyResponse, ErrorResponse,
                                CompanyOut, GenresResponse, HealthResponse, LLMHealth, LookupOut, MatchOut,
                                NeighbourOut)
from service.classifier import Classification, Classifier
from service.genres import VOCABULARY
from service.lookup.lookup import LookupResult, combine, make_lookup
from service.settings import Settings
from service.store import IndexLoadError

WEB = Path(__file__).resolve().parent.parent / "web"
ERRORS = {code: {"model": ErrorResponse} for code in (400, 413, 422, 503)}


def load_classifier(settings: Settings) -> Classifier:
    from service.embedder import Embedder
    from service.llm import make_backend
    from service.build import SCORER_FILE
    from service.heads import BlendedScorer
    from service.store import artifact_path, load_index

    embedder = Embedder(settings.embedding_model, settings.embed_batch_size)
    index = load_index(settings.index_dir, embedder.model_name, embedder.dim)
    scorer_path = artifact_path(settings.index_dir, index.manifest, SCORER_FILE)
    scorer = BlendedScorer.load(scorer_path) if scorer_path.exists() else None
    return Classifier(index, embedder, make_backend(settings), settings, scorer)


def create_app(settings: Settings | None = None, classifier: Classifier | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if app.state.classifier is None:
            try:
                app.state.classifier = load_classifier(settings)
                app.state.lookup = make_lookup(settings, app.state.classifier.index)
            except IndexLoadError as exc:
                app.state.unavailable = str(exc)
        yield

    app = FastAPI(title="Movie genre classifier", version="0.1.0", lifespan=lifespan,
                  description="Genres of a film from what you know about it, grounded in similar labelled plots.")
    app.state.settings = settings
    app.state.classifier = classifier
    app.state.lookup = make_lookup(settings, classifier.index) if classifier else None
    app.state.unavailable = None
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    _install_error_handlers(app)
    _add_routes(app, settings)
    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app


def _classifier(request: Request) -> Classifier:
    classifier = request.app.state.classifier
    if classifier is None:
        raise HTTPException(503, request.app.state.unavailable or "the classifier is not loaded yet")
    return classifier


def _response(c: Classification, explain: bool, latency_ms: float) -> ClassifyResponse:
    neighbours = [NeighbourOut(title=n.film.title, year=n.film.year, genres=list(n.film.genres),
                               similarity=round(n.similarity, 4)) for n in c.neighbours] if explain else None
    return ClassifyResponse(genres=c.genres, scores={g: round(s, 4) for g, s in c.scores.items() if s > 0},
                            backend=c.backend, llm_genres=c.llm_genres, fallback_reason=c.fallback_reason,
                            latency_ms=round(latency_ms, 2), neighbours=neighbours)


def _lookup_out(found: LookupResult) -> LookupOut:
    return LookupOut(kind=found.kind, available=found.available,
                     matched=MatchOut(**vars(found.match)) if found.match else None,
                     company=CompanyOut(**found.company) if found.company else None,
                     known_genres=found.known_genres, plot_source=found.plot_source, notes=found.notes)


def _check_length(settings: Settings, texts: list[str]) -> None:
    for text in texts:
        if len(text) > settings.max_description_chars:
            raise HTTPException(413, f"a description is limited to {settings.max_description_chars} characters "
                                     f"(got {len(text)})")


def _add_routes(app: FastAPI, settings: Settings) -> None:
    @app.post("/classify", response_model=ClassifyResponse, responses=ERRORS,
              tags=["classify"])
    def classify(request: Request, body: ClassifyRequest,
                 mode: Literal["description", "lookup"] = Query("description"), explain: bool = False,
                 classifier: Classifier = Depends(_classifier)) -> ClassifyResponse:
        """Genres of a film from its description; with mode=lookup, from a title, a review or a company
        name looked up in IMDb and TMDb."""
        _check_length(settings, [body.description])
        started = time.perf_counter()
        if mode == "description":
            return _response(classifier.classify(body.description), explain, (time.perf_counter() - started) * 1000)
        found = request.app.state.lookup.lookup(body.description, body.kind)
        result = classifier.classify(found.plot or body.description)
        response = _response(result, explain, 0.0)
        response.genres, response.genre_sources = combine(found, result.genres, settings.max_genres)
        response.lookup = _lookup_out(found)
        response.latency_ms = round((time.perf_counter() - started) * 1000, 2)
        return response

    @app.post("/classify/batch", response_model=BatchResponse, responses=ERRORS, tags=["classify"])
    def classify_batch(body: BatchRequest, explain: bool = False,
                       classifier: Classifier = Depends(_classifier)) -> BatchResponse:
        """Many descriptions in one call, embedded together."""
        if len(body.descriptions) > settings.max_batch_items:
            raise HTTPException(413, f"a batch is limited to {settings.max_batch_items} descriptions")
        _check_length(settings, body.descriptions)
        started = time.perf_counter()
        results = classifier.classify_many(body.descriptions)
        per_item = (time.perf_counter() - started) * 1000 / len(results)
        return BatchResponse(results=[_response(r, explain, per_item) for r in results])

    @app.get("/health", response_model=HealthResponse, responses={503: {"model": ErrorResponse}}, tags=["service"])
    def health(request: Request) -> HealthResponse:
        """Whether the index is loaded, and whether the configured LLM answers."""
        classifier = _classifier(request)
        reachable = classifier.llm_reachable()
        degraded = classifier.llm is not None and (reachable is False or classifier.llm_last_error is not None)
        llm = LLMHealth(backend=classifier.llm.describe() if classifier.llm else "none",
                        configured=classifier.llm is not None, reachable=reachable, degraded=degraded,
                        last_error=classifier.llm_last_error)
        return HealthResponse(status="degraded" if degraded else "ok", index_films=len(classifier.index),
                              model=classifier.embedder.model_name,
                              built_at=classifier.index.manifest.get("built_at"), llm=llm)

    page = (WEB / "index.html").read_text(encoding="utf-8").replace("{{MAX_CHARS}}",
                                                                     str(settings.max_description_chars))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    @app.get("/genres", response_model=GenresResponse, tags=["service"])
    def genres() -> GenresResponse:
        """The vocabulary every answer is drawn from."""
        return GenresResponse(genres=list(VOCABULARY))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        if any(e["type"] == "json_invalid" for e in errors):
            return JSONResponse({"error": "the body is not valid JSON", "detail": errors}, status_code=400)
        summary = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or e['loc'][0]}: {e['msg']}" for e in errors)
        return JSONResponse({"error": summary, "detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "internal error"}, status_code=500)
