"""Editors' corrections: POST /feedback is answered at once, by this process and by the others on the index,
survives a kill, can be revoked, and the next build folds it in."""
import json
import signal
import time

import httpx
import pytest

from service.corrections import CorrectionStore, store_path

from .conftest import copy_index, make_client, serving_client, tmdb_rows, write_generic_csv
from .processes import free_port, serve, wait_ready

EDITORS = "alice:s3cret-alice, bob:s3cret-bob"
ALICE = {"X-API-Key": "s3cret-alice"}
BOB = {"Authorization": "Bearer s3cret-bob"}
# a story no film of the small reference tells, in two sentences: the first alone is the paraphrase
STORY = ("A retired lighthouse keeper teaches a flock of orphaned geese to fly south by leading them in his "
         "homemade glider. Along the coast he meets a travelling circus whose acrobats help him finish the journey.")
FIRST_SENTENCE = STORY.split(". ")[0] + "."
CORRECTED = ["Western", "Music"]  # no vote would answer these two for this story


def _classify(client, text, **params):
    response = client.post("/classify", params={"explain": "true"} | params, json={"description": text})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def editors_client(own_index_dir):
    """English only (faster to load); the test of other scripts takes both parts."""
    return make_client(own_index_dir, feedback_token=EDITORS, multilingual_model="")


@pytest.fixture(scope="module")
def guarded_client(small_index_dir, tmp_path_factory):
    """One client for the tests of refused feedback, which store nothing."""
    with serving_client(copy_index(small_index_dir, tmp_path_factory.mktemp("guarded") / "index"),
                        feedback_token=EDITORS, multilingual_model="") as client:
        yield client


def test_a_correction_is_answered_at_once_for_the_same_and_a_paraphrased_text(editors_client):
    before = _classify(editors_client, STORY)
    assert set(before["genres"]) != set(CORRECTED)
    stored = editors_client.post("/feedback", headers=ALICE, json={"text": STORY, "genres": CORRECTED})
    assert stored.status_code == 201, stored.text
    assert stored.json()["author"] == "alice"
    for text in (STORY, FIRST_SENTENCE):
        answer = _classify(editors_client, text)
        assert answer["genres"] == CORRECTED
        assert answer["recognised"]["source"] == "correction"
        assert answer["recognised"]["correction_id"] == stored.json()["id"]
        assert answer["neighbours"][0]["source"] == "correction"


def test_revoking_a_correction_undoes_it_at_once(editors_client):
    before = _classify(editors_client, STORY)["genres"]
    stored = editors_client.post("/feedback", headers=ALICE, json={"text": STORY, "genres": CORRECTED}).json()
    revoked = editors_client.delete(f"/feedback/{stored['id']}", headers=BOB)
    assert revoked.status_code == 200 and revoked.json()["revoked_by"] == "bob"
    answer = _classify(editors_client, STORY)
    assert answer["recognised"] is None and answer["genres"] == before
    assert all(n["source"] != "correction" for n in answer["neighbours"])
    assert editors_client.delete("/feedback/999", headers=BOB).status_code == 404


def test_other_descriptions_see_a_corrected_film_as_a_neighbour(editors_client):
    editors_client.post("/feedback", headers=ALICE, json={"text": STORY, "genres": CORRECTED})
    nearby = "An old man flies a glider to guide young geese on their migration."
    answer = _classify(editors_client, nearby)
    assert "correction" in [n["source"] for n in answer["neighbours"]]


def test_a_title_the_reference_knows_corrects_that_film_for_its_plot_and_its_title(own_index_dir):
    # no polling: the correction must reach this process's cached lookups without reading the store again
    editors_client = make_client(own_index_dir, feedback_token=EDITORS, multilingual_model="",
                                 corrections_poll=0)
    film = tmdb_rows(0, 1)[0]  # Avatar, in the small reference
    assert "Western" not in _classify(editors_client, film["title"], mode="lookup")["genres"]  # now cached
    stored = editors_client.post("/feedback", headers=ALICE, json={"text": film["title"], "genres": ["Western"]})
    assert stored.status_code == 201, stored.text
    assert (stored.json()["title"], stored.json()["year"]) == (film["title"], int(film["year"]))
    assert _classify(editors_client, film["plot"])["genres"] == ["Western"]
    looked_up = _classify(editors_client, film["title"], mode="lookup")
    assert looked_up["genres"][:1] == ["Western"] and looked_up["genre_sources"]["Western"][0] == "correction"


