"""/jobs: a catalogue file classified as a job of the service — classify-file's reader, rules and output, under the
service's CPU slots, limited, kept, removed, and resumed after a restart."""
from __future__ import annotations

import csv
import io
import json
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.batch.chunks import sidecar_path
from service.batch.run import Job, classify_file
from service.jobs.records import JobRecord, progress_of
from service.jobs.store import JobStore

from .conftest import HeldDrafts, make_classifier, tmdb_rows
from .processes import free_port, serve

UNICODE = ["一个少年巫师在魔法学校学习，与黑暗魔王作战。", "محقق يطارد قاتلا متسلسلا في مدينة مظلمة 🕵️"]


class Watched:
    """A job store whose every saved status wakes the test: it waits on what the jobs do, never on a clock."""

    def __init__(self, app):
        self.store = store = app.state.jobs.store
        self.changed = threading.Condition()
        save, remove = store.save, store.remove

        def saved(record):
            save(record)
            with self.changed:
                self.changed.notify_all()

        def removed(job_id):
            remove(job_id)
            with self.changed:
                self.changed.notify_all()

        store.save, store.remove = saved, removed

    def wait(self, job_id: str, *states: str) -> JobRecord | None:
        """The job once it is in one of `states` (None once it is gone, for no state)."""
        if not states:
            return self.until(job_id, lambda record: record is None, "removal")
        return self.until(job_id, lambda record: record is not None and record.state in states, str(states))

    def until(self, job_id: str, reached, what: str) -> JobRecord | None:
        """The job's status once `reached(status)` is true of it."""
        with self.changed:
            assert self.changed.wait_for(lambda: reached(self.store.get(job_id)), 120), f"job {job_id} never: {what}"
        return self.store.get(job_id)


@pytest.fixture(scope="module")
def shared_classifier(small_index_dir):
    classifier = make_classifier(small_index_dir, multilingual_model="")
    yield classifier
    classifier.close()


@pytest.fixture
def classifier(shared_classifier):
    """The module's classifier; what a test puts in place of its `draft` is taken away after it."""
    yield shared_classifier
    vars(shared_classifier).pop("draft", None)


def films(count: int = 30, start: int = 600) -> list[dict]:
    return [{"id": str(i), "title": r["title"], "year": r["year"], "plot": r["plot"]}
            for i, r in enumerate(tmdb_rows(start, count))]


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def catalogue(tmp_path: Path, count: int = 30) -> Path:
    """Real plots, two in other scripts, and a row that cannot be classified (a blank plot)."""
    rows = films(count)
    rows[3]["plot"], rows[5]["plot"], rows[7]["plot"] = UNICODE[0], UNICODE[1], "   "
    return write_csv(tmp_path / "片单 catalogue.csv", rows)


@pytest.fixture
def app(classifier, tmp_path):
    made = []

    def make(**settings):
        jobs = {"jobs_dir": tmp_path / "jobs", "jobs_chunk_rows": 8} | settings
        app = create_app(classifier.settings.replace(**jobs), classifier)
        made.append(app)
        return app

    return make


def upload(client, path: Path, headers=None, **params) -> httpx.Response:
    return client.post("/jobs", params={"name": path.name} | params, content=path.read_bytes(), headers=headers or {})


def classify_file_output(classifier, source: Path, output: Path, chunk_rows: int = 8) -> Path:
    """What `moviegenre classify-file` writes of the same file, in chunks of the jobs' size."""
    return classify_file(Job.of(source, output, classifier.settings, chunk_rows=chunk_rows), classifier).output


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_an_uploaded_file_is_classified_as_classify_file_would_with_every_column_and_the_rejected_rows(
        app, classifier, tmp_path, fmt):
    source = catalogue(tmp_path)
    service = app()
    with TestClient(service) as client:
        answer = upload(client, source, output=fmt)
        assert answer.status_code == 202, answer.text
        job = answer.json()
        assert job["state"] == "queued" and job["text_column"] == "plot" and job["rows_total"] == 30
        assert answer.headers["location"] == f"/jobs/{job['id']}"
        Watched(service).wait(job["id"], "done", "failed")
        done = client.get(f"/jobs/{job['id']}").json()
        assert (done["state"], done["classified"], done["rejected"], done["rows_done"], done["progress"]) == \
            ("done", 29, 1, 30, 1.0)
        output = client.get(done["output"])
        rejected = client.get(done["rejected_rows"])
    expected = classify_file_output(classifier, source, tmp_path / f"expected.{fmt}")
    assert output.content == expected.read_bytes()  # the same bytes: every input column, the same answers
    assert rejected.content == sidecar_path(expected).read_bytes()
    assert json.loads(rejected.text.splitlines()[0])["row"] == 8
    assert "filename*=utf-8''%E7%89%87%E5%8D%95%20catalogue.genres." in output.headers["content-disposition"]


