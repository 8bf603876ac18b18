"""classify-file: a catalogue in CSV, JSONL or Parquet, classified in chunks, resumable, nothing lost."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from service.batch.chunks import sidecar_path
from service.batch.records import CatalogueError
from service.batch.run import Job, classify_file
from service.cli import main

from .conftest import make_classifier, tmdb_rows
from .fake_llm import FakeLLMServer

UNICODE = ["一个少年巫师在魔法学校学习，与黑暗魔王作战。", "محقق يطارد قاتلا متسلسلا في مدينة مظلمة 🕵️",
           "Un chef 🍝 ouvre un restaurant à Paris et tombe amoureux."]


@pytest.fixture(scope="module")
def classifier(small_index_dir):
    classifier = make_classifier(small_index_dir)
    yield classifier
    classifier.close()


@pytest.fixture(scope="module")
def films() -> list[dict]:
    """Real plots the index does not hold, with an id and a title beside them."""
    return [{"id": str(i), "title": r["title"], "plot": r["plot"]} for i, r in enumerate(tmdb_rows(600, 40))]


def write(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".csv":
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def read(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as f:
            return [r | {"genres": r["genres"].split("|") if r["genres"] else [], "scores": json.loads(r["scores"])}
                    for r in csv.DictReader(f)]
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [r | {"scores": json.loads(r["scores"])} for r in pq.read_table(path).to_pylist()]


def rejected(output: Path) -> list[dict]:
    return [json.loads(line) for line in sidecar_path(output).read_text(encoding="utf-8").splitlines()]


def run(source: Path, output: Path, classifier, **job) -> tuple:
    return classify_file(Job.of(source, output, classifier.settings, **job), classifier)


@pytest.mark.parametrize("out_ext", [".csv", ".jsonl", ".parquet"])
@pytest.mark.parametrize("in_ext", [".csv", ".jsonl", ".parquet"])
def test_every_format_in_and_out_gives_the_served_genres_with_every_column_passed_through(
        tmp_path, classifier, films, in_ext, out_ext):
    source = write(tmp_path / f"films{in_ext}", films)
    summary = run(source, tmp_path / f"out{out_ext}", classifier, chunk_rows=16)
    rows = read(summary.output)
    served = classifier.classify_many([f["plot"] for f in films])
    assert [r["id"] for r in rows] == [f["id"] for f in films]  # every row, in the file's order
    assert [r["title"] for r in rows] == [f["title"] for f in films]
    assert [r["genres"] for r in rows] == [s.genres for s in served]
    assert all(r["backend"] == "vote" and r["language"] == "en" for r in rows)
    assert list(rows[0]["scores"])[:len(rows[0]["genres"])] == rows[0]["genres"]  # scores, highest first
    assert summary.classified == len(films) and rejected(summary.output) == []


def test_text_in_any_script_survives_the_whole_file_path(tmp_path, classifier):
    rows = [{"plot": text, "note": text[::-1]} for text in UNICODE]
    for ext in (".csv", ".jsonl", ".parquet"):
        summary = run(write(tmp_path / f"in{ext}", rows), tmp_path / f"out{ext}", classifier)
        out = read(summary.output)
        assert [(r["plot"], r["note"]) for r in out] == [(r["plot"], r["note"]) for r in rows]
        assert all(r["genres"] for r in out)


def test_unusable_rows_go_to_the_sidecar_with_their_row_and_reason_and_never_stop_the_run(tmp_path, classifier,
                                                                                        films):
    limit = classifier.settings.service.max_description_chars
    source = tmp_path / "films.csv"
    write(source, [films[0], {"id": "e", "title": "Empty", "plot": "  "}, films[1],
                   {"id": "l", "title": "Long", "plot": "word " * limit}, films[2]])
    with source.open("ab") as f:  # a row that is not UTF-8, then one with a field too many
        f.write(b'x,Latin-1 \xe9t\xe9,"A summer in Provence."\r\ny,Extra,"plot",surplus\r\n')
    write(tmp_path / "tail.csv", [films[3]])
    with source.open("ab") as f:
        f.write((tmp_path / "tail.csv").read_bytes().split(b"\n", 1)[1])
    summary = run(source, tmp_path / "out.csv", classifier, chunk_rows=2)
    assert [r["id"] for r in read(summary.output)] == ["0", "1", "2", "3"]
    reasons = {r["row"]: r["reason"] for r in rejected(summary.output)}
    assert list(reasons) == [2, 4, 6, 7]
    assert reasons[2].startswith("empty") and reasons[4].startswith("too long")
    assert reasons[6].startswith("undecodable") and reasons[7].startswith("malformed")


def test_bad_json_lines_are_rejected_by_row(tmp_path, classifier, films):
    source = tmp_path / "films.jsonl"
    source.write_bytes(b"\n".join([json.dumps(films[0]).encode(), b"{not json", b"[1, 2]", b"",
                                   json.dumps({"plot": 42}).encode(), b'{"plot": "caf\xe9"}',
                                   json.dumps(films[1]).encode()]) + b"\n")
    summary = run(source, tmp_path / "out.jsonl", classifier)
    assert [r["id"] for r in read(summary.output)] == ["0", "1"]
    reasons = [(r["row"], r["reason"].split(":")[0]) for r in rejected(summary.output)]
    assert reasons == [(2, "not JSON"), (3, "not a JSON object"), (4, "empty"), (5, "not text"), (6, "undecodable")]


def test_the_text_column_is_plot_or_description_or_the_one_named(tmp_path, classifier, films):
    source = write(tmp_path / "films.csv", [{"Description": f["plot"], "genres": "gold"} for f in films[:3]])
    summary = run(source, tmp_path / "out.csv", classifier)
    rows = read(summary.output)
    assert all(r["input_genres"] == "gold" and r["genres"] for r in rows)  # an input column of the same name kept
    with pytest.raises(CatalogueError, match="no column 'synopsis'"):
        Job.of(source, tmp_path / "o.csv", classifier.settings, column="synopsis")
    plain = write(tmp_path / "plain.csv", [{"title": "Up", "text": "x"}])
    with pytest.raises(CatalogueError, match="--text-column"):
        Job.of(plain, tmp_path / "o.csv", classifier.settings)
    with pytest.raises(CatalogueError, match="extension"):
        Job.of(source, tmp_path / "out.xlsx", classifier.settings)


def test_the_command_says_what_it_did_and_refuses_an_unknown_column(tmp_path, small_index_dir, films, monkeypatch,
                                                                    capsys):
    monkeypatch.setenv("MOVIEGENRE_INDEX_DIR", str(small_index_dir))
    source = write(tmp_path / "films.csv", films[:5])
    assert main(["classify-file", str(source), "-o", str(tmp_path / "out.jsonl"), "--quiet"]) == 0
    assert "5 rows classified" in capsys.readouterr().out
    assert main(["classify-file", str(source), "-o", str(tmp_path / "o.csv"), "--text-column", "synopsis"]) == 2
    assert "no column 'synopsis'" in capsys.readouterr().out


def test_the_llm_is_asked_with_bounded_concurrency(tmp_path, small_index_dir, films):
    in_flight, most = [0], [0]
    lock = threading.Lock()
    together = threading.Barrier(2, timeout=30)  # each request waits until a second one is in flight with it

    def answer(messages):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        together.wait()
        with lock:
            in_flight[0] -= 1
        return json.dumps({"genres": ["Drama"]})

    with FakeLLMServer(answer) as llm:
        classifier = make_classifier(small_index_dir, llm_backend="openai", openai_base_url=f"{llm.url}/v1",
                                     llm_concurrency=2, recognise_films=False)
        try:
            job = Job.of(write(tmp_path / "films.csv", films[:12]), tmp_path / "out.jsonl", classifier.settings,
                         llm=True)
            summary = classify_file(job, classifier)
        finally:
            classifier.close()
        asked = len(llm.chat_requests())
    rows = read(summary.output)
    assert asked == 12 and all(r["backend"] == "openai" for r in rows)
    assert most[0] == 2  # as many as allowed, never more


def _command(source: Path, output: Path, index_dir: Path) -> tuple[list[str], dict]:
    env = os.environ | {"MOVIEGENRE_INDEX_DIR": str(index_dir), "LLM_BACKEND": "none"}
    return [sys.executable, "-m", "service.cli", "classify-file", str(source), "-o", str(output), "--chunk-rows",
            "5", "--quiet"], env


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, small_index_dir, films) -> tuple[Path, Path]:
    """A catalogue and the output of a run that was never interrupted."""
    folder = tmp_path_factory.mktemp("whole")
    source = write(folder / "films.csv", films + [{"id": "x", "title": "Blank", "plot": ""}])
    command, env = _command(source, folder / "whole.csv", small_index_dir)
    assert subprocess.run(command, env=env, capture_output=True).returncode == 0
    return source, folder / "whole.csv"


@pytest.mark.parametrize("chunks_done", [1, 4])
def test_a_run_killed_mid_way_resumes_and_gives_the_same_output_as_an_uninterrupted_run(
        tmp_path, small_index_dir, uninterrupted, chunks_done):
    source, whole = uninterrupted
    output = tmp_path / "out.csv"
    command, env = _command(source, output, small_index_dir)
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    partial = output.with_name(output.name + ".partial")
    deadline = time.monotonic() + 120
    while len(list(partial.glob("chunk-*.parquet"))) < chunks_done and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1].decode()
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert not output.exists()  # never a half-written file under the output's name
    rerun = subprocess.run(command, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed after" in rerun.stdout
    assert output.read_bytes() == whole.read_bytes()
    assert sidecar_path(output).read_bytes() == sidecar_path(whole).read_bytes()
    assert not partial.exists()


def test_leftovers_of_another_job_are_not_taken_over(tmp_path, classifier, films):
    source = write(tmp_path / "films.csv", films[:6])
    output = tmp_path / "out.csv"
    partial = output.with_name(output.name + ".partial")
    partial.mkdir()
    (partial / "job.json").write_text(json.dumps({"input": "another file"}))
    pq.write_table(pa.table({"x": [1]}), partial / "chunk-0000000.parquet")
    summary = run(source, output, classifier, chunk_rows=2)
    assert summary.resumed_rows == 0 and [r["id"] for r in read(summary.output)] == [f["id"] for f in films[:6]]
    assert "another job" in summary.notes[0]


def test_the_rows_to_do_are_counted_for_the_progress_bar(tmp_path, films):
    from service.batch.records import count_rows

    for ext in (".csv", ".jsonl", ".parquet"):
        assert count_rows(write(tmp_path / f"f{ext}", films[:7])) == 7


def test_a_column_that_appears_in_later_records_survives_in_every_output(tmp_path, classifier, films):
    rows = [{"id": f["id"], "plot": f["plot"]} | ({"director": f"Director {i}"} if i >= 10 else {})
            for i, f in enumerate(films[:14])]
    source = write(tmp_path / "films.jsonl", rows)
    for ext in (".csv", ".parquet", ".jsonl"):
        out = read(run(source, tmp_path / f"out{ext}", classifier, chunk_rows=4).output)
        assert list(out[0])[:3] == ["id", "plot", "director"]  # first-seen order, then the answer's columns
        assert [r["director"] or None for r in out] == [None] * 10 + [f"Director {i}" for i in range(10, 14)]


def test_parquet_columns_keep_their_types_and_text_formats_get_their_plain_text(tmp_path, classifier, films):
    import datetime
    import decimal

    table = pa.table({"plot": [f["plot"] for f in films[:3]],
                      "released": pa.array([datetime.date(1999, 3, 31)] * 3, pa.date32()),
                      "budget": pa.array([decimal.Decimal("63000000.50")] * 3, pa.decimal128(12, 2)),
                      "poster": pa.array([b"\x89PNG\x00\xff"] * 3, pa.binary())})
    source = tmp_path / "films.parquet"
    pq.write_table(table, source)
    out = pq.read_table(run(source, tmp_path / "out.parquet", classifier).output)
    assert out.schema.field("released").type == pa.date32()
    assert out.schema.field("budget").type == pa.decimal128(12, 2)
    assert out.schema.field("poster").type == pa.binary()
    assert out.column("poster").to_pylist()[0] == b"\x89PNG\x00\xff"
    jsonl = read(run(source, tmp_path / "out.jsonl", classifier).output)[0]
    assert (jsonl["released"], jsonl["budget"], jsonl["poster"]) == ("1999-03-31", "63000000.50", "iVBORwD/")
    csv_row = read(run(source, tmp_path / "out.csv", classifier).output)[0]
    assert (csv_row["released"], csv_row["budget"], csv_row["poster"]) == ("1999-03-31", "63000000.50", "iVBORwD/")


def test_a_column_whose_type_changes_between_chunks_is_widened_and_reported_not_a_crash(tmp_path, classifier, films):
    rows = [{"plot": f["plot"], "rank": i if i < 4 else f"#{i}", "score": i if i < 4 else i + 0.5}
            for i, f in enumerate(films[:8])]
    source = write(tmp_path / "films.jsonl", rows)
    summary = run(source, tmp_path / "out.parquet", classifier, chunk_rows=4)
    out = pq.read_table(summary.output)
    assert out.column("rank").to_pylist() == ["0", "1", "2", "3", "#4", "#5", "#6", "#7"]
    assert out.schema.field("score").type == pa.float64() and out.column("score").to_pylist()[5] == 5.5
    assert summary.widened == {"rank": "string", "score": "double"}
    assert any("'rank'" in note for note in summary.notes)


def test_a_csv_saved_by_a_spreadsheet_with_a_byte_order_mark_is_read(tmp_path, classifier, films):
    source = write(tmp_path / "films.csv", films[:3])
    source.write_bytes(b"\xef\xbb\xbf" + source.read_bytes())
    summary = run(source, tmp_path / "out.csv", classifier)
    assert [r["id"] for r in read(summary.output)] == ["0", "1", "2"]
    assert list(read(summary.output)[0])[0] == "id"


def test_text_of_invisible_characters_alone_is_rejected_like_blank_text(tmp_path, classifier, films):
    source = write(tmp_path / "films.jsonl", [films[0], {"id": "z", "plot": "\u200b\u200d\u2060\ufeff"}])
    summary = run(source, tmp_path / "out.jsonl", classifier)
    assert [r["id"] for r in read(summary.output)] == ["0"]
    assert rejected(summary.output)[0]["reason"].startswith("empty")


def test_a_failed_assembly_leaves_no_output_and_no_temporary_file_and_a_rerun_completes(tmp_path, classifier, films,
                                                                                      monkeypatch):
    from service.batch import chunks

    source = write(tmp_path / "films.csv", films[:6])
    output = tmp_path / "out.csv"

    def broken(path, schema, tables):
        path.write_text("half a file")
        raise OSError("disk full")

    monkeypatch.setitem(chunks.WRITERS, "csv", broken)
    with pytest.raises(OSError, match="disk full"):
        run(source, output, classifier, chunk_rows=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["films.csv", "out.csv.partial"]
    assert not list((tmp_path / "out.csv.partial").glob("*.tmp"))
    monkeypatch.undo()
    summary = run(source, output, classifier, chunk_rows=2)
    assert summary.resumed_rows == 6 and len(read(output)) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["films.csv", "out.csv", "out.csv.rejected.jsonl"]


@pytest.mark.parametrize("change", ["setting", "index"])
def test_a_rerun_that_would_answer_differently_starts_afresh_and_says_so(tmp_path, small_index_dir, uninterrupted,
                                                                         change):
    import shutil

    from service.build import build_index

    from .conftest import served_settings, write_generic_csv

    source, _ = uninterrupted
    index_dir = shutil.copytree(small_index_dir, tmp_path / "index")
    output = tmp_path / "out.csv"
    command, env = _command(source, output, index_dir)
    first = env | {"MOVIEGENRE_MAX_GENRES": "5"}
    process = subprocess.Popen(command, env=first, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    partial = output.with_name(output.name + ".partial")
    deadline = time.monotonic() + 120
    while len(list(partial.glob("chunk-*.parquet"))) < 2 and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1].decode()
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    second = first | {"MOVIEGENRE_MAX_GENRES": "1"} if change == "setting" else first
    if change == "index":  # another corpus: another index build under the same folder
        build_index(write_generic_csv(tmp_path / "other.csv", tmdb_rows(0, 150)), index_dir,
                    served_settings(), progress=False)
    rerun = subprocess.run(command, env=second, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed" not in rerun.stdout and "another job" in " ".join(rerun.stdout.split())
    fresh = tmp_path / "fresh.csv"
    assert subprocess.run(_command(source, fresh, index_dir)[0], env=second).returncode == 0
    assert output.read_bytes() == fresh.read_bytes()  # nothing of the first classifier's answers is left
    if change == "setting":
        assert all(len(r["genres"]) == 1 for r in read(output))


def test_a_concurrency_of_zero_is_refused_with_a_message(tmp_path, small_index_dir, films):
    source = write(tmp_path / "films.csv", films[:2])
    command, env = _command(source, tmp_path / "out.csv", small_index_dir)
    done = subprocess.run(command + ["--llm-concurrency", "0"], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "at least 1" in done.stderr and "Traceback" not in done.stderr
