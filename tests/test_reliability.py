"""Security, request logging, CORS, hot reload of the index, and bodies refused before they are read."""
import json
import logging
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.build import build_index
from service.settings import Settings

from .conftest import make_client, serve_in_thread, tmdb_rows, write_generic_csv

WIZARD = {"description": "A young wizard embarks on an adventure to defeat a dark sorcerer."}


def test_an_api_key_guards_classify_but_not_health(small_index, embedder):
    client = make_client(small_index, embedder, api_key="s3cret")
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


def test_cors_is_off_unless_configured(client, small_index, embedder):
    origin = {"Origin": "https://elsewhere.example"}
    assert "access-control-allow-origin" not in client.post("/classify", json=WIZARD, headers=origin).headers
    allowed = make_client(small_index, embedder, cors_origins=["https://elsewhere.example"])
    response = allowed.post("/classify", json=WIZARD, headers=origin)
    assert response.headers["access-control-allow-origin"] == "https://elsewhere.example"


def test_an_oversized_body_is_refused_before_it_arrives(client, small_index, embedder):
    app = create_app(client.app.state.settings, client.app.state.runtime.classifier)
    with serve_in_thread(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 50000000\r\n\r\n{\"description\": \"")
            answer = conn.recv(4096).decode()  # the 50 MB never come: the answer must not wait for them
    assert answer.startswith("HTTP/1.1 413") and "larger than" in answer


@pytest.fixture
def reloadable(tmp_path, embedder):
    """A served index in a folder of its own, and the settings to rebuild and reload it."""
    index_dir = tmp_path / "index"
    settings = Settings(index_dir=index_dir, llm_backend="none", admin_token="adm1n")
    build_index(write_generic_csv(tmp_path / "a.csv", tmdb_rows(0, 120)), index_dir, embedder, settings,
                progress=False)
    return settings, tmp_path


def test_reload_needs_the_admin_token(reloadable):
    settings, _ = reloadable
    with TestClient(create_app(settings)) as client:
        assert client.post("/admin/reload").status_code == 401
    with TestClient(create_app(settings.model_copy(update={"admin_token": None}))) as client:
        assert client.post("/admin/reload", headers={"X-API-Key": "adm1n"}).status_code == 403


def test_a_rebuilt_index_is_served_after_reload_without_a_failed_request(reloadable, embedder):
    settings, folder = reloadable
    with serve_in_thread(create_app(settings)) as url:
        assert httpx.get(f"{url}/health").json()["index_films"] == 120
        build_index(write_generic_csv(folder / "b.csv", tmdb_rows(0, 150)), settings.index_dir, embedder, settings,
                    progress=False)
        stop = threading.Event()

        def hammer() -> list[int]:
            statuses = []
            with httpx.Client(base_url=url, timeout=30) as http:
                while not stop.is_set():
                    statuses.append(http.post("/classify", json=WIZARD).status_code)
            return statuses

        with ThreadPoolExecutor(4) as pool:
            clients = [pool.submit(hammer) for _ in range(4)]
            time.sleep(0.5)
            reload = httpx.post(f"{url}/admin/reload", headers={"X-API-Key": "adm1n"}, timeout=60)
            time.sleep(0.5)
            stop.set()
            statuses = [s for c in clients for s in c.result()]
        assert reload.status_code == 200 and reload.json()["index_films"] == 150
        assert httpx.get(f"{url}/health").json()["index_films"] == 150
    assert len(statuses) > 10 and set(statuses) == {200}


def test_a_corrupt_new_index_is_refused_and_the_old_one_keeps_serving(reloadable, embedder):
    settings, folder = reloadable
    with TestClient(create_app(settings)) as client:
        manifest = build_index(write_generic_csv(folder / "b.csv", tmdb_rows(0, 150)), settings.index_dir,
                               embedder, settings, progress=False).manifest
        (settings.index_dir / manifest["build"] / "vectors.faiss").write_bytes(b"garbage")
        refused = client.post("/admin/reload", headers={"X-API-Key": "adm1n"})
        assert refused.status_code == 409 and "keeps serving" in refused.json()["error"]
        assert client.get("/health").json()["index_films"] == 120
        assert client.post("/classify", json=WIZARD).status_code == 200
        shutil.rmtree(settings.index_dir / "builds")
        assert client.post("/admin/reload", headers={"X-API-Key": "adm1n"}).status_code == 409
