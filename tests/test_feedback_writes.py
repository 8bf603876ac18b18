"""POST /feedback and the editors' writes: a retry with the same Idempotency-Key stores once, an answer is built
from what was written, an approval keeps the bound on what is served, and one client cannot fill the review
queue, which editors empty by client or by age."""
import json
import sqlite3

import pytest
from fastapi.testclient import TestClient

from .conftest import make_client

EDITORS = "alice:s3cret-alice"
ALICE = {"X-API-Key": "s3cret-alice"}
STORY = ("A retired lighthouse keeper teaches a flock of orphaned geese to fly south by leading them in his "
         "homemade glider.")
CHINESE = "一个年轻的巫师踏上冒险之旅，去击败黑暗魔王。🧙"


@pytest.fixture
def editors_client(own_index_dir):
    return make_client(own_index_dir, feedback_token=EDITORS, feedback_page=True, multilingual_model="")


def _from(client, address: str) -> TestClient:
    """The same service, asked from another address."""
    return TestClient(client.app, client=(address, 50000))


def _stored(client) -> list[dict]:
    return client.get("/feedback", params={"limit": 500}, headers=ALICE).json()["corrections"]


def test_a_retry_with_the_same_idempotency_key_stores_once_and_answers_the_first_result(editors_client):
    body = {"text": CHINESE, "genres": ["Fantasy", "Adventure"]}
    key = {"Idempotency-Key": "6f1c0e3a-2b7d-4c59-9a8e-0d3f5b1e7c42"}
    first = editors_client.post("/feedback", headers=ALICE | key, json=body)
    retried = editors_client.post("/feedback", headers=ALICE | key, json=body)
    assert first.status_code == retried.status_code == 201, retried.text
    assert retried.json() == first.json() and retried.json()["text"] == CHINESE
    assert retried.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert [c["id"] for c in _stored(editors_client)] == [first.json()["id"]]
    reused = editors_client.post("/feedback", headers=ALICE | key, json=body | {"genres": ["Horror"]})
    assert reused.status_code == 422 and "another body" in reused.json()["error"]
    # the page's retries alike: its key is its client's
    page_key = {"Idempotency-Key": "page-retry-1"}
    sent = [editors_client.post("/feedback", headers=page_key, json={"text": STORY, "genres": ["Western"]})
            for _ in range(2)]
    assert [r.status_code for r in sent] == [202, 202] and sent[0].json() == sent[1].json()
    assert len(_stored(editors_client)) == 2


@pytest.mark.parametrize("key", ["", "x" * 201, "two words", "clé".encode()])
def test_an_idempotency_key_that_is_no_key_is_a_422_storing_nothing(editors_client, key):
    refused = editors_client.post("/feedback", headers=ALICE | {"Idempotency-Key": key},
                                  json={"text": STORY, "genres": ["Drama"]})
    assert refused.status_code == 422 and "Idempotency-Key" in refused.json()["error"]
    assert _stored(editors_client) == []


class _DiskFailingOnceWritten:
    """A connection whose disk fails right after a write is committed: what a second query would meet."""

    def __init__(self, real):
        self.real, self.failing, self.written = real, False, False

    def execute(self, sql, *args):
        if self.failing:
            raise sqlite3.OperationalError("disk I/O error")
        cursor = self.real.execute(sql, *args)
        self.written = self.written or sql.startswith("INSERT")
        if self.written and not self.real.in_transaction:  # committed
            self.failing, self.written = True, False
        return cursor

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_the_answer_is_built_from_what_was_written_not_read_again(editors_client):
    store = editors_client.app.state.runtime.classifier.corrections.store
    disk = store._db._connection = _DiskFailingOnceWritten(store._db._connection)
    stored = editors_client.post("/feedback", headers=ALICE, json={"text": CHINESE, "genres": ["Fantasy"]})
    disk.failing, store._db._connection = False, disk.real
    assert stored.status_code == 201, stored.text
    assert (stored.json()["status"], stored.json()["text"], stored.json()["author"]) == ("served", CHINESE, "alice")
    assert [c["id"] for c in _stored(editors_client)] == [stored.json()["id"]]


