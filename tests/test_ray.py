"""The Ray engine of classify-file and the Ray Serve replicas, on a Ray started by the command itself."""
from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.api.replicas import REPLICA_HEADER
from service.settings import Settings

from .conftest import tmdb_rows
from .test_catalogue import read, rejected, write

pytestmark = [pytest.mark.ray, pytest.mark.xdist_group("ray")]  # under `make test`: on one worker, one Ray at a time
PLOT = {"description": "A young wizard goes to a school of magic and fights a dark lord."}


def _env(index_dir: Path, **extra) -> dict:
    return os.environ | {"MOVIEGENRE_INDEX_DIR": str(index_dir), "LLM_BACKEND": "none", "RAY_ADDRESS": ""} | extra


def _classify_file(source: Path, output: Path, index_dir: Path, engine: str, *extra: str):
    done = subprocess.run([sys.executable, "-m", "service.cli", "classify-file", str(source), "-o", str(output),
                           "--engine", engine, "--chunk-rows", "16", "--quiet", *extra],
                          env=_env(index_dir), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _awkward_files(folder: Path) -> list[Path]:
    """A CSV with blank lines, a malformed row and an empty plot; a JSONL file whose keys vary from record to
    record, with a bad line and a trailing newline."""
    rows = [{"id": str(i), "plot": r["plot"]} for i, r in enumerate(tmdb_rows(600, 40))]
    rows[7]["plot"] = ""
    csv_file = write(folder / "films.csv", rows)
    lines = csv_file.read_bytes().split(b"\r\n")
    lines[5:5] = [b"", b"oops,too,many,fields"]
    lines[20:20] = [b""]
    csv_file.write_bytes(b"\r\n".join(lines) + b"\r\n\r\n")
    jsonl = folder / "films.jsonl"
    records = [json.dumps(r | ({"director": f"D{i}"} if i > 20 else {}), ensure_ascii=False)
               for i, r in enumerate(rows)]
    records[12] = "{not json"
    jsonl.write_text("\n".join(records) + "\n", encoding="utf-8")
    return [csv_file, jsonl]


def test_the_ray_engine_gives_the_local_engines_rows_rejections_and_row_numbers(tmp_path, small_index_dir):
    from service.batch.ray_engine import pool_size

    for source in _awkward_files(tmp_path):
        local, ray = tmp_path / f"local-{source.stem}.jsonl", tmp_path / f"ray-{source.suffix[1:]}.jsonl"
        _classify_file(source, local, small_index_dir, "local")
        done = _classify_file(source, ray, small_index_dir, "ray")
        assert read(ray) == read(local) and len(read(ray)) >= 37
        assert rejected(ray) == rejected(local) and rejected(ray)
    expected, _ = pool_size(os.cpu_count(), 1 << 40, None, None)
    assert f"by {expected} Ray actor" in done.stdout


def test_a_killed_ray_run_resumes_where_it_stopped_and_equals_an_uninterrupted_run(tmp_path, small_index_dir):
    source = _awkward_files(tmp_path)[0]
    whole = tmp_path / "whole.csv"
    _classify_file(source, whole, small_index_dir, "local")
    output = tmp_path / "out.csv"
    command = [sys.executable, "-m", "service.cli", "classify-file", str(source), "-o", str(output), "--engine",
               "ray", "--chunk-rows", "4", "--quiet"]
    process = subprocess.Popen(command, env=_env(small_index_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    partial = output.with_name(output.name + ".partial")
    deadline = time.monotonic() + 180
    while len(list(partial.glob("chunk-*.parquet"))) < 3 and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1].decode()[-3000:]
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    done = _classify_file(source, output, small_index_dir, "ray", "--chunk-rows", "4")
    assert "resumed after" in done.stdout
    # a chunk size of 4 instead of 16: the rows, not the chunks, must come out the same
    assert read(output) == read(whole) and rejected(output) == rejected(whole)


@pytest.mark.parametrize("cpus, memory_gb, requested, llm, size", [
    (2, 24, None, None, 1), (32, 24, None, None, 16), (32, 256, None, None, 31), (1, 24, None, None, 1),
    (32, 256, None, 4, 4), (32, 256, 8, None, 8), (4, 24, 16, None, 3)])
def test_the_actor_pool_is_capped_by_cpus_memory_and_llm_concurrency(cpus, memory_gb, requested, llm, size):
    from service.batch.ray_engine import pool_size

    got, notes = pool_size(cpus, memory_gb << 30, requested, llm)
    assert got == size and bool(notes) == bool(requested and requested > size)


@pytest.mark.parametrize("replicas, slots, each, warned", [(1, 4, 4, False), (2, 4, 2, False), (3, 8, 2, False),
                                                          (4, 4, 1, False), (6, 4, 1, True)])
def test_serve_replicas_divide_each_llm_servers_slots_among_them(replicas, slots, each, warned, caplog):
    # LLM_CONCURRENCY is each server's parallel slots for the whole service: N replicas must not send N times that
    from service.api.replicas import application

    settings = Settings(llm_backend="openai", openai_base_url="http://a/v1,http://b/v1", llm_concurrency=slots)
    with caplog.at_level("WARNING", logger="moviegenre"):
        [bound] = application(replicas, settings)._bound_deployment.init_args
    assert bound.llm.concurrency == each and bound.llm.servers() == settings.llm.servers()
    assert any("each replica keeps one" in r.getMessage() for r in caplog.records) == warned


def _free_port() -> int:
    """A free port below the kernel's ephemeral range: the ports Ray's own processes take (bind to 0) come from
    that range, so one picked there can be taken by Ray before Serve's proxy binds it."""
    lowest_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.sample(range(20000, min(lowest_ephemeral, 32768)), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and the ephemeral range")


def _replica_pids() -> set[int]:
    pids = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(b"ray::ServeReplica:moviegenre"):
                pids.add(int(proc.name))
        except OSError:
            continue
    return pids


def _replicas_answering(url: str, want: int, deadline_s: float, serve: subprocess.Popen) -> set[str]:
    """Replica names seen in answers, asking until `want` distinct ones answered, the deadline passed or the
    serve command ended."""
    seen: set[str] = set()
    deadline = time.monotonic() + deadline_s
    with httpx.Client(timeout=10) as client:
        while len(seen) < want and time.monotonic() < deadline and serve.poll() is None:
            try:
                response = client.post(f"{url}/classify", json=PLOT)
            except httpx.TransportError:
                time.sleep(0.5)
                continue
            if response.status_code == 200:
                seen.add(response.headers[REPLICA_HEADER])
            else:
                time.sleep(0.2)
    return seen


def test_two_replicas_answer_and_one_killed_is_replaced_while_requests_keep_succeeding(tmp_path, small_index_dir):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--replicas", "2"],
                                 env=_env(small_index_dir, MOVIEGENRE_PORT=str(port)), stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    try:
        first = _replicas_answering(url, 2, deadline_s=180, serve=serve)
        assert len(first) == 2, log.read_text(errors="replace")[-3000:]
        victim = min(_replica_pids())
        os.kill(victim, signal.SIGKILL)
        with httpx.Client(timeout=10) as client:
            codes = [client.post(f"{url}/classify", json=PLOT).status_code for _ in range(30)]
        assert codes == [200] * 30  # the proxy sends them to the replica alive
        deadline = time.monotonic() + 90
        while (len(_replica_pids()) < 2 or victim in _replica_pids()) and time.monotonic() < deadline:
            time.sleep(1)
        assert len(_replica_pids()) == 2 and victim not in _replica_pids()
        later = _replicas_answering(url, 2, deadline_s=60, serve=serve)
        assert len(later) == 2 and later - first  # Serve brought a new replica up, and it answers
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(serve.pid, signal.SIGTERM)  # the whole group: Ray's processes too
        serve.wait(timeout=60)


def test_serving_on_a_taken_port_says_so_instead_of_starting_ray(small_index_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", _free_port()))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "service.cli", "serve", "--replicas", "2"],
                              env=_env(small_index_dir, MOVIEGENRE_HOST="127.0.0.1", MOVIEGENRE_PORT=str(port)),
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"cannot serve on 127.0.0.1:{port}" in " ".join(done.stdout.split()) and "Traceback" not in done.stderr