def test_the_catalogue_at_a_glance_counts_what_the_output_holds_and_lists_the_least_sure_rows(app, tmp_path):
    source = catalogue(tmp_path)
    service = app()
    with TestClient(service) as client:
        job = upload(client, source, output="parquet").json()
        Watched(service).wait(job["id"], "done")
        done = client.get(f"/jobs/{job['id']}").json()
        rows = pq.read_table(io.BytesIO(client.get(done["output"]).content)).to_pylist()
    glance = done["glance"]
    counted: dict[str, int] = {}
    for row in rows:
        for genre in row["genres"]:
            counted[genre] = counted.get(genre, 0) + 1
    assert glance["genres"] == counted and list(glance["genres"].values()) == sorted(counted.values(), reverse=True)
    assert sum(b["rows"] for b in glance["confidence"]) == len(rows) == 29
    tops = {int(r["id"]) + 1: max(json.loads(r["scores"]).values()) for r in rows}
    least = glance["least_sure"]
    assert [u["row"] for u in least] == sorted(tops, key=lambda row: (tops[row], row))[:20]
    assert [u["score"] for u in least] == sorted(u["score"] for u in least)


def test_progress_reports_the_rate_since_the_run_started_and_the_time_left():
    record = JobRecord("a" * 32, "f.csv", "anonymous", "csv", "csv", None, "here", created_at=0.0, state="running",
                       rows_total=1000, rows_done=400, run_started_at=100.0, rows_before_run=200)
    progress = progress_of(record, now=110.0)
    assert (progress.rows_done, progress.fraction, progress.rows_per_s, progress.eta_s) == (400, 0.4, 20.0, 30.0)
    live = progress_of(record, now=110.0, rows_done=500)  # the runner's own count, text by text
    assert (live.rows_done, live.rows_per_s, live.eta_s) == (500, 30.0, 500 / 30)
    record.rows_total = 300  # a CSV's line count was an estimate: never below what is done
    assert progress_of(record, now=110.0).fraction == 1.0
    queued = JobRecord("b" * 32, "f.csv", "anonymous", "csv", "csv", None, "here", created_at=0.0, state="queued",
                       rows_total=10)
    assert (progress_of(queued, now=5.0).rows_per_s, progress_of(queued, now=5.0).eta_s) == (None, None)


def test_each_text_of_a_job_is_classified_alone_under_a_cpu_slot_of_the_service(app, classifier, tmp_path):
    service = app(jobs_chunk_rows=100)
    calls: list[tuple[int, int]] = []  # (texts, slots held while drafting)
    draft = classifier.draft

    def watched(texts, labels=None):
        calls.append((len(texts), service.state.admission.queue.in_flight))
        return draft(texts, labels)

    classifier.draft = watched
    with TestClient(service) as client:
        job = upload(client, catalogue(tmp_path, 80)).json()
        Watched(service).wait(job["id"], "done")
    assert [texts for texts, _ in calls] == [1] * 79  # alone, as a /classify request: on one core
    assert all(held == 1 for _, held in calls)  # each held one slot, as /classify does


def test_a_restart_mid_job_resumes_after_the_last_finished_chunk_and_gives_the_same_output(app, classifier,
                                                                                            tmp_path):
    source = catalogue(tmp_path, 40)
    first = app()
    held = HeldDrafts(classifier, after=8)  # the first chunk's 7 texts and one of the second's go on; the next waits
    client = TestClient(first)
    client.__enter__()
    try:
        job = upload(client, source).json()
        assert held.wait_started(9)
        stopping = threading.Thread(target=client.__exit__, args=(None, None, None))
        stopping.start()  # the service stops while the job is in its second chunk
        assert first.state.jobs.runner.stopping.wait(30)
    finally:
        held.release()
    stopping.join(60)
    left = JobStore(tmp_path / "jobs", 20, 3600).get(job["id"])
    assert not stopping.is_alive() and (left.state, left.rows_done) == ("running", 8)  # its first chunk kept
    texts = []

    def counted(batch, labels=None):
        texts.extend(batch)
        return type(classifier).draft(classifier, batch, labels)

    classifier.draft = counted
    second = app()  # the service started again on the same folder
    with TestClient(second) as client:
        done = Watched(second).wait(job["id"], "done")
        output = client.get(f"/jobs/{job['id']}/output").content
    assert done.classified == 39 and len(texts) == 32  # rows 9 to 40: resumed, not started again
    assert output == classify_file_output(classifier, source, tmp_path / "expected.csv").read_bytes()


