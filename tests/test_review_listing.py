"""What the editors' view reads of GET /feedback: a search by title or text, and what the service answers each
correction's text today."""
import pytest

from .conftest import copy_index, serving_client

EDITORS = "alice:s3cret-alice"
ALICE = {"X-API-Key": "s3cret-alice"}
SENT = [
    {"text": "Heat (1995)", "genres": ["Crime", "Thriller"]},
    {"text": "A retired lighthouse keeper teaches orphaned geese to fly south in his glider.", "genres": ["Family"]},
    {"text": "一个年轻的巫师踏上冒险之旅，去击败黑暗魔王。", "genres": ["Fantasy"]},
    {"text": "A chemist's 100% pure formula_x turns a sleepy town into a battlefield.", "genres": ["Action"]},
]


@pytest.fixture(scope="module")
def client(small_index_dir, tmp_path_factory):
    index = copy_index(small_index_dir, tmp_path_factory.mktemp("review") / "index")
    with serving_client(index, feedback_token=EDITORS, feedback_page=True, multilingual_model="") as client:
        for body in SENT:
            assert client.post("/feedback", headers=ALICE, json=body).status_code == 201
        yield client


def _found(client, query: str) -> list[str]:
    listed = client.get("/feedback", params={"q": query, "status": "served"}, headers=ALICE).json()
    return [c["text"] for c in listed["corrections"]]


def test_served_corrections_are_found_by_their_title_or_text_in_any_case_and_script(client):
    assert _found(client, "heat") == ["Heat (1995)"]  # by the film's title (a reference film named by the text)
    assert _found(client, "LIGHTHOUSE") == [SENT[1]["text"]]
    assert _found(client, "巫师") == [SENT[2]["text"]]
    assert _found(client, "100%") == _found(client, "formula_x") == [SENT[3]["text"]]  # % and _ as themselves
    assert _found(client, "0% p") == [SENT[3]["text"]] and _found(client, "formulaAx") == []
    assert _found(client, "no such film") == []
    assert client.get("/feedback", params={"q": ""}, headers=ALICE).status_code == 422


def test_the_listing_says_what_the_service_answers_each_text_today(client):
    page = client.get("/feedback", params={"answers": "true"}, headers=ALICE).json()["corrections"]
    for correction in page:
        asked = client.post("/classify?llm=false", json={"description": correction["text"]}).json()
        assert correction["answer"] == asked["genres"]
    assert all(c["answer"] is None for c in client.get("/feedback", headers=ALICE).json()["corrections"])
    too_many = client.get("/feedback", params={"answers": "true", "limit": 65}, headers=ALICE)
    assert too_many.status_code == 422 and "limited to 64" in too_many.json()["error"]


def test_in_a_classify_flood_the_editors_still_get_the_pending_list_without_the_answers_and_a_note_why(
        client, monkeypatch):
    from service.api.errors import Overloaded

    async def no_slot(work, *args):  # every CPU slot taken by /classify, its queue full
        raise Overloaded

    monkeypatch.setattr(client.app.state.admission, "run", no_slot)
    listed = client.get("/feedback", params={"answers": "true"}, headers=ALICE)
    assert listed.status_code == 200
    page = listed.json()
    assert len(page["corrections"]) == len(SENT) and all(c["answer"] is None for c in page["corrections"])
    assert "left out while the service is at capacity" in page["note"]
    monkeypatch.undo()
    assert client.get("/feedback", params={"answers": "true"}, headers=ALICE).json()["note"] is None
