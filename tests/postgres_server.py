"""A real PostgreSQL server for the tests: Debian's binaries, a cluster in a temp dir, loopback, a free port.

`initdb` refuses to run as root, so as root the cluster belongs to the `postgres` user (created by
Debian's package) and its commands run through `runuser`. fsync is off: the tests' durability
claims are about what fnhost commits, not about the disk.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

PG_BIN = Path(os.environ.get("FNHOST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SETUP_HINT = "install it with `just setup-postgres` (apt-get install postgresql-15)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self) -> None:
        if not (PG_BIN / "initdb").is_file():
            raise FileNotFoundError(f"PostgreSQL server binaries not found in {PG_BIN}; {SETUP_HINT}")
        self.dir = Path(tempfile.mkdtemp(prefix="fnhost-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.dir, "postgres")
        self._run(PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8",
                  "--locale=C.UTF-8")  # fmt: skip
        self.resume()

    def _run(self, *cmd: object) -> None:
        done = subprocess.run([*self._as, *map(str, cmd)], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {done.stderr.strip() or done.stdout.strip()}")

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database on this server; its DSN."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def pause(self) -> None:
        """Stop the server, keeping its data (the database going away)."""
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start it again on the same port (the database coming back)."""
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-w", "-l", self.dir / "server.log", "-o", options, "start")

    def stop(self) -> None:
        subprocess.run([*self._as, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)  # fmt: skip  # already stopped is fine
        shutil.rmtree(self.dir, ignore_errors=True)