def test_corrections_are_listed_page_by_page_with_who_never_the_token(own_index_dir):
    editors_client = make_client(own_index_dir, feedback_token=EDITORS)  # both parts: the texts' scripts vary
    texts = ["一个年轻的巫师踏上冒险之旅，去击败黑暗魔王。", "رجل عجوز يعلّم الإوز الطيران 🪿", STORY]
    for text in texts:
        stored = editors_client.post("/feedback", headers=BOB, json={"text": text, "genres": ["Fantasy"]})
        assert stored.status_code == 201
    first = editors_client.get("/feedback", params={"limit": 2}, headers=ALICE).json()
    second = editors_client.get("/feedback", params={"offset": first["next_offset"], "limit": 2}, headers=ALICE).json()
    listed = first["corrections"] + second["corrections"]
    assert [c["text"] for c in listed] == texts[::-1]  # the newest first, every script intact
    assert {c["author"] for c in listed} == {"bob"} and second["next_offset"] is None and first["total"] == 3
    assert "s3cret" not in json.dumps(first) + json.dumps(second)
    assert _classify(editors_client, texts[1])["recognised"]["source"] == "correction"


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer s3cret-alic"}])
def test_feedback_without_the_right_token_is_401(guarded_client, headers):
    for method, path in (("post", "/feedback"), ("get", "/feedback"), ("delete", "/feedback/1")):
        body = {"json": {"text": STORY, "genres": ["Drama"]}} if method == "post" else {}
        response = getattr(guarded_client, method)(path, headers=headers, **body)
        assert response.status_code == 401, (method, response.text)
        assert "feedback token" in response.json()["error"]


@pytest.mark.parametrize("token", [None, "", "  "])
def test_feedback_is_off_without_a_token_an_empty_one_included(own_index_dir, token):
    configured = {"feedback_token": token} if token is not None else {}
    client = make_client(own_index_dir, multilingual_model="", **configured)
    response = client.post("/feedback", headers={"X-API-Key": ""}, json={"text": STORY, "genres": ["Drama"]})
    assert response.status_code == 403 and "MOVIEGENRE_FEEDBACK_TOKEN" in response.json()["error"]
    assert client.get("/health").json()["feedback"] == {"enabled": False, "page": False, "corrections": 0,
                                                         "store": "sqlite", "available": True, "problem": None}


def test_the_page_may_send_corrections_only_when_allowed(own_index_dir):
    client = make_client(own_index_dir, feedback_page=True, multilingual_model="")
    stored = client.post("/feedback", json={"text": STORY, "genres": CORRECTED})
    assert stored.status_code == 202 and (stored.json()["author"], stored.json()["status"]) == ("page", "pending")
    assert _classify(client, STORY)["recognised"] is None  # anonymous: it waits for an editor
    assert client.post("/feedback", headers={"X-API-Key": "guess"}, json={"text": STORY, "genres": ["Drama"]}
                       ).status_code == 403  # no editor token is set: a presented one cannot be right
    assert client.get("/feedback").status_code == 403  # listing, approving and revoking are for editors only
    assert client.post("/feedback/1/approve").status_code == 403
    assert client.get("/health").json()["feedback"] == {"enabled": True, "page": True, "corrections": 0,
                                                         "store": "sqlite", "available": True, "problem": None}


