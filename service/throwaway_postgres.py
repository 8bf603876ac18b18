"""A throwaway PostgreSQL server made from the machine's own binaries (Debian's postgresql package), for the tests
and the bench: a new cluster in a temporary folder, listening on a Unix socket in that folder only (no port is
taken), trusted local connections, no fsync (nothing in it outlives the run). PostgreSQL refuses to run as root:
as root (CI), the cluster belongs to the `postgres` user and its commands run as that user."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

BINARIES = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"
PORT = 5432  # names the socket file in the cluster's own folder: no port is listened on


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries on this machine (`make postgres` installs Debian's)."""


def server_binaries() -> Path:
    """The folder of the newest PostgreSQL's initdb/pg_ctl: Debian's /usr/lib/postgresql/<version>/bin, or PATH's."""
    versions = sorted(BINARIES.glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
                      if p.parent.parent.name.isdigit() else 0)
    if versions:
        return versions[-1].parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise PostgresMissing("no PostgreSQL server binaries (initdb, pg_ctl): run `make postgres`")


class ThrowawayPostgres:
    def __init__(self):
        self.bin = server_binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="moviegenre-pg-"))
        self.folder.chmod(0o755)
        self.data = self.folder / "data"
        self.run = self.folder / "run"  # the server's socket and log
        self._as_root = os.geteuid() == 0

    def start(self) -> ThrowawayPostgres:
        if not self.data.exists():
            for folder in (self.data, self.run):
                folder.mkdir()
                self._own(folder)
            self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
                      "--no-sync")
        options = f"-k {self.run} -c listen_addresses='' -p {PORT} -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.run / "server.log"), "-w", "-t", "60",
                  "-o", options, "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """`immediate` is a crash: the server's processes end without a shutdown (the tests' outage)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def url(self, database: str = SUPERUSER) -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={self.run}&port={PORT}"

    def new_database(self) -> str:
        """An empty database of its own (a test's), and its URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.remove()

    def _own(self, path: Path) -> None:
        if self._as_root:
            shutil.chown(path, SUPERUSER, SUPERUSER)

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command = [str(self.bin / program), *args]
        if self._as_root:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder)
        if check and done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
