"""Corrections in PostgreSQL: the same store in both rooms, writers that take turns so no reader skips a change, a
database down at start or later and back, and replicas on separate index folders that agree through one database
(real processes, a real server the suite starts itself)."""
import contextlib
import signal
import threading
from collections import Counter

import httpx
import psycopg
import pytest

from service.corpus import Corpus, Film
from service.corrections import CorrectionStore, Draft, IdempotencyKey, Limits, OverBound, store_path
from service.corrections import store as store_module
from service.corrections.fold import fold
from service.films import film_key
from service.genres import DEFAULT

from .conftest import copy_index, make_client, tmdb_rows, write_generic_csv
from .processes import eventually, free_port, serve, stop, wait_ready

STORY = ("A retired lighthouse keeper teaches a flock of orphaned geese to fly south by leading them in his "
         "homemade glider. Along the coast he meets a travelling circus whose acrobats help him finish the journey.")
CHINESE = "一个年轻的巫师踏上冒险之旅，去击败黑暗魔王。🧙"
EDITORS = "alice:s3cret-alice,bob:s3cret-bob"
ALICE = {"X-API-Key": "s3cret-alice"}
BOB = {"X-API-Key": "s3cret-bob"}
CORRECTED = ["Western", "Music"]


def _served_texts(url: str) -> list[str]:
    """What a store opened now serves (closed after: an open PostgreSQL pool must not be left to the collector)."""
    with contextlib.closing(CorrectionStore(url)) as store:
        return [c.text for c in store.served()]


def test_one_store_means_the_same_in_both_rooms(store_location):
    store = CorrectionStore(store_location)
    first = store.write(Draft(CHINESE, CHINESE, ("Fantasy",), None, None, "alice"),
                        key=IdempotencyKey.of("editor:alice", "k-1", {"text": CHINESE}))
    again = store.write(Draft(CHINESE, CHINESE, ("Fantasy",), None, None, "alice"),
                        key=IdempotencyKey.of("editor:alice", "k-1", {"text": CHINESE}))
    assert (again.replayed, again.correction.id) == (True, first.correction.id)
    page = store.write(Draft(STORY, STORY, ("Western",), None, None, "page", review=True, client="c1"))
    assert page.correction.status == "pending" and store.queue.clients(10) == [("c1", 1, page.correction.created_at)]
    with pytest.raises(OverBound):  # one film served beside the index already: no room for a second
        store.approve(page.correction.id, "bob", Limits(max_films=1))
    approved = store.approve(page.correction.id, "bob", Limits(max_films=2)).correction
    assert approved.status == "served" and approved.served_change == 3
    newer = store.add(STORY, STORY, ["Music"], None, None, "alice")  # the same film, served after
    assert store.superseded(store.served()) == {page.correction.id}
    store.revoke(newer.id, "bob")
    assert [c.id for c in store.served()] == [first.correction.id, page.correction.id]
    assert store.changes_since(3).revoked == {newer.id} and store.version() == 5
    assert store.get(first.correction.id).text == CHINESE  # every script survives the round trip
    amelie = store.add("Amélie", "A shy waitress in Montmartre.", ["Comedy"], "Amélie", 2001, "alice")
    assert [c.id for c in store.page(0, 10, query="AMÉLIE")[0]] == [amelie.id]  # letters in any case
    assert [c.id for c in store.page(0, 10, query="巫师")[0]] == [first.correction.id]
    assert store.page(0, 10, query="100%")[1] == 0  # % is a character, not a wildcard
    with contextlib.closing(CorrectionStore(store_location)) as again:
        assert store.pseudonym("address:203.0.113.9") == again.pseudonym("address:203.0.113.9")
    store.close()


def _insert_then_wait(arrived: threading.Event, go: threading.Event):
    """store._insert for the thread named 'slow': it inserts, says so, and waits (still in its transaction)."""
    real = store_module._insert

    def insert(db, draft, created):
        inserted = real(db, draft, created)
        if threading.current_thread().name == "slow":
            arrived.set()
            go.wait(60)
        return inserted

    return insert