@pytest.mark.parametrize("body, status, says", [
    ({"text": STORY, "genres": ["Drama", "Space Opera"]}, 422, "Space Opera"),
    ({"text": STORY, "genres": []}, 422, "genres"),
    ({"text": STORY, "genres": ["Drama"] * 11}, 422, "genres"),
    ({"text": "bad\x00text", "genres": ["Drama"]}, 422, "NUL"),
    ({"text": "\u200b\u200b", "genres": ["Drama"]}, 422, "empty"),
    ({"text": STORY, "genres": ["Drama"], "title": "line\nbreak"}, 422, "title"),
    ({"text": STORY, "genres": ["Drama"], "year": 99999}, 422, "year"),
    ({"text": STORY, "genres": ["Drama"], "admin": True}, 422, "admin"),
    ({"text": "x" * 10_001, "genres": ["Drama"]}, 422, "10000 characters"),
    ({"text": "x" * 70_000, "genres": ["Drama"]}, 413, "bytes"),
    ({"text": ["a list"], "genres": ["Drama"]}, 422, "text"),
])
def test_hostile_or_oversized_feedback_is_refused_with_a_4xx_that_says_why(guarded_client, body, status, says):
    response = guarded_client.post("/feedback", headers=ALICE, json=body)
    assert response.status_code == status, response.text
    assert says in json.dumps(response.json())
    assert guarded_client.get("/feedback", headers=ALICE).json()["total"] == 0


def test_a_correction_changes_what_a_file_run_would_resume(own_index_dir, tmp_path):
    from service.batch.run import Job
    from service.settings import Settings
    from service.store import read_manifest

    source = write_generic_csv(tmp_path / "films.csv", tmdb_rows(0, 3))
    job = Job.of(source, tmp_path / "out.csv", Settings(index_dir=own_index_dir, llm_backend="none"))
    before = job.fingerprint(read_manifest(own_index_dir))
    CorrectionStore(store_path(own_index_dir)).add(STORY, STORY, ["Drama"], None, None, "alice")
    assert job.fingerprint(read_manifest(own_index_dir)) != before


def test_a_correction_acknowledged_by_a_process_killed_right_after_is_served_by_another(small_index_dir, tmp_path):
    index_dir = copy_index(small_index_dir, tmp_path / "index")
    ports = free_port(), free_port()
    servers = [serve(index_dir, port, MOVIEGENRE_FEEDBACK_TOKEN=EDITORS, MOVIEGENRE_CORRECTIONS_POLL="0.5")
               for port in ports]
    first, second = (f"http://127.0.0.1:{port}" for port in ports)
    try:
        for server, url in zip(servers, (first, second)):
            wait_ready(server, url)
        stored = httpx.post(f"{first}/feedback", headers=ALICE, json={"text": STORY, "genres": CORRECTED})
        servers[0].send_signal(signal.SIGKILL)  # right after the 201
        assert stored.status_code == 201
        deadline = time.monotonic() + 10
        while (answer := httpx.post(f"{second}/classify", json={"description": FIRST_SENTENCE}).json())["genres"] \
                != CORRECTED and time.monotonic() < deadline:
            time.sleep(0.2)
        assert answer["genres"] == CORRECTED and answer["recognised"]["source"] == "correction"
    finally:
        for server in servers:
            server.kill()
            server.wait(timeout=30)
    assert [c.text for c in CorrectionStore(store_path(index_dir)).served()] == [STORY]


def test_a_rebuild_folds_the_corrections_in_and_the_side_index_starts_empty(tmp_path, embedder):
    from service.build import build_index
    from service.loading import load_classifier
    from service.settings import Settings

    rows = tmdb_rows(0, 80)
    corpus = write_generic_csv(tmp_path / "films.csv", rows)
    index_dir = tmp_path / "index"
    settings = Settings(index_dir=index_dir, llm_backend="none", multilingual_model="")
    build_index(corpus, index_dir, settings, progress=False)
    store = CorrectionStore(store_path(index_dir))
    store.add(rows[3]["title"], rows[3]["plot"], ["Western"], rows[3]["title"], int(rows[3]["year"]), "alice")
    store.add(STORY, STORY, CORRECTED, None, None, "alice")
    revoked = store.add("A text corrected by mistake.", "A text corrected by mistake.", ["Horror"], None, None, "bob")
    store.revoke(revoked.id, "bob")
    assert len(load_classifier(settings).corrections) == 2

    report = build_index(corpus, index_dir, settings, progress=False)
    # four changes: three corrections sent, one revoked
    assert report.manifest["summary"]["corrections"] == {"store": store.store_id, "through_change": 4, "read": 2,
                                                         "superseded": 0, "added": 1, "replaced": 1}
    classifier = load_classifier(settings)
    assert len(classifier.corrections) == 0
    films = {f.title: f for f in classifier.index.films}
    assert films[rows[3]["title"]].genres == ("Western",)
    assert films["Correction 2"].genres == tuple(CORRECTED) and films["Correction 2"].plot == STORY
    assert classifier.classify(STORY).genres == CORRECTED
    store.add("Another story told later.", "Another story told later.", ["Drama"], None, None, "bob")
    classifier.corrections.refresh()  # what the poll does every MOVIEGENRE_CORRECTIONS_POLL seconds
    assert len(classifier.corrections) == 1