def test_an_upload_has_its_own_size_limit_beyond_the_json_routes_and_413_past_it(app, tmp_path):
    source = catalogue(tmp_path, 300)  # ~70 KB: more than the 64 KiB of a JSON route's body
    assert source.stat().st_size > 64 * 1024
    service = app(max_upload_bytes=source.stat().st_size)
    with TestClient(service) as client:
        assert upload(client, source).status_code == 202
        bigger = source.read_bytes() + b"1,x,1999,one row too many\n"
        declared = client.post("/jobs", params={"name": "big.csv"}, content=bigger)
        streamed = client.post("/jobs", params={"name": "big.csv"}, content=iter([bigger[:40_000], bigger[40_000:]]))
    for refused in (declared, streamed):  # told by Content-Length, or counted as it streams in
        assert refused.status_code == 413 and "larger than" in refused.json()["error"]
    assert len(JobStore(tmp_path / "jobs", 20, 3600).records()) == 1  # nothing left of the refused ones


def test_jobs_kept_are_bounded_429_with_retry_after_and_removing_one_frees_its_place(app, tmp_path):
    source = catalogue(tmp_path, 10)
    service = app(max_jobs=2)
    with TestClient(service) as client:
        watch = Watched(service)
        first, second = (upload(client, source).json() for _ in range(2))
        watch.wait(first["id"], "done")
        refused = upload(client, source)
        assert refused.status_code == 429 and "at most 2" in refused.json()["error"]
        assert 0 < int(refused.headers["retry-after"]) <= 24 * 3600  # when the first finished one expires
        assert client.delete(f"/jobs/{first['id']}").json() == {"id": first["id"], "state": "removed"}
        assert client.get(f"/jobs/{first['id']}").status_code == 404
        assert upload(client, source).status_code == 202


def test_with_keys_set_jobs_need_an_api_key_or_an_editors_token_and_are_their_senders(app, tmp_path):
    source = catalogue(tmp_path, 10)
    service = app(api_keys="shop:k3y-shop,app:k3y-app", feedback_token="alice:t0ken-alice")
    with TestClient(service) as client:
        assert upload(client, source).status_code == 401
        assert upload(client, source, headers={"X-API-Key": "wrong"}).status_code == 401
        job = upload(client, source, headers={"X-API-Key": "k3y-shop"}).json()
        assert upload(client, source, headers={"Authorization": "Bearer t0ken-alice"}).status_code == 202
        assert client.get(f"/jobs/{job['id']}", headers={"X-API-Key": "k3y-shop"}).status_code == 200
        assert client.get(f"/jobs/{job['id']}", headers={"X-API-Key": "k3y-app"}).status_code == 404
        assert client.get(f"/jobs/{job['id']}").status_code == 401
        assert client.get("/health").json()["jobs"]["needs_key"] is True


def test_a_file_that_cannot_be_classified_is_refused_with_the_reason_and_nothing_is_kept(app, tmp_path):
    service = app()
    no_plot = write_csv(tmp_path / "films.csv", [{"id": "1", "synopsis": "A heist in Lyon."}])
    with TestClient(service) as client:
        answers = {
            "format": client.post("/jobs", params={"name": "films.xlsx"}, content=b"x"),
            "empty": client.post("/jobs", params={"name": "films.csv"}, content=b""),
            "column": upload(client, no_plot),
            "named": upload(client, no_plot, text_column="summary"),
            "parquet": client.post("/jobs", params={"name": "films.parquet"}, content=b"not parquet at all"),
            "output": upload(client, no_plot, output="xlsx"),
        }
        chosen = upload(client, no_plot, text_column="synopsis")
    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(answers, 422)
    assert "the format is read from the extension" in answers["format"].json()["error"]
    assert "empty" in answers["empty"].json()["error"]
    assert answers["column"].json()["columns"] == ["id", "synopsis"]
    assert "choose the column to classify" in answers["column"].json()["error"]
    assert "no column 'summary'" in answers["named"].json()["error"]
    assert "cannot be read as parquet" in answers["parquet"].json()["error"]
    assert chosen.status_code == 202 and chosen.json()["text_column"] == "synopsis"
    assert len(JobStore(tmp_path / "jobs", 20, 3600).records()) == 1


