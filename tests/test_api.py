import json

import pytest

from service.genres import DEFAULT

from .conftest import make_client

WIZARD = "A young wizard embarks on an adventure to defeat a dark sorcerer."


def test_readme_curl_answers_fantasy_or_adventure(client):
    # curl -X POST http://127.0.0.1:5000/classify -H "Content-Type: application/json" -d '{"description": "..."}'
    response = client.post("/classify", content=json.dumps({"description": WIZARD}),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    body = response.json()
    assert {"Fantasy", "Adventure"} & set(body["genres"])
    assert set(body["genres"]) <= set(DEFAULT.names) and len(set(body["genres"])) == len(body["genres"])
    assert body["backend"] == "vote"
    scores = body["scores"]
    assert [scores[g] for g in body["genres"]] == sorted((scores[g] for g in body["genres"]), reverse=True)
    assert "neighbours" not in body or body["neighbours"] is None


def test_explain_lists_the_grounding_films(client):
    body = client.post("/classify?explain=true", json={"description": WIZARD}).json()
    first = body["neighbours"][0]
    assert set(first) == {"title", "year", "genres", "similarity", "source"}
    assert 0 < first["similarity"] <= 1
    similarities = [n["similarity"] for n in body["neighbours"]]
    assert similarities == sorted(similarities, reverse=True)


def test_batch_answers_each_description_as_single_calls_do(client):
    texts = [WIZARD, "Two detectives hunt a serial killer through a rainy city."]
    batch = client.post("/classify/batch", json={"descriptions": texts}).json()["results"]
    assert [r["genres"] for r in batch] == [client.post("/classify", json={"description": t}).json()["genres"]
                                           for t in texts]
    assert "Crime" in batch[1]["genres"] or "Thriller" in batch[1]["genres"]


def test_genres_health_and_docs(client, small_index):
    assert client.get("/genres").json() == {"genres": list(DEFAULT.names), "learned": list(DEFAULT.labels),
                                            "llm_only": list(DEFAULT.llm_only)}
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["index_films"] == len(small_index)
    assert health["llm"] == {"backend": "none", "configured": False, "reachable": None, "degraded": False,
                             "last_error": None, "fusion": {}, "cache": None, "load": None}
    assert client.get("/docs").status_code == 200
    assert "/classify" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("body, status, says", [
    ({"description": ""}, 422, "empty"),
    ({"description": "  \n\t "}, 422, "empty"),
    ({}, 422, "description: Field required"),
    ({"text": WIZARD}, 422, "description"),
    ({"description": 42}, 422, "valid string"),
    ({"description": None}, 422, "valid string"),
    ({"description": [WIZARD]}, 422, "valid string"),
    ([WIZARD], 422, "valid dictionary"),
    ({"description": "a\x00b"}, 422, "NUL"),
])
def test_bad_descriptions_are_refused_with_a_reason(client, body, status, says):
    response = client.post("/classify", json=body)
    assert response.status_code == status
    assert says in response.json()["error"]


@pytest.mark.parametrize("raw, status", [
    (b'{"description": "unterminated', 400),
    (b"not json at all", 400),
    (b'{"description": "caf\xe9"}', 400),  # Latin-1, not UTF-8
    (b"[" * 5000 + b"]" * 5000, 400),
])
def test_malformed_bodies_are_refused(client, raw, status):
    response = client.post("/classify", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.json()["error"]


def test_unknown_mode_is_refused(client):
    response = client.post("/classify?mode=telepathy", json={"description": WIZARD})
    assert response.status_code == 422 and "mode" in response.json()["error"]


def test_unknown_query_parameter_is_refused(client):
    response = client.post("/classify?explian=true", json={"description": WIZARD})
    assert response.status_code == 422 and "explian" in response.json()["error"]


def test_oversized_body_is_refused_before_it_is_read(client):
    response = client.post("/classify", json={"description": "word " * 20_000})
    assert response.status_code == 413 and "larger than" in response.json()["error"]


def test_streamed_oversized_body_is_refused(client):
    chunks = (b"x" * 16_384 for _ in range(10))  # no Content-Length: chunked transfer
    response = client.post("/classify", content=chunks, headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_description_over_the_character_limit_is_refused(small_index_dir):
    client = make_client(small_index_dir, max_description_chars=100)
    response = client.post("/classify", json={"description": "a" * 101})
    assert response.status_code == 422 and "100 characters" in response.json()["error"]
    padded = client.post("/classify", json={"description": "a" + "\n" * 100})  # the limit is on what was sent
    assert padded.status_code == 422


@pytest.mark.parametrize("body, status", [
    ({"descriptions": []}, 422),
    ({"descriptions": [WIZARD, ""]}, 422),
    ({"descriptions": [WIZARD] * 65}, 422),
])
def test_bad_batches_are_refused(client, body, status):
    response = client.post("/classify/batch", json=body)
    assert response.status_code == status and response.json()["error"]


def test_without_an_index_the_service_says_what_to_run(tmp_path):
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.settings import Settings

    with TestClient(create_app(Settings(index_dir=tmp_path, llm_backend="none"))) as client:
        response = client.post("/classify", json={"description": WIZARD})
        assert response.status_code == 503 and "make build-index" in response.json()["error"]
        assert client.get("/health").status_code == 503


def test_unknown_route_is_json_404(client):
    response = client.get("/nowhere")
    assert response.status_code == 404 and response.json()["error"]
