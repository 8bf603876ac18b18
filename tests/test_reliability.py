"""Security, request logging, CORS, hot reload of the index, and bodies refused before they are read."""
import json
import logging
import shutil
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.build import build_index
from service.settings import Settings

from .conftest import make_client, serve_in_thread, tmdb_rows, write_generic_csv

WIZARD = {"description": "A young wizard embarks on an adventure to defeat a dark sorcerer."}


def test_an_api_key_guards_classify_but_not_health(small_index_dir):
    client = make_client(small_index_dir, api_key="s3cret")
    for path, body in (("/classify", WIZARD), ("/classify/batch", {"descriptions": [WIZARD["description"]]})):
        assert client.post(path, json=body).status_code == 401
        assert client.post(path, json=body, headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.post(path, json=body, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert client.post(path, json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    refused = client.post("/classify", json=WIZARD)
    assert "API key" in refused.json()["error"] and refused.headers["www-authenticate"] == "Bearer"
    assert client.get("/health").status_code == 200


def test_each_request_is_one_structured_log_line_without_its_text(client, caplog):
    with caplog.at_level(logging.INFO, logger="moviegenre"):
        response = client.post("/classify?mode=description", json=WIZARD)
    [line] = [r.getMessage() for r in caplog.records if r.name == "moviegenre.requests"]
    record = json.loads(line)
    assert record == record | {"method": "POST", "path": "/classify", "mode": "description", "backend": "vote",
                               "status": 200, "id": response.headers["x-request-id"]}
    assert record["latency_ms"] > 0
    assert "wizard" not in caplog.text


def test_texts_are_logged_only_with_debug_logging(client, caplog):
    with caplog.at_level(logging.DEBUG, logger="moviegenre"):
        client.post("/classify", json=WIZARD)
    assert "wizard" in caplog.text


def test_cors_is_off_unless_configured(client, small_index_dir):
    origin = {"Origin": "https://elsewhere.example"}
    assert "access-control-allow-origin" not in client.post("/classify", json=WIZARD, headers=origin).headers
    allowed = make_client(small_index_dir, cors_origins=["https://elsewhere.example"])
    response = allowed.post("/classify", json=WIZARD, headers=origin)
    assert response.headers["access-control-allow-origin"] == "https://elsewhere.example"
    # an editor's tool on that origin may send a correction safely (Idempotency-Key), revoke one, and read why not
    preflight = allowed.options("/feedback/7", headers=origin | {
        "Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "x-api-key, idempotency-key"})
    assert preflight.status_code == 200 and "DELETE" in preflight.headers["access-control-allow-methods"]
    assert "idempotency-key" in preflight.headers["access-control-allow-headers"].lower()
    assert "retry-after" in response.headers["access-control-expose-headers"].lower()


def test_an_oversized_body_is_refused_before_it_arrives(client, small_index_dir):
    app = create_app(client.app.state.settings, client.app.state.runtime.classifier)
    with serve_in_thread(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 50000000\r\n\r\n{\"description\": \"")
            answer = _read_answer(conn)  # the 50 MB never come: the answer must not wait for them
    assert answer.startswith("HTTP/1.1 413") and "larger than" in answer


def _read_answer(conn: socket.socket) -> str:
    """Headers and the whole body their Content-Length announces (one recv may bring the headers alone)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _content_length(data):
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode()


def _content_length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@pytest.fixture
def reloadable(tmp_path):
    """A served index in a folder of its own, and the settings to rebuild and reload it."""
    index_dir = tmp_path / "index"
    settings = Settings(index_dir=index_dir, llm_backend="none", admin_token="adm1n")
    build_index(write_generic_csv(tmp_path / "a.csv", tmdb_rows(0, 120)), index_dir, settings,
                progress=False)
    return settings, tmp_path


def test_reload_needs_the_admin_token(reloadable):
    settings, _ = reloadable
    with TestClient(create_app(settings)) as client:
        assert client.post("/admin/reload").status_code == 401
    with TestClient(create_app(settings.replace(admin_token=None))) as client:
        assert client.post("/admin/reload", headers={"X-API-Key": "adm1n"}).status_code == 403


def test_a_rebuilt_index_is_served_after_reload_without_a_failed_request(reloadable):
    settings, folder = reloadable
    with serve_in_thread(create_app(settings)) as url:
        assert httpx.get(f"{url}/health").json()["index_films"] == 120
        build_index(write_generic_csv(folder / "b.csv", tmdb_rows(0, 150)), settings.index.dir, settings,
                    progress=False)
        stop = threading.Event()
        answered = threading.Semaphore(0)

        def hammer() -> list[int]:
            statuses = []
            with httpx.Client(base_url=url, timeout=30) as http:
                while not stop.is_set():
                    statuses.append(http.post("/classify", json=WIZARD).status_code)
                    answered.release()
            return statuses

        with ThreadPoolExecutor(4) as pool:
            clients = [pool.submit(hammer) for _ in range(4)]
            for _ in range(8):  # requests are flowing before the reload …
                assert answered.acquire(timeout=30)
            reload = httpx.post(f"{url}/admin/reload", headers={"X-API-Key": "adm1n"}, timeout=60)
            for _ in range(8):  # … and after it
                assert answered.acquire(timeout=30)
            stop.set()
            statuses = [s for c in clients for s in c.result()]
        assert reload.status_code == 200 and reload.json()["index_films"] == 150
        assert httpx.get(f"{url}/health").json()["index_films"] == 150
    assert len(statuses) >= 16 and set(statuses) == {200}


def test_a_request_in_flight_across_a_reload_finishes_on_the_old_index_which_closes_after_it(reloadable):
    from .fake_llm import FakeLLMServer

    settings, folder = reloadable
    old_titles = {row["title"] for row in tmdb_rows(0, 120)}
    new_titles = {row["title"] for row in tmdb_rows(200, 150)}
    gate = threading.Event()
    with FakeLLMServer(gate=gate) as llm:
        app = create_app(settings.replace(llm_backend="ollama", ollama_host=llm.url))
        with serve_in_thread(app) as url, ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(httpx.post, f"{url}/classify?explain=true", json=WIZARD, timeout=60)
            assert llm.chat_started.wait(30)  # the request holds the old runtime, waiting on the LLM
            old = app.state.runtime
            build_index(write_generic_csv(folder / "b.csv", tmdb_rows(200, 150)), settings.index.dir,
                        settings, progress=False)
            reload = httpx.post(f"{url}/admin/reload", headers={"X-API-Key": "adm1n"}, timeout=60)
            assert reload.status_code == 200 and not in_flight.done() and not old.closed
            gate.set()
            answer = in_flight.result(timeout=60)
            fresh = httpx.post(f"{url}/classify?explain=true", json=WIZARD, timeout=60).json()
    assert answer.status_code == 200 and answer.json()["backend"] == "ollama"
    assert {n["title"] for n in answer.json()["neighbours"]} <= old_titles
    assert {n["title"] for n in fresh["neighbours"]} <= new_titles
    assert old.closed and not old.classifier.llm.running and old.classifier.llm.backends[0].client._client.is_closed


def test_damaged_trained_heads_are_refused_like_a_damaged_index(reloadable):
    from service.heads import scorer_file

    settings, folder = reloadable
    with TestClient(create_app(settings)) as client:
        manifest = build_index(write_generic_csv(folder / "b.csv", tmdb_rows(0, 150)), settings.index.dir,
                               settings, progress=False).manifest
        (settings.index.dir / manifest["build"] / scorer_file("english")).write_bytes(b"not a pickle")
        refused = client.post("/admin/reload", headers={"X-API-Key": "adm1n"})
        assert refused.status_code == 409 and "trained heads" in refused.json()["error"]
        assert client.post("/classify", json=WIZARD).status_code == 200
    with TestClient(create_app(settings)) as client:  # a start on the damaged build answers 503, not a crash
        response = client.post("/classify", json=WIZARD)
        assert response.status_code == 503 and "run `make build-index`" in response.json()["error"]


def test_a_service_started_without_an_index_starts_serving_on_reload(tmp_path):
    settings = Settings(index_dir=tmp_path / "index", llm_backend="none", admin_token="adm1n")
    with TestClient(create_app(settings)) as client:
        assert client.post("/classify", json=WIZARD).status_code == 503
        refused = client.post("/admin/reload", headers={"X-API-Key": "adm1n"})
        assert refused.status_code == 409 and "still has no index" in refused.json()["error"]
        build_index(write_generic_csv(tmp_path / "a.csv", tmdb_rows(0, 120)), settings.index.dir,
                    settings, progress=False)
        assert client.post("/admin/reload", headers={"X-API-Key": "adm1n"}).json()["index_films"] == 120
        assert client.post("/classify", json=WIZARD).status_code == 200
        assert client.get("/health").status_code == 200


def test_a_corrupt_new_index_is_refused_and_the_old_one_keeps_serving(reloadable):
    settings, folder = reloadable
    with TestClient(create_app(settings)) as client:
        manifest = build_index(write_generic_csv(folder / "b.csv", tmdb_rows(0, 150)), settings.index.dir,
                               settings, progress=False).manifest
        (settings.index.dir / manifest["build"] / "vectors-english.faiss").write_bytes(b"garbage")
        refused = client.post("/admin/reload", headers={"X-API-Key": "adm1n"})
        assert refused.status_code == 409 and "keeps serving" in refused.json()["error"]
        assert client.get("/health").json()["index_films"] == 120
        assert client.post("/classify", json=WIZARD).status_code == 200
        shutil.rmtree(settings.index.dir / "builds")
        assert client.post("/admin/reload", headers={"X-API-Key": "adm1n"}).status_code == 409
