"""Service processes for the tests of replicas: `moviegenre serve` started as a real process, on a port of its own."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(index_dir, port: int, **env: str) -> subprocess.Popen:
    """`moviegenre serve` on `index_dir`, without an LLM, with these environment variables."""
    environment = os.environ | {"MOVIEGENRE_INDEX_DIR": str(index_dir), "LLM_BACKEND": "none",
                                "MOVIEGENRE_PORT": str(port)} | env
    return subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=environment,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_ready(server: subprocess.Popen, url: str, limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()[1].decode()[-2000:]
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("the service did not become ready")


def eventually(condition, limit_s: float = 30, every_s: float = 0.1):
    """Waits for `condition()` to be true (a poll that another process or thread will make true), returning its
    value; fails after `limit_s` (a bound on a hang, not a measure of speed)."""
    deadline = time.monotonic() + limit_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {limit_s} s: {condition.__doc__ or condition}")
        time.sleep(every_s)
    return value


def stop(*servers: subprocess.Popen) -> None:
    for server in servers:
        server.kill()
        server.wait(timeout=30)
