"""A throwaway PostgreSQL server for the end-to-end tests that need one (the PostgreSQL store,
several nodes, the fault test). Started from the Debian package's binaries as the `postgres` OS
user (PostgreSQL refuses to run as root), on 127.0.0.1 and a free port, with trust auth, in a
temporary directory; stopped and removed at the end."""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path


def _pg_bin() -> Path:
    roots = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    assert roots, "PostgreSQL is not installed (scripts/install-deps.sh installs it)"
    return roots[-1]


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PgServer:
    def __init__(self):
        self.bin = _pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="connreg-e2e-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.as_root = os.getuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/")
        if check:
            assert r.returncode == 0, f"{' '.join(args)} failed: {r.stdout}\n{r.stderr}"
        return r

    def start(self) -> "PgServer":
        if not (self.data / "PG_VERSION").exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                      "--auth=trust", "-E", "UTF8", "--no-sync")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"),
                  "-w", "-t", "30", "-o",
                  f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                  f"-c unix_socket_directories={self.dir} -c fsync=off -c max_connections=200",
                  "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30",
                  "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, sql: str, db: str = "postgres") -> str:
        r = self._run(str(self.bin / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                      "-h", str(self.dir), "-p", str(self.port), "-U", "postgres", "-d", db,
                      "-c", sql)
        return r.stdout.strip()

    def new_database(self) -> str:
        """A fresh, empty database; returns its connreg url."""
        name = "connreg_" + uuid.uuid4().hex[:12]
        self.psql(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self._run(str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port),
                          check=False)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("PostgreSQL did not become ready")