def test_an_approval_keeps_the_bound_on_the_films_served_beside_the_index(own_index_dir):
    client = make_client(own_index_dir, feedback_token=EDITORS, feedback_page=True, max_corrections=1,
                         multilingual_model="")
    served = client.post("/feedback", headers=ALICE, json={"text": STORY, "genres": ["Western"]}).json()
    other = client.post("/feedback", json={"text": CHINESE, "genres": ["Fantasy"]}).json()
    again = client.post("/feedback", json={"text": STORY, "genres": ["Family"]}).json()  # the served film again
    refused = client.post(f"/feedback/{other['id']}/approve", headers=ALICE)
    assert refused.status_code == 507 and "MOVIEGENRE_MAX_CORRECTIONS" in refused.json()["error"]
    statuses = {c["id"]: c["status"] for c in _stored(client)}
    assert statuses[other["id"]] == "pending"
    approved = client.post(f"/feedback/{again['id']}/approve", headers=ALICE)  # supersedes: no new film
    assert approved.status_code == 200 and approved.json()["status"] == "served"
    assert {c["id"]: c["status"] for c in _stored(client)}[served["id"]] == "superseded"
    client.delete(f"/feedback/{again['id']}", headers=ALICE)
    client.delete(f"/feedback/{served['id']}", headers=ALICE)
    assert client.post(f"/feedback/{other['id']}/approve", headers=ALICE).json()["status"] == "served"


def test_one_client_cannot_fill_the_review_queue_and_editors_reject_its_corrections_at_once(own_index_dir):
    client = make_client(own_index_dir, feedback_token=EDITORS, feedback_page=True, max_pending_feedback=10,
                         pending_share=0.2, multilingual_model="")
    # one subscriber's /48, a new /64 for every request (which the rate limit would count as new clients)
    flood = [_from(client, f"2001:db8:7:{i:x}::1").post("/feedback", json={"text": f"{STORY} {i}",
                                                                            "genres": ["Horror"]})
             for i in range(6)]
    assert [r.status_code for r in flood] == [202, 202, 429, 429, 429, 429]
    assert "share of the queue" in flood[2].json()["error"] and int(flood[2].headers["retry-after"]) > 0
    other = _from(client, "198.51.100.7").post("/feedback", json={"text": CHINESE, "genres": ["Fantasy"]})
    assert other.status_code == 202
    queue = client.get("/feedback/queue", headers=ALICE).json()
    assert (queue["waiting"], queue["max_waiting"], queue["client_share"]) == (3, 10, 2)
    flooder = flood[0].json()["client"]
    assert queue["clients"][0] == {"client": flooder, "waiting": 2, "oldest": flood[0].json()["created_at"]}
    assert "2001:db8" not in json.dumps(queue) + json.dumps(_stored(client))  # a pseudonym, not the address
    listed = client.get("/feedback", params={"client": flooder}, headers=ALICE).json()
    assert [c["id"] for c in listed["corrections"]] == [flood[1].json()["id"], flood[0].json()["id"]]

    rejected = client.post("/feedback/reject", headers=ALICE, json={"client": flooder})
    assert rejected.status_code == 200 and rejected.json() == {"rejected": 2, "ids": [flood[0].json()["id"],
                                                                                     flood[1].json()["id"]]}
    assert {c["id"]: c["status"] for c in _stored(client)}[flood[0].json()["id"]] == "revoked"
    assert _from(client, "2001:db8:7:99::1").post("/feedback", json={"text": STORY, "genres": ["Horror"]}
                                                  ).status_code == 202  # its share is free again
    everything = client.post("/feedback/reject", headers=ALICE, json={"older_than_hours": 0})
    assert everything.json()["rejected"] == 2 and client.get("/feedback/queue", headers=ALICE).json()["waiting"] == 0


@pytest.mark.parametrize("body, says", [({}, "say which"), ({"client": "203.0.113.9"}, "client"),
                                        ({"older_than_hours": -1}, "older_than_hours"),
                                        ({"client": "c0123456789abcdef", "all": True}, "all")])
def test_a_bulk_reject_that_names_no_corrections_is_a_422(editors_client, body, says):
    refused = editors_client.post("/feedback/reject", headers=ALICE, json=body)
    assert refused.status_code == 422 and says in refused.json()["error"]


def test_the_review_routes_are_for_editors_only(editors_client):
    assert editors_client.post("/feedback/reject", json={"older_than_hours": 0}).status_code == 401
    assert editors_client.get("/feedback/queue").status_code == 401
