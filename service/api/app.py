"""The FastAPI application: settings, the runtime it serves, middleware, routers, static files."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from service.api.admission import Admission, AdmissionMiddleware
from service.api.errors import install_error_handlers
from service.api.jobs import jobs_of, start_jobs, stop_jobs
from service.api.limits import BodySizeLimit
from service.api.metrics import Metrics
from service.api.requestlog import RequestLog
from service.api.routes import classify, feedback, jobs, service
from service.api.state import pick_up_multilingual, runtime_for
from service.loading import load_classifier
from service.classifier import Classifier
from service.settings import Settings
from service.store import IndexLoadError


def create_app(settings: Settings | None = None, classifier: Classifier | None = None) -> FastAPI:
    """The app; it loads the index at start-up unless a classifier is given (tests, which then close it). Raises
    ConfigurationError for settings it must not serve with (a blank API key)."""
    settings = settings or Settings()
    settings.ensure_servable()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if app.state.runtime is None:
            try:
                classifier = load_classifier(settings)
                classifier.warm_up()
                app.state.runtime = app.state.loaded = runtime_for(classifier)
            except IndexLoadError as exc:
                app.state.unavailable = str(exc)
        background = [asyncio.create_task(pick_up_multilingual(app)),
                      asyncio.create_task(app.state.admission.hand_back_memory())]
        start_jobs(app)
        yield
        await stop_jobs(app)  # before the admission's threads go: a job's text in flight finishes on them
        for task in background:
            task.cancel()
        app.state.admission.close()
        # the app closes what it loaded (at start-up or by a reload); a runtime handed in stays its caller's
        if app.state.runtime is not None and app.state.runtime is app.state.loaded:
            await asyncio.to_thread(app.state.runtime.retire)  # closing waits on the LLM's loop: not on this one
            app.state.runtime = app.state.loaded = None

    app = FastAPI(title="Movie genre classifier", version="0.1.0", lifespan=lifespan,
                  description="Genres of a film from what you know about it, grounded in similar labelled plots.")
    app.state.settings = settings
    app.state.runtime = runtime_for(classifier) if classifier else None
    app.state.loaded = None  # the runtime the app loaded itself, and so closes at shutdown
    app.state.unavailable = None
    app.state.multilingual_error = None
    app.state.metrics = Metrics(app.state) if settings.operations.metrics else None
    app.state.admission = Admission(settings, app.state.metrics, _rate_limit(settings.operations.rate_limit, settings))
    # corrections sent from the page without a token wait for review, and each client may send only so many
    app.state.page_feedback_limit = _rate_limit(settings.corrections.feedback_page_rate_limit, settings) \
        if settings.corrections.feedback_page else None
    app.state.jobs = jobs_of(settings)
    _add_middleware(app, settings)
    install_error_handlers(app)
    _add_routes(app, settings)
    _document_limits(app, settings)
    return app


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """Innermost first: admission (who asks, load shedding, rate limit, the body), the body limit, CORS, the request
    log and metrics; the routes take their CPU slots from the same admission."""
    uploads = {("POST", "/jobs"): settings.jobs.max_upload_bytes}  # streamed to disk, each with its own limit
    app.add_middleware(AdmissionMiddleware, admission=app.state.admission, streamed=frozenset(uploads))
    app.add_middleware(BodySizeLimit, max_bytes=settings.service.max_body_bytes, uploads=uploads)
    if settings.service.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.service.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Content-Type", "Authorization", "X-API-Key", "Idempotency-Key"],
                           expose_headers=["Retry-After", "Idempotent-Replayed", "X-Request-ID"])
    app.add_middleware(RequestLog, metrics=app.state.metrics)


def _add_routes(app: FastAPI, settings: Settings) -> None:
    """The API's routers, the page and its static files."""
    app.include_router(classify.router)
    app.include_router(feedback.router)
    app.include_router(jobs.router)
    app.include_router(service.router)
    app.include_router(service.page_route(settings.service.max_description_chars))
    app.mount("/static", StaticFiles(directory=service.WEB), name="static")


def _rate_limit(rate: str | None, settings: Settings):
    """A RateLimit of `rate`, or None without one (the `limits` library is then never imported)."""
    if rate is None:
        return None
    from service.api.ratelimit import RateLimit

    return RateLimit(rate, settings)


def _document_limits(app: FastAPI, settings: Settings) -> None:
    """Put the configured input limits into the OpenAPI schema (they are settings, not constants)."""
    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            models = schema["components"]["schemas"]
            models["ClassifyRequest"]["properties"]["description"]["maxLength"] = settings.service.max_description_chars
            batch = models["BatchRequest"]["properties"]["descriptions"]
            batch["maxItems"] = settings.service.max_batch_items
            batch["items"]["maxLength"] = settings.service.max_description_chars
        return app.openapi_schema

    app.openapi = openapi
