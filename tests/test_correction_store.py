"""The corrections store across versions and processes: a schema version a reader checks (a newer store is refused,
and the previous version's reader fails loudly on this one rather than misread it), an upgrade that replicas
started together run once, and one rule for what is served, however the store was written."""
import multiprocessing
import sqlite3
import time

import pytest

from service.corpus import plot_key
from service.films import film_key
from service.corrections import CorrectionStore, Corrections, StoreUnavailable, store_path
from service.corrections.fold import folded_through

from .conftest import make_client

STORY = "A retired lighthouse keeper teaches a flock of orphaned geese to fly south in his homemade glider."
CHINESE = "一个年轻的巫师踏上冒险之旅，去击败黑暗魔王。"

# The store as the version before this one wrote it (schema 1, PRAGMA user_version 0), and as the version before
# that did (no `film`, no `review`, no approvals).
VERSION_1 = """
CREATE TABLE corrections (id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT NOT NULL, plot TEXT NOT NULL,
    genres TEXT NOT NULL, title TEXT, year INTEGER, author TEXT NOT NULL, created_at TEXT NOT NULL, film TEXT,
    review INTEGER NOT NULL DEFAULT 0);
CREATE TABLE revocations (id INTEGER PRIMARY KEY AUTOINCREMENT, correction_id INTEGER NOT NULL UNIQUE
    REFERENCES corrections(id), author TEXT NOT NULL, revoked_at TEXT NOT NULL);
CREATE TABLE approvals (id INTEGER PRIMARY KEY AUTOINCREMENT, correction_id INTEGER NOT NULL UNIQUE
    REFERENCES corrections(id), author TEXT NOT NULL, approved_at TEXT NOT NULL);
"""
VERSION_0 = """
CREATE TABLE corrections (id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT NOT NULL, plot TEXT NOT NULL,
    genres TEXT NOT NULL, title TEXT, year INTEGER, author TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE revocations (id INTEGER PRIMARY KEY AUTOINCREMENT, correction_id INTEGER NOT NULL UNIQUE
    REFERENCES corrections(id), author TEXT NOT NULL, revoked_at TEXT NOT NULL);
"""


def _old_store(path, schema, rows, approvals=(), revocations=()):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(schema)
    columns = "text, plot, genres, title, year, author, created_at" + (", film, review" if "review" in schema else "")
    db.execute("BEGIN")
    for row in rows:
        db.execute(f"INSERT INTO corrections ({columns}) VALUES ({','.join('?' * len(row))})", row)
    if approvals:
        db.executemany("INSERT INTO approvals (correction_id, author, approved_at) VALUES (?, ?, ?)", approvals)
    if revocations:
        db.executemany("INSERT INTO revocations (correction_id, author, revoked_at) VALUES (?, ?, ?)", revocations)
    db.execute("COMMIT")
    db.close()
    return path


def _version_1_store(path):
    """1 and 2 by an editor, 3 and 4 from the page; 4 approved after 5 was sent (by an editor), and 2 revoked."""
    at = "2025-03-01T10:00:0{}+00:00".format
    rows = [(STORY, STORY, '["Western"]', None, None, "alice", at(1), None, 0),
            (CHINESE, CHINESE, '["Fantasy"]', None, None, "alice", at(2), None, 0),
            ("A page's correction never approved.", "A page's correction never approved.", '["Horror"]', None, None,
             "page", at(3), None, 1),
            ("A page's correction approved later.", "A page's correction approved later.", '["Music"]', None, None,
             "page", at(4), None, 1),
            ("Heat", "A plot of Heat.", '["Crime"]', "Heat", 1995, "bob", at(5), film_key("Heat", 1995), 0)]
    return _old_store(path, VERSION_1, rows, approvals=[(4, "bob", at(6))], revocations=[(2, "bob", at(7))])


