"""`moviegenre serve`: the HTTP API, one process or Ray Serve replicas, optionally building what the index lacks."""
from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Annotated

import typer

from service.cli.console import console
from service.settings import Settings

STOP_BUILD_S = 10  # a build asked to stop ends within this, or is killed


def serve(
    build_missing: Annotated[bool, typer.Option(
        "--build-missing",
        help="build what the index lacks in the background, serving as soon as English is ready")] = False,
    data: Annotated[str | None, typer.Option(help="the corpus for --build-missing (default: $MOVIEGENRE_DATA)")] = None,
    replicas: Annotated[int, typer.Option(
        help="more than 1: Ray Serve replicas of the app behind one port (needs the ray extra)")] = 1,
    replica_cpus: Annotated[float, typer.Option(
        help="CPUs Ray reserves for each replica (the replicas may use more when idle cores exist)")] = 0.5,
) -> None:
    """serve the HTTP API (MOVIEGENRE_HOST, MOVIEGENRE_PORT)"""
    import logging

    import uvicorn

    from service.api.app import create_app

    settings = Settings()
    logging.basicConfig(level=settings.service.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings.ensure_servable()
    build = _build_missing_parts(settings, data) if build_missing else None
    try:
        if replicas > 1:
            from service.api.replicas import serve_replicas

            serve_replicas(settings, replicas, replica_cpus)
            return
        # TLS on the same port when a certificate is configured (uvicorn's own); RequestLog writes one structured
        # line per request instead of uvicorn's access log
        service, operations = settings.service, settings.operations
        with _terminate_as_exit():
            uvicorn.run(create_app(settings), host=service.host, port=service.port, log_level=service.log_level,
                        access_log=False, ssl_certfile=operations.ssl_certfile, ssl_keyfile=operations.ssl_keyfile)
    finally:
        _stop(build)


def _build_missing_parts(settings: Settings, data: str | None):
    """Start `build-index` in the background when the index lacks a part the settings use, and wait until
    the English part is current: the service answers from it while the rest is built (it picks the
    multilingual part up when that build completes)."""
    import subprocess
    import time

    from service.store import FORMAT_VERSION, IndexLoadError, read_manifest

    def built_parts() -> set[str]:
        try:
            manifest = read_manifest(settings.index.dir) or {}
        except IndexLoadError:
            return set()
        return set(manifest.get("parts", {})) if manifest.get("format_version") == FORMAT_VERSION else set()

    if set(settings.index.part_models()) <= built_parts():
        return None
    from service.genres import Vocabulary

    existing = read_manifest(settings.index.dir) if built_parts() else None
    if existing and not Vocabulary.from_manifest(existing.get("vocabulary")).is_default() and data is None:
        console.print("the index has its own vocabulary: its missing parts are not rebuilt from the default corpus "
                      "(run `make build-index DATA=… VOCABULARY=… INDEX=…`)")
        return None
    console.print("building the missing parts of the index in the background (`moviegenre build-index`)…")
    # at a lower CPU priority: once the English part is current the service starts and answers beside the rest
    # of the build (several minutes of multilingual embedding on every core), and its requests come first
    with _terminate_as_exit():
        build = subprocess.Popen([sys.executable, "-m", "service.cli", "build-index"] +
                                 (["--data", data] if data else []), preexec_fn=lambda: os.nice(10))
        try:
            while "english" not in built_parts():
                if build.poll() is not None:
                    raise SystemExit(f"build-index failed (exit {build.returncode}): see its output above")
                time.sleep(1)
        except BaseException:  # stopped (SIGTERM, Ctrl-C) before serving: the build goes with it
            _stop(build)
            raise
    return build


@contextlib.contextmanager
def _terminate_as_exit():
    """SIGTERM raises SystemExit meanwhile: Python's default ends the process at once, skipping every cleanup, and
    uvicorn, which handles SIGTERM while it serves, raises it again once it has shut down."""
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop(build) -> None:
    """Ends a background build still running, and reaps it (the embeddings it saved are kept: the next start goes
    on from there)."""
    import subprocess

    if build is None or build.poll() is not None:
        return
    build.terminate()
    try:
        build.wait(timeout=STOP_BUILD_S)
    except subprocess.TimeoutExpired:
        build.kill()
        build.wait()
