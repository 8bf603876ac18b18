"""Shared fixtures: real rows of ../shared/data, a small reference index built once per session."""
from __future__ import annotations

import contextlib
import csv
import os
from pathlib import Path

import pytest

from service.corpus import read_file
from service.settings import PROJECT_ROOT

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
REFERENCE = SHARED_DATA / "reference"
SMALL_CORPUS_FILMS = 300
MULTILINGUAL = "multilingual-e5-small"
# The exported ONNX models, shared by every index the tests build (exported once, ~30 s, kept between runs).
os.environ.setdefault("MOVIEGENRE_MODELS_DIR", str(PROJECT_ROOT / "tests" / "artifacts" / "models"))
# Indexes the tests build are English only unless a test asks for the multilingual part (its model embeds
# ~35 plots/s here); the shared small index has both.
os.environ["MOVIEGENRE_MULTILINGUAL_MODEL"] = ""


def write_generic_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["title", "year", "plot", "genres", "companies"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def tmdb_rows(start: int, count: int) -> list[dict]:
    """Real films from the TMDB 5000 file, in the generic format (TMDB genre names kept as they are)."""
    raws = [r for r in read_file("tmdb_5000", REFERENCE / "tmdb_5000_movies.csv") if r.plot and r.labels]
    return [{"title": r.title, "year": r.year or "", "plot": r.plot, "genres": ", ".join(r.labels),
             "companies": "|".join(r.companies)} for r in raws[start:start + count]]


@pytest.fixture(scope="session")
def embedder():
    """The English model as the service runs it (int8 ONNX)."""
    from service.embedding import load_embedder
    from service.embedding.export import ensure_exported
    from service.settings import Settings

    models = Settings().index.exported_models()
    ensure_exported(models, "all-MiniLM-L6-v2", progress=False)
    return load_embedder(models, "all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    write_generic_csv(folder / "films.csv", tmdb_rows(0, SMALL_CORPUS_FILMS))
    return folder / "films.csv"


def served_settings(**settings):
    """Settings as the tests run them: no LLM unless asked, and the given overrides."""
    from service.settings import Settings

    return Settings(**({"llm_backend": "none"} | settings))


@pytest.fixture(scope="session")
def small_index_dir(tmp_path_factory, small_corpus, embedder, worker_id) -> Path:
    """300 real films, both index parts (English and multilingual). Under make test's workers (pytest-xdist) it is
    built once, by the first worker to come, beside their folders; each worker serves a copy of its own."""
    index_dir = tmp_path_factory.mktemp("index")
    if worker_id == "master":
        return _built_small_index(small_corpus, index_dir)
    from service.file_lock import held

    run_folder = tmp_path_factory.getbasetemp().parent  # this run's, shared by its workers
    with held(run_folder / "small-index.lock"):
        if not (run_folder / "small-index" / "manifest.json").exists():
            _built_small_index(small_corpus, run_folder / "small-index")
    index_dir.rmdir()
    return copy_index(run_folder / "small-index", index_dir)


def _built_small_index(corpus: Path, index_dir: Path) -> Path:
    from service.build import build_index
    from service.evaluation.held_out import evaluation_sets
    from service.evaluation.runner import held_out_of_index

    settings = served_settings(index_dir=index_dir, multilingual_model=MULTILINGUAL)
    build_index(corpus, index_dir, settings, progress=False)
    # the films `make eval` reports on, embedded once into the index's cache: every copy of the index the tests
    # calibrate on drops them (evaluation/held_out.py) without embedding 2,000 texts again
    held_out_of_index(settings, evaluation_sets(settings))
    return index_dir


@pytest.fixture(scope="session")
def small_index(small_index_dir, embedder):
    from service.store import load_index

    return load_index(small_index_dir, embedder.model_name, embedder.dim)


def make_classifier(index_dir, **settings):
    """What /classify serves from the index in `index_dir`: every part it has, with the heads and blend
    trained with it, the language detector and the LLM configured."""
    from service.loading import load_classifier

    return load_classifier(served_settings(**({"index_dir": index_dir, "multilingual_model": MULTILINGUAL} | settings)))


@contextlib.contextmanager
def serving_client(index_dir, **settings):
    """A TestClient of the app serving `index_dir`, entered: its lifespan runs, and on leaving, its teardown
    closes the classifier (LLM threads and clients). For fixtures."""
    from fastapi.testclient import TestClient

    from service.api.app import create_app

    classifier = make_classifier(index_dir, **settings)
    app = create_app(classifier.settings, classifier)
    with TestClient(app) as client:
        yield client
    if app.state.runtime is not None:
        app.state.runtime.retire()  # the one handed in, or the one a reload put in its place


_OPEN_IN_TEST: list[contextlib.ExitStack] = []


def make_client(index_dir, **settings):
    """serving_client for the length of the current test (closed when the test ends)."""
    stack = contextlib.ExitStack()
    _OPEN_IN_TEST.append(stack)
    return stack.enter_context(serving_client(index_dir, **settings))


@pytest.fixture(autouse=True)
def _close_clients_of_the_test():
    yield
    while _OPEN_IN_TEST:
        _OPEN_IN_TEST.pop().close()


@pytest.fixture(scope="session")
def client(small_index_dir):
    with serving_client(small_index_dir) as client:
        yield client


@pytest.fixture(scope="session")
def imdb_db(tmp_path_factory):
    from .imdb_sample import build_database

    return build_database(tmp_path_factory.mktemp("imdb"))


@contextlib.contextmanager
def serve_in_thread(app):
    """A real uvicorn server on a free loopback port, for tests that need real connections."""
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    app.state.server_loop = server.servers[0].get_loop()  # for tests that act on the server's own event loop
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def copy_index(source: Path, target: Path) -> Path:
    """A private copy of a built index (without the corrections of the source), for tests that change it."""
    import shutil

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("corrections.sqlite*"))
    return target


@pytest.fixture
def own_index_dir(small_index_dir, tmp_path) -> Path:
    return copy_index(small_index_dir, tmp_path / "index")


class HeldDrafts:
    """The classifier's CPU stages (`draft`) wait until `release()` before they start (all but the first `after`):
    requests then hold their admission slots as long as a test wants, a stand-in for CPU work that takes long."""

    def __init__(self, classifier, after: int = 0):
        import threading

        self._gate, self._changed, self.started = threading.Event(), threading.Condition(), 0
        draft = classifier.draft

        def held(*args, **kwargs):
            with self._changed:
                self.started += 1
                self._changed.notify_all()
                waits = self.started > after
            if waits:
                self._gate.wait(30)
            return draft(*args, **kwargs)

        classifier.draft = held

    def wait_started(self, count: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.started >= count, 30)

    def release(self) -> None:
        self._gate.set()


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session, made from the machine's binaries (`make postgres` installs them)."""
    from service.throwaway_postgres import ThrowawayPostgres

    with ThrowawayPostgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request, tmp_path):
    """Where a test's corrections store lives, in each room: a SQLite file, or a database of its own on the
    session's PostgreSQL server."""
    from service.corrections import store_path

    if request.param == "sqlite":
        return store_path(tmp_path)
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def outage_cluster():
    """A PostgreSQL cluster of its own, not started: the test starts and stops it (an outage at will)."""
    from service.throwaway_postgres import ThrowawayPostgres

    cluster = ThrowawayPostgres()
    yield cluster
    cluster.remove()