def test_a_store_of_a_newer_version_is_refused_saying_which_and_the_service_serves_without_corrections(
        own_index_dir):
    path = store_path(own_index_dir)
    CorrectionStore(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 1000")  # a version far ahead
    db.close()
    with pytest.raises(StoreUnavailable) as refused:
        CorrectionStore(path).version()
    assert "written by a newer version" in str(refused.value) and "(schema 1000)" in str(refused.value)
    assert "this version reads schema 3 and earlier" in str(refused.value)
    client = make_client(own_index_dir, feedback_token="alice:t0ken", multilingual_model="")
    answer = client.post("/classify", json={"description": STORY})
    assert answer.status_code == 200 and any("newer version" in note and "without corrections" in note
                                             for note in answer.json()["notes"])
    stored = client.post("/feedback", headers={"X-API-Key": "t0ken"}, json={"text": STORY, "genres": ["Drama"]})
    assert stored.status_code == 503 and "newer version" in stored.json()["error"]
    assert "Retry-After" in stored.headers
    feedback = client.get("/health").json()["feedback"]
    assert feedback["corrections"] == 0 and not feedback["available"] and "newer version" in feedback["problem"]


def test_the_previous_versions_reader_fails_loudly_on_this_store_instead_of_misreading_it(tmp_path):
    """What the version before ran when it opened its store (its store.py), on a store this version wrote: its
    first read fails with an error that names the reason, which it reports as 'corrections are off'."""
    from service.corrections.legacy import NEWER

    path = store_path(tmp_path)
    store = CorrectionStore(path)
    store.add("A page's correction.", "A page's correction.", ["Horror"], None, None, "page", review=True)
    store.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(VERSION_1.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))  # its _SCHEMA: no-ops here
    with pytest.raises(sqlite3.OperationalError, match=NEWER):
        db.execute("PRAGMA table_info(corrections)").fetchall()  # its upgrade's first step
    with pytest.raises(sqlite3.OperationalError, match=NEWER):
        db.execute("SELECT c.id, c.review, a.approved_at, r.revoked_at FROM corrections c "
                   "LEFT JOIN approvals a ON a.correction_id = c.id "
                   "LEFT JOIN revocations r ON r.correction_id = c.id").fetchall()
    db.close()
    assert [c.status for c in CorrectionStore(path).page(0, 10)[0]] == ["pending"]  # this version reads it


def test_a_version_1_store_is_upgraded_in_place_serving_what_it_served(tmp_path, embedder):
    path = _version_1_store(store_path(tmp_path))
    store = CorrectionStore(path)
    listed = {c.id: c for c in store.page(0, 10)[0]}
    assert {i: c.status for i, c in listed.items()} == {1: "served", 2: "revoked", 3: "pending", 4: "served",
                                                        5: "served"}
    assert listed[2].text == CHINESE and listed[1].film.startswith("plot:") and listed[5].film == film_key("Heat", 1995)
    served = store.served()
    # each correction's sending took its id; the approval and the revocation follow, in the order they were made
    assert [(c.id, c.served_change) for c in served] == [(1, 1), (5, 5), (4, 6)]
    assert store.count("pending") == 1 and store.version() == 7
    # a build of that version recorded "through correction 3": the approval of 4 (a change after) is served
    assert folded_through({"summary": {"corrections": {"through": 3}}}, store.store_id) == 3
    side = Corrections(store, {"english": embedder}, through=3, poll_s=0)
    assert sorted(_counting(side).values()) == [4, 5]
    side.close()


def test_a_store_without_film_or_review_columns_is_upgraded_keying_each_correction_as_its_version_did(tmp_path):
    rows = [("Heat", "A plot of Heat.", '["Crime"]', "Heat", 1995, "bob", "2024-01-01T00:00:00+00:00"),
            (STORY, STORY, '["Western"]', None, None, "alice", "2024-01-01T00:00:01+00:00")]
    path = _old_store(store_path(tmp_path), VERSION_0, rows, revocations=[(1, "bob", "2024-01-02T00:00:00+00:00")])
    store = CorrectionStore(path)
    heat, story = store.get(1), store.get(2)
    assert heat.film == film_key("Heat", 1995) and story.film == plot_key(STORY)
    assert (heat.status, story.status, story.review) == ("revoked", "served", False)