def test_a_finished_job_is_removed_after_its_time_and_a_cut_off_upload_at_once(tmp_path):
    now = [1000.0]
    store = JobStore(tmp_path / "jobs", 20, keep_s=3600, clock=lambda: now[0])

    def job(name: str) -> JobRecord:
        return JobRecord(store.new_id(), name, "anonymous", "csv", "csv", None, "here", created_at=now[0])

    done, cut_off, uploading = job("a.csv"), job("b.csv"), job("c.csv")
    store.create(done).release()
    done.state, done.finished_at = "done", 1000.0
    store.save(done)
    store.create(cut_off).release()  # its uploader is gone: nobody holds it
    held = store.create(uploading)  # an upload in progress: its lock is held
    assert store.get(cut_off.id) is None  # removed by the next look at the folder
    now[0] = 1000.0 + 3599
    assert store.expire() == [] and store.get(done.id) is not None
    now[0] = 1000.0 + 3600
    assert store.expire() == [done.id] and not store.path(done.id).exists()
    assert [r.id for r in store.records()] == [uploading.id]
    held.release()


def test_a_running_job_removed_stops_at_its_next_text_and_leaves_nothing(app, classifier, tmp_path):
    service = app()
    held = HeldDrafts(classifier)
    with TestClient(service) as client:
        watch = Watched(service)
        job = upload(client, catalogue(tmp_path, 40)).json()
        assert held.wait_started(1)
        assert client.delete(f"/jobs/{job['id']}").json()["state"] == "cancelling"
        held.release()
        watch.wait(job["id"])
        assert client.get(f"/jobs/{job['id']}").status_code == 404
    assert not (tmp_path / "jobs" / job["id"]).exists()


def test_a_job_whose_index_changes_under_it_starts_again_on_the_new_one(classifier, tmp_path):
    from service.jobs.runner import IndexChanged, JobRunner

    class Drafting:  # the service, whose index is rebuilt once the job's first text is asked for
        changed = False

        def manifest(self):
            return classifier.index.manifest

        def draft(self, texts, index):
            if not self.changed:
                self.changed = True
                raise IndexChanged
            return classifier.draft(texts)

    settings = classifier.settings.replace(jobs_dir=tmp_path / "jobs", jobs_chunk_rows=8)
    store = JobStore(tmp_path / "jobs", 20, 3600)
    source = catalogue(tmp_path, 20)
    record = JobRecord(store.new_id(), source.name, "anonymous", "csv", "csv", None, "here", created_at=0.0)
    store.create(record).release()
    store.input_path(record).write_bytes(source.read_bytes())
    record.state = "queued"
    store.save(record)
    runner = JobRunner(store, settings, Drafting(), clock=lambda: 5.0)
    assert runner._run(*store.claim())
    done = store.get(record.id)
    assert (done.state, done.classified, done.rejected) == ("done", 19, 1)
    assert "index changed" in done.notes[0]
    assert store.output_path(done).read_bytes() == classify_file_output(
        classifier, store.input_path(done), tmp_path / "expected.csv").read_bytes()


