"""The Ray engine of classify-file and the Ray Serve replicas, on a Ray started by the command itself."""
from __future__ import annotations

import contextlib
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

from .conftest import tmdb_rows
from .test_catalogue import read, rejected, write

pytestmark = pytest.mark.ray
PLOT = {"description": "A young wizard goes to a school of magic and fights a dark lord."}


def _env(index_dir: Path, **extra) -> dict:
    return os.environ | {"MOVIEGENRE_INDEX_DIR": str(index_dir), "LLM_BACKEND": "none", "RAY_ADDRESS": ""} | extra


def test_the_ray_engine_gives_the_local_engines_answers(tmp_path, small_index_dir):
    rows = [{"id": str(i), "plot": r["plot"]} for i, r in enumerate(tmdb_rows(600, 150))]
    rows[7]["plot"] = ""
    source = write(tmp_path / "films.csv", rows + rows)  # 300 rows
    outputs = {}
    for engine in ("local", "ray"):
        outputs[engine] = tmp_path / f"{engine}.jsonl"
        done = subprocess.run([sys.executable, "-m", "service.cli", "classify-file", str(source), "-o",
                               str(outputs[engine]), "--engine", engine, "--chunk-rows", "64", "--quiet"],
                              env=_env(small_index_dir), capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
    assert "by 1 Ray actors" in done.stdout
    local, ray = read(outputs["local"]), read(outputs["ray"])
    assert len(ray) == 298 and [r["id"] for r in ray] == [r["id"] for r in local]
    assert [r["genres"] for r in ray] == [r["genres"] for r in local]
    assert rejected(outputs["ray"]) == rejected(outputs["local"]) and rejected(outputs["ray"])[0]["row"] == 8


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