def test_a_store_that_cannot_be_opened_leaves_the_service_answering_without_corrections_until_it_can(
        own_index_dir, monkeypatch):
    import sqlite3

    from service.corrections.sqlite import SQLiteDatabase

    opened = SQLiteDatabase._opened

    def unopenable(database):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(SQLiteDatabase, "_opened", unopenable)  # a read-only index folder, say
    client = make_client(own_index_dir, feedback_token=EDITORS, multilingual_model="", corrections_poll=0)
    answer = client.post("/classify", json={"description": STORY})
    assert answer.status_code == 200 and any("readonly database" in n for n in answer.json()["notes"])
    refused = client.post("/feedback", headers=ALICE, json={"text": STORY, "genres": CORRECTED})
    assert refused.status_code == 503 and "readonly database" in refused.json()["error"]
    assert refused.headers["Retry-After"]
    health = client.get("/health").json()
    assert (health["status"], health["feedback"]["available"]) == ("degraded", False)
    assert client.get("/readyz").json() == {"status": "ready", "degraded": ["corrections_store"]}
    monkeypatch.setattr(SQLiteDatabase, "_opened", opened)  # the folder is writable again: no restart needed
    client.app.state.runtime.classifier.corrections.refresh()  # the poll's next read
    assert client.post("/feedback", headers=ALICE, json={"text": STORY, "genres": CORRECTED}).status_code == 201
    assert _classify(client, STORY)["genres"] == CORRECTED
    assert client.get("/health").json()["feedback"]["available"]


def test_an_approval_after_a_build_is_served_by_every_process_after_a_restart_and_by_the_next_build(tmp_path):
    from service.build import build_index
    from service.loading import load_classifier
    from service.settings import Settings

    corpus = write_generic_csv(tmp_path / "films.csv", tmdb_rows(0, 80))
    index_dir = tmp_path / "index"
    settings = Settings(index_dir=index_dir, llm_backend="none", multilingual_model="", corrections_poll=1e-9)
    store = CorrectionStore(store_path(index_dir))
    waiting = store.add(STORY, STORY, CORRECTED, None, None, "page", review=True)  # sent from the page
    store.add("Another story an editor corrected.", "Another story an editor corrected.", ["Drama"], None, None,
              "alice")  # sent after it, served at once: the build takes it, and not the one waiting
    build_index(corpus, index_dir, settings, progress=False)
    approving, other = load_classifier(settings), load_classifier(settings)  # two replicas on the index
    assert approving.classify(STORY).genres != CORRECTED
    approved = approving.corrections.approve(waiting.id, "alice")
    assert approved.status == "served"
    assert approving.classify(STORY).genres == CORRECTED
    assert other.classify(STORY).genres == CORRECTED  # read from the store at its next poll
    restarted = load_classifier(settings)
    assert restarted.classify(STORY).genres == CORRECTED
    for classifier in (approving, other, restarted):
        classifier.close()
    report = build_index(corpus, index_dir, settings, progress=False)
    assert report.manifest["summary"]["corrections"]["read"] == 2
    rebuilt = load_classifier(settings)
    assert len(rebuilt.corrections) == 0 and rebuilt.classify(STORY).genres == CORRECTED  # the index's own now
    rebuilt.close()
