"""A throwaway Redis server for the tests: Debian's redis-server (`make redis` installs it), listening on a unix
socket in a temporary folder only (no TCP port, so nothing else on the machine can collide with it), keeping
nothing on disk; it can be killed and started again on the same socket, as an outage and its end."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

REDIS_SERVER = "redis-server"


class RedisServer:
    def __init__(self, folder: Path):
        self.socket = folder / "redis.sock"
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        """The address MOVIEGENRE_RATE_LIMIT_STORAGE takes (limits' scheme for a unix socket)."""
        return f"redis+unix://{self.socket}"

    def start(self) -> RedisServer:
        binary = shutil.which(REDIS_SERVER)
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make redis` (Debian's redis-server)")
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700", "--save", "",
             "--appendonly", "no", "--dir", str(self.socket.parent), "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {self.process.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """The outage: the server killed at once (SIGKILL), its socket gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.socket.unlink(missing_ok=True)

    def command(self, *words: str) -> bytes:
        """One command in Redis' inline form, and its reply."""
        with socket.socket(socket.AF_UNIX) as connection:
            connection.settimeout(10)
            connection.connect(str(self.socket))
            connection.sendall(" ".join(words).encode() + b"\r\n")
            return connection.recv(65536)

    def _answers(self) -> bool:
        try:
            return self.command("PING") == b"+PONG\r\n"
        except OSError:
            return False