def test_two_writers_racing_take_turns_so_no_reader_skips_a_change(postgres, monkeypatch):
    """A sequence is not commit order: were a writer free to number change 2 and commit it while change 1 is still
    being written, a reader would read 'through 2' and never see 1. The write lock makes the second writer wait."""
    url = postgres.new_database()
    slow_store, quick_store, reader = CorrectionStore(url), CorrectionStore(url), CorrectionStore(url)
    reader.version()  # the schema made before the race
    arrived, go = threading.Event(), threading.Event()
    monkeypatch.setattr(store_module, "_insert", _insert_then_wait(arrived, go))
    slow = threading.Thread(target=slow_store.add, args=(STORY, STORY, ["Drama"], None, None, "alice"), name="slow")
    quick = threading.Thread(target=quick_store.add, args=(CHINESE, CHINESE, ["Fantasy"], None, None, "bob"))
    slow.start()
    assert arrived.wait(60)  # change 1 numbered, not committed
    quick.start()
    with psycopg.connect(url, autocommit=True) as watcher:
        eventually(lambda: not quick.is_alive() or watcher.execute(  # done, or waiting its turn
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone()[0] == 1)
    seen = reader.changes_since(0)
    go.set()
    for thread in (slow, quick):
        thread.join(60)
    later = reader.changes_since(seen.version)
    assert {c.text for c in seen.served + later.served} == {STORY, CHINESE}  # nothing skipped
    assert [c.text for c in later.served] == [STORY, CHINESE]  # numbered in the order they were committed
    for store in (slow_store, quick_store, reader):
        store.close()


def test_a_database_down_at_start_or_later_leaves_the_service_answering_and_it_serves_again_by_itself(
        own_index_dir, outage_cluster):
    client = make_client(own_index_dir, feedback_token=EDITORS, multilingual_model="",
                         corrections_url=outage_cluster.url(), corrections_poll=0.05)
    corrections = client.app.state.runtime.classifier.corrections
    answer = client.post("/classify", json={"description": STORY})
    assert answer.status_code == 200 and any("answered without corrections" in n for n in answer.json()["notes"])
    refused = client.post("/feedback", headers=ALICE, json={"text": STORY, "genres": CORRECTED})
    assert refused.status_code == 503 and refused.headers["Retry-After"] and "nothing was stored" in refused.text
    assert client.get("/readyz").json()["degraded"] == ["corrections_store"]
    assert client.get("/health").json()["feedback"]["available"] is False

    outage_cluster.start()  # the database comes up: no restart of the service
    eventually(lambda: corrections.problem is None)
    stored = eventually(lambda: (r := client.post("/feedback", headers=ALICE, json={
        "text": STORY, "genres": CORRECTED})).status_code == 201 and r)
    assert client.post("/classify", json={"description": STORY}).json()["genres"] == CORRECTED

    outage_cluster.stop("immediate")  # and goes down again
    eventually(lambda: corrections.problem is not None)
    answer = client.post("/classify", json={"description": STORY}).json()
    assert answer["genres"] == CORRECTED  # the corrections read before are still served
    assert any("answered with the corrections read before" in n for n in answer["notes"])
    refused = client.delete(f"/feedback/{stored.json()['id']}", headers=BOB)
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    outage_cluster.start()
    eventually(lambda: corrections.problem is None)
    assert client.delete(f"/feedback/{stored.json()['id']}", headers=BOB).json()["status"] == "revoked"
    assert client.post("/classify", json={"description": STORY}).json()["genres"] != CORRECTED


@pytest.fixture
def two_replicas(small_index_dir, tmp_path, postgres):
    """Two service processes, each with its own copy of the index (no shared disk), and one PostgreSQL."""
    url = postgres.new_database()
    folders = [copy_index(small_index_dir, tmp_path / name) for name in ("one", "two")]
    ports = [free_port(), free_port()]
    servers = [serve(folder, port, MOVIEGENRE_FEEDBACK_TOKEN=EDITORS, MOVIEGENRE_CORRECTIONS_URL=url,
                     MOVIEGENRE_CORRECTIONS_POLL="0.2", MOVIEGENRE_MULTILINGUAL_MODEL="")
               for folder, port in zip(folders, ports)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for server, address in zip(servers, urls):
            wait_ready(server, address)
        yield url, urls, servers, folders
    finally:
        stop(*servers)


def _genres(service: str, text: str) -> list[str]:
    return httpx.post(f"{service}/classify", json={"description": text}).json()["genres"]


def test_replicas_without_a_shared_disk_agree_on_every_correction(two_replicas):
    url, (one, two), _, _ = two_replicas
    stored = httpx.post(f"{one}/feedback", headers=ALICE, json={"text": CHINESE, "genres": ["Western"]})
    assert stored.status_code == 201
    eventually(lambda: _genres(two, CHINESE) == ["Western"])  # within the poll
    revoked = httpx.delete(f"{two}/feedback/{stored.json()['id']}", headers=BOB)
    assert revoked.json()["status"] == "revoked"
    eventually(lambda: _genres(one, CHINESE) != ["Western"])  # gone from both
    assert _genres(two, CHINESE) != ["Western"]

    body, key = {"text": STORY, "genres": CORRECTED}, {"Idempotency-Key": "one-key-two-replicas"}
    first = httpx.post(f"{one}/feedback", headers=ALICE | key, json=body)
    retried = httpx.post(f"{two}/feedback", headers=ALICE | key, json=body)
    assert (first.status_code, retried.status_code) == (201, 201)
    assert retried.headers["Idempotent-Replayed"] == "true" and retried.json()["id"] == first.json()["id"]
    assert _genres(two, STORY) == CORRECTED
    assert _served_texts(url) == [STORY]  # stored once


def test_a_replica_killed_in_the_middle_of_a_write_loses_nothing_and_stores_nothing_twice(two_replicas):
    url, (one, two), servers, _ = two_replicas
    kept = httpx.post(f"{one}/feedback", headers=ALICE, json={"text": CHINESE, "genres": ["Western"]})
    assert kept.status_code == 201
    body, key = {"text": STORY, "genres": CORRECTED}, {"Idempotency-Key": "killed-mid-write"}
    with psycopg.connect(url, autocommit=True) as blocker, psycopg.connect(url, autocommit=True) as watcher:
        # the write's last row, taken first by another transaction: the replica's write waits in the middle
        blocker.execute("BEGIN")
        blocker.execute("INSERT INTO moviegenre.idempotency_keys (principal, key, fingerprint, correction_id, "
                        "created_at) VALUES ('editor:alice', 'killed-mid-write', 'x', %s, '2000-01-01T00:00:00')",
                        (kept.json()["id"],))
        sending = threading.Thread(target=_send_unanswered, args=(f"{one}/feedback", ALICE | key, body), daemon=True)
        sending.start()
        eventually(lambda: watcher.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = "
                                           "'moviegenre' AND wait_event_type = 'Lock'").fetchone()[0] == 1)
        servers[0].send_signal(signal.SIGKILL)  # its correction and its change written, not committed
        servers[0].wait(30)
        blocker.execute("ROLLBACK")
    retried = httpx.post(f"{two}/feedback", headers=ALICE | key, json=body)
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers  # the first stored nothing
    assert httpx.post(f"{two}/feedback", headers=ALICE | key, json=body).headers["Idempotent-Replayed"] == "true"
    assert sorted(_served_texts(url)) == sorted([CHINESE, STORY])  # once each
    assert _genres(two, CHINESE) == ["Western"] and _genres(two, STORY) == CORRECTED


def _send_unanswered(url: str, headers: dict, body: dict) -> None:
    """A request whose server is killed before it answers."""
    with contextlib.suppress(httpx.HTTPError):
        httpx.post(url, headers=headers, json=body, timeout=60)


def test_a_build_on_either_replica_folds_the_same_corrections(tmp_path, postgres, embedder):
    from service.build import build_index
    from service.settings import Settings

    url = postgres.new_database()
    rows = tmdb_rows(0, 60)
    corpus = write_generic_csv(tmp_path / "films.csv", rows)
    with contextlib.closing(CorrectionStore(url)) as store:
        store.add(rows[3]["title"], rows[3]["plot"], ["Western"], rows[3]["title"], int(rows[3]["year"]), "alice")
        store.add(STORY, STORY, CORRECTED, None, None, "alice")
    summaries = []
    for name in ("one", "two"):
        folder = tmp_path / name
        settings = Settings(index_dir=folder, llm_backend="none", multilingual_model="", corrections_url=url)
        summaries.append(build_index(corpus, folder, settings, progress=False).manifest["summary"]["corrections"])
        assert not store_path(folder).exists()  # nothing of the corrections on either machine's disk
    assert summaries[0] == summaries[1] == {"store": store.store_id, "through_change": 2, "read": 2,
                                            "superseded": 0, "added": 1, "replaced": 1}


def test_an_upgrade_rekeys_corrections_so_they_keep_changing_their_film(store_location):
    """A store keyed by the normalisation before this one (which read 'Война' as 'воина'): the upgrade makes every
    key again, so the correction still names the reference film, a newer one still supersedes it, and a build
    replaces the film's labels instead of adding a second 'Война и мир'."""
    store = CorrectionStore(store_location)
    war = store.add("Война и мир", "Эпопея о войне 1812 года.", ["War"], "Война и мир", 1966, "alice")
    _as_the_version_before(store, war.id, "воина и мир|1966")
    store.close()
    upgraded = CorrectionStore(store_location)
    assert upgraded.get(war.id).film == film_key("Война и мир", 1966) != "воина и мир|1966"
    newer = upgraded.add("Война и мир", "Эпопея о войне 1812 года.", ["History"], "Война и мир", 1966, "bob")
    assert upgraded.superseded(upgraded.served()) == {war.id}
    corpus = Corpus([Film("Война и мир", 1966, "Эпопея.", ("Drama",), "tmdb")], {}, Counter(), DEFAULT)
    fold(corpus, upgraded.served(), upgraded.version(), upgraded.store_id)
    assert [(f.title, f.genres) for f in corpus.films] == [("Война и мир", ("History",))]
    assert newer.film == upgraded.get(war.id).film
    upgraded.close()


def _as_the_version_before(store: CorrectionStore, correction_id: int, old_key: str) -> None:
    """The store as schema 2 left it: no record of its keys' normalisation, and this correction keyed the old way."""
    with store._db.writing() as db:
        db.execute("UPDATE sent_corrections SET film = ? WHERE id = ?", (old_key, correction_id))
        db.execute("DELETE FROM meta WHERE name = 'film_keys'")
        store._db.set_schema_version(db, 2)


def test_every_editors_route_answers_the_same_on_postgresql(own_index_dir, postgres):
    """The API over the PostgreSQL room: sending, listing (by status, client and search, with today's answers),
    the queue and its shares, approving, rejecting by client and by age, revoking."""
    client = make_client(own_index_dir, feedback_token=EDITORS, feedback_page=True, multilingual_model="",
                         corrections_url=postgres.new_database(), corrections_poll=0)
    assert client.post("/feedback", headers=ALICE, json={"text": CHINESE, "genres": ["Western"]}).status_code == 201
    waiting = [client.post("/feedback", json={"text": f"{STORY} Part {i}.", "genres": CORRECTED}).json()
               for i in range(3)]
    assert {w["status"] for w in waiting} == {"pending"}
    assert client.get("/feedback", headers=ALICE, params={"status": "pending"}).json()["total"] == 3
    found = client.get("/feedback", headers=ALICE, params={"q": "巫师", "answers": "true"}).json()
    assert found["total"] == 1 and found["corrections"][0]["text"] == CHINESE
    sender = waiting[0]["client"]
    assert client.get("/feedback", headers=ALICE, params={"client": sender}).json()["total"] == 3
    queue = client.get("/feedback/queue", headers=ALICE).json()
    assert queue["waiting"] == 3 and queue["clients"][0] == {"client": sender, "waiting": 3,
                                                              "oldest": waiting[0]["created_at"]}
    approved = client.post(f"/feedback/{waiting[0]['id']}/approve", headers=BOB).json()
    assert approved["status"] == "served" and approved["approved_by"] == "bob"
    assert _genres_of(client, waiting[0]["text"]) == CORRECTED
    rejected = client.post("/feedback/reject", headers=BOB, json={"client": sender}).json()
    assert rejected == {"rejected": 2, "ids": [waiting[1]["id"], waiting[2]["id"]]}
    again = client.post("/feedback", json={"text": STORY, "genres": ["Drama"]}).json()
    assert client.post("/feedback/reject", headers=BOB, json={"older_than_hours": 0}).json()["ids"] == [again["id"]]
    assert client.delete(f"/feedback/{waiting[0]['id']}", headers=BOB).json()["status"] == "revoked"
    assert _genres_of(client, waiting[0]["text"]) != CORRECTED
    statuses = [c["status"] for c in client.get("/feedback", headers=ALICE).json()["corrections"]]
    assert statuses == ["revoked", "revoked", "revoked", "revoked", "served"]


def _genres_of(client, text: str) -> list[str]:
    return client.post("/classify", json={"description": text}).json()["genres"]


def test_a_pool_whose_connections_are_all_taken_is_busy_not_down(postgres, monkeypatch):
    """Every connection held (writers waiting on the lock, say): a caller is told the store is busy, and the next
    one is not turned away as if the server were out of reach."""
    from service.corrections import StoreUnavailable
    from service.corrections import postgres as room

    monkeypatch.setattr(room, "MAX_CONNECTIONS", 1)
    monkeypatch.setattr(room, "BUSY_TIMEOUT_S", 0.2)
    store = CorrectionStore(postgres.new_database())
    store.version()
    taken, release = threading.Event(), threading.Event()

    def hold():
        with store._db.connected():
            taken.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(30)
    with pytest.raises(StoreUnavailable, match="busy"):
        store.version()
    release.set()
    holder.join(30)
    assert store.version() == 0  # at once: the server was never taken for down
    store.close()


def test_a_commit_whose_answer_was_lost_tells_the_client_to_retry_with_its_key(own_index_dir, monkeypatch):
    from service.corrections import CommitUnknown

    client = make_client(own_index_dir, feedback_token=EDITORS, multilingual_model="")
    store = client.app.state.runtime.classifier.corrections.store

    def lost(*args, **kwargs):
        raise CommitUnknown("the corrections store did not confirm the change (connection lost): it may be stored")

    monkeypatch.setattr(store, "write", lost)
    answer = client.post("/feedback", headers=ALICE, json={"text": STORY, "genres": CORRECTED})
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert "same Idempotency-Key" in answer.json()["error"] and "nothing was stored" not in answer.json()["error"]