class _SlowToAct(sqlite3.Connection):
    """A connection whose process is paused right after each look at the store's schema, as a busy machine may
    pause any process between a check and the change it decides on."""

    def execute(self, sql, *args):
        cursor = super().execute(sql, *args)
        if sql.startswith("PRAGMA table_info") or sql == "PRAGMA user_version":
            time.sleep(0.3)
        return cursor


def _open_at_once(path, barrier, results):
    connect = sqlite3.connect
    sqlite3.connect = lambda *args, **kwargs: connect(*args, **kwargs, factory=_SlowToAct)
    barrier.wait()
    try:
        store = CorrectionStore(path)
        results.put(("ok", len(store.served())))
        store.close()
    except Exception as exc:  # noqa: BLE001 - the test reports what failed
        results.put(("failed", f"{type(exc).__name__}: {exc}"))


@pytest.mark.parametrize("schema", ["version 0", "none yet"])
def test_processes_opening_one_store_at_once_upgrade_it_once_and_all_serve_it(tmp_path, schema):
    """Replicas started together on a store of an earlier version (or on a new file), each paused between
    looking at the schema and changing it: each opens the store, none turns corrections off, and the store is
    upgraded once."""
    path = store_path(tmp_path)
    expected = 200 if schema == "version 0" else 0
    rows = [(f"{STORY} {i}", f"{STORY} {i}", '["Drama"]', None, None, "alice", "2024-01-01T00:00:00+00:00")
            for i in range(expected)]
    _old_store(path, VERSION_0 if rows else "", rows)
    context = multiprocessing.get_context("spawn")
    processes = 3
    barrier, results = context.Barrier(processes), context.Queue()
    started = [context.Process(target=_open_at_once, args=(path, barrier, results)) for _ in range(processes)]
    for process in started:
        process.start()
    outcomes = [results.get(timeout=120) for _ in started]
    for process in started:
        process.join(timeout=60)
    assert outcomes == [("ok", expected)] * processes
    from service.corrections.schema import SCHEMA_VERSION

    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT COUNT(*), COUNT(DISTINCT correction_id) FROM changes").fetchone() == (expected,
                                                                                                   expected)
    assert db.execute("SELECT name FROM meta ORDER BY name").fetchall() == [("client_secret",), ("film_keys",),
                                                                          ("store_id",)]
    db.close()


def test_what_is_served_is_one_rule_for_every_reader_whatever_the_order_of_changes(tmp_path, embedder):
    """Served through change N means the same to a process that saw every change, one that polled them, one
    started afresh, and a build: the approval of an older correction counts over a newer one it follows."""
    store = CorrectionStore(store_path(tmp_path))
    watching = Corrections(CorrectionStore(store_path(tmp_path)), {"english": embedder}, poll_s=1e-9)
    page = store.add(STORY, STORY, ["Western"], None, None, "page", review=True)
    editor = store.add(STORY, STORY, ["Music"], None, None, "alice")  # the same film, sent after
    assert store.approve(page.id, "bob").correction.served_change == 3
    watching.refresh()
    afresh = Corrections(store, {"english": embedder}, poll_s=0)
    for corrections in (watching, afresh):
        assert _counting(corrections) == {page.film: page.id}
    assert store.superseded(store.served()) == {editor.id}
    store.revoke(page.id, "bob")
    watching.refresh()
    assert _counting(watching) == {page.film: editor.id}
    watching.close()


def _counting(corrections: Corrections) -> dict[str, int]:
    """Film → the correction the side index serves for it."""
    snapshot = corrections._snapshot
    return {film: snapshot.corrections[row].id for film, row in snapshot.by_film.items()}


def test_a_build_beside_another_store_holds_none_of_this_ones_changes(tmp_path):
    store = CorrectionStore(store_path(tmp_path))
    built_here = {"summary": {"corrections": {"store": store.store_id, "through_change": 9}}}
    built_elsewhere = {"summary": {"corrections": {"store": "a store since replaced", "through_change": 9}}}
    assert folded_through(built_here, store.store_id) == 9
    assert folded_through(built_elsewhere, store.store_id) == 0  # a file replaced: its corrections are all new
    assert folded_through(None, store.store_id) == 0