def _until(server: subprocess.Popen, ask, deadline_s: float = 180):
    """Asks again until `ask` answers something (the service's own pace; the deadline only bounds a hung test)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()[1].decode()[-2000:]
        try:
            if (found := ask()) is not None:
                return found
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError("the service never got there")


def test_a_service_killed_mid_job_resumes_it_when_it_starts_again(classifier, small_index_dir, tmp_path):
    from .conftest import copy_index

    index_dir, jobs_dir = copy_index(small_index_dir, tmp_path / "index"), tmp_path / "jobs"
    rows = films(30) * 20  # 600 rows: seconds of work, the kill lands mid-way
    source = write_csv(tmp_path / "catalogue.csv", [r | {"id": str(i)} for i, r in enumerate(rows)])
    url = f"http://127.0.0.1:{(port := free_port())}"
    server = serve(index_dir, port, MOVIEGENRE_JOBS_DIR=str(jobs_dir), MOVIEGENRE_JOBS_CHUNK_ROWS="8")
    try:
        _until(server, lambda: httpx.get(f"{url}/readyz").status_code == 200 or None)
        job = httpx.post(f"{url}/jobs", params={"name": source.name}, content=source.read_bytes()).json()
        # 24 texts done (counted live) means the second chunk was kept before the third began
        _until(server, lambda: httpx.get(f"{url}/jobs/{job['id']}").json()["rows_done"] >= 24 or None)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        left = JobStore(jobs_dir, 20, 3600).get(job["id"])
        assert left.state == "running" and 16 <= left.rows_done < 600
        # started again on the same folders
        server = serve(index_dir, port, MOVIEGENRE_JOBS_DIR=str(jobs_dir), MOVIEGENRE_JOBS_CHUNK_ROWS="8")
        _until(server, lambda: httpx.get(f"{url}/jobs/{job['id']}").json()["state"] == "done" or None)
        output = httpx.get(f"{url}/jobs/{job['id']}/output").content
    finally:
        server.kill()
        server.wait(timeout=30)
    done = JobStore(jobs_dir, 20, 3600).get(job["id"])
    assert done.rows_before_run >= left.rows_done and done.classified == 600  # resumed after its kept chunks
    assert output == classify_file_output(classifier, source, tmp_path / "expected.csv").read_bytes()


def test_a_jobs_folder_that_cannot_be_written_is_a_503_that_says_so(app, tmp_path):
    (tmp_path / "not-a-folder").write_text("a file where the jobs folder should be")
    service = app(jobs_dir=tmp_path / "not-a-folder" / "jobs")
    with TestClient(service) as client:
        refused = upload(client, catalogue(tmp_path, 10))
        assert client.get("/health").json()["jobs"]["enabled"] is False
    assert refused.status_code == 503 and "jobs folder cannot be written" in refused.json()["error"]


def test_a_job_sent_while_the_service_is_at_capacity_waits_its_turn_and_completes(app, classifier, tmp_path):
    from service.api.errors import Overloaded

    service = app(max_in_flight=1, min_queue=0, max_queue_wait=0)
    refused = threading.Event()
    run = service.state.admission.run

    async def counted(work, *args):
        try:
            return await run(work, *args)
        except Overloaded:
            refused.set()
            raise

    service.state.admission.run = counted
    held = HeldDrafts(classifier)  # a request holds the only slot
    with TestClient(service) as client:
        watch = Watched(service)
        asking = threading.Thread(target=client.post, args=("/classify",), kwargs={"json": {"description": "A heist."}})
        asking.start()
        assert held.wait_started(1)
        job = upload(client, catalogue(tmp_path, 10)).json()
        assert refused.wait(60)  # turned away while the request held the slot: the job waits, it does not fail
        held.release()
        asking.join(60)
        done = watch.wait(job["id"], "done", "failed")
    assert (done.state, done.classified) == ("done", 9)


def test_a_job_sent_before_any_index_is_served_waits_for_one(classifier, tmp_path):
    from service.jobs.runner import JobRunner

    class Drafting:  # a service still loading its index, then serving it
        serving = False

        def manifest(self):
            return classifier.index.manifest if self.serving else None

        def draft(self, texts, index):
            return classifier.draft(texts)

    settings = classifier.settings.replace(jobs_dir=tmp_path / "jobs")
    store = JobStore(tmp_path / "jobs", 20, 3600)
    record = JobRecord(store.new_id(), "c.csv", "anonymous", "csv", "csv", None, "here", created_at=0.0)
    store.create(record).release()
    store.input_path(record).write_bytes(catalogue(tmp_path, 10).read_bytes())
    record.state = "queued"
    store.save(record)
    drafting = Drafting()
    runner = JobRunner(store, settings, drafting, clock=lambda: 5.0)
    assert runner._run(*store.claim()) is False and store.get(record.id).state == "queued"
    drafting.serving = True
    assert runner._run(*store.claim()) is True and store.get(record.id).state == "done"


def test_an_upload_streams_past_the_body_deadline_while_it_keeps_coming_and_is_a_408_when_it_stops(app, tmp_path):
    """The admission reads a JSON body whole within MOVIEGENRE_BODY_TIMEOUT; an upload of hundreds of MB is
    streamed to disk instead, each piece within that deadline: a slow but steady one is kept, a stalled one answered."""
    from .conftest import serve_in_thread

    source = catalogue(tmp_path, 300)
    data = source.read_bytes()
    pieces = [data[i:i + 4096] for i in range(0, len(data), 4096)]

    def steady():
        for piece in pieces:
            time.sleep(0.15)  # ~2.7 s in all, longer than the deadline; no gap comes near it
            yield piece

    with serve_in_thread(app(body_timeout=1)) as url:
        kept = httpx.post(f"{url}/jobs", params={"name": source.name}, content=steady(), timeout=60)
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=60) as stalled:
            stalled.sendall(f"POST /jobs?name=stalled.csv HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(data)}"
                            "\r\n\r\n".encode() + pieces[0])
            answer = stalled.recv(65536).decode()  # the rest never comes
    assert kept.status_code == 202 and kept.json()["upload_bytes"] == len(data)
    assert answer.startswith("HTTP/1.1 408") and "no part of it came within 1 s" in answer
    assert [r.name for r in JobStore(tmp_path / "jobs", 20, 3600).records()] == [source.name]  # nothing of the other
