"""The README's commands, run as a new user runs them (tests/readme, pytest).

The commands are read from README.md itself, never copied here, and run verbatim with bash in a
fresh copy of the source tree (the tracked files only: no build directory, no node_modules, no
data). The environment may choose a free port (CONNREG_LISTEN, API); nothing else differs from
what a user does:

- the first command builds the Release binary from scratch and starts `connreg serve` on the
  default ./data store; it must print the bootstrap credentials and listen;
- the usage snippet ("Using it") gets a token with those credentials, creates a connection and
  reads it back;
- SIGTERM stops the server with exit status 0;
- the operator CLI lines run in order against the same store, each placeholder (ORG, MEMBER,
  CLIENT, TEAM) replaced by the id an earlier line printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
BUILD_TIMEOUT = 40 * 60  # a Release build from scratch on a 2-core machine takes ~5 minutes


def code_blocks(markdown: str) -> list[tuple[str, str]]:
    """The indented code blocks of a Markdown text, each with the heading it stands under."""
    blocks, heading, current = [], "", []
    for line in markdown.splitlines() + [""]:
        if line.startswith("    ") or (current and not line.strip()):
            current.append(line[4:])
            continue
        if current:
            blocks.append((heading, "\n".join(current).strip("\n")))
            current = []
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
    return blocks


BLOCKS = code_blocks(README)


def block_under(heading: str) -> str:
    found = [text for h, text in BLOCKS if h == heading]
    assert found, f"README.md has no code block under '{heading}'"
    return found[0]


def fresh_checkout(dest: Path) -> None:
    """Copies the files git tracks (plus untracked, not ignored ones) into dest; outside a git
    checkout (a source tarball), every file but the build trees, node_modules and data."""
    listing = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], capture_output=True)
    if listing.returncode != 0:
        shutil.copytree(REPO, dest, dirs_exist_ok=True, symlinks=True,
                        ignore=lambda d, names: [n for n in names if n.startswith("build")
                                                 or n in ("node_modules", "data", ".git")])
        return
    for rel in filter(None, listing.stdout.decode().split("\0")):
        src = REPO / rel
        if not src.is_file():
            continue  # deleted in the work tree
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)


def user_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNREG_")}
    env.update(extra)
    return env


class Served:
    """The first command running under bash: its output lines, read as they come."""

    def __init__(self, command: str, cwd: Path):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=user_env(CONNREG_LISTEN="127.0.0.1:0"))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def wait_listening(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith("{") and '"listening"' in line:
                    return json.loads(line)["port"]
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError("the README's first command did not start the server:\n" + self.tail())

    def printed(self, label: str) -> str:
        for line in self.lines:
            m = re.match(rf"^connreg:\s+{label}:\s+(\S+)$", line)
            if m:
                return m.group(1)
        raise AssertionError(f"the first start did not print the {label}:\n" + self.tail())

    def server_pid(self) -> int:
        """connreg serve, the last command of the && chain: bash 5.2 execs it, others fork it."""
        if Path(f"/proc/{self.proc.pid}/exe").resolve().name == "connreg":
            return self.proc.pid
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        for pid in children:
            if Path(f"/proc/{pid}/exe").resolve().name == "connreg":
                return int(pid)
        raise AssertionError(f"no connreg process under bash (children: {children})")

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.lines[-n:])


def parse_json_stream(text: str) -> list:
    decoder, out, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        value, i = decoder.raw_decode(text, i)
        out.append(value)


@pytest.fixture(scope="module")
def checkout():
    tmp = Path(tempfile.mkdtemp(prefix="connreg-readme-"))
    fresh_checkout(tmp)
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


def test_readme_first_command_builds_release_serves_and_stops_cleanly(checkout):
    first = BLOCKS[0][1]
    assert "CMAKE_BUILD_TYPE=Release" in first and first.rstrip().endswith("serve"), first
    served = Served(first, checkout)
    try:
        port = served.wait_listening(BUILD_TIMEOUT)
        client_id, client_secret = served.printed("client id"), served.printed("client secret")
        creds = checkout / "data" / "bootstrap-credentials.json"
        assert json.loads(creds.read_text())["clientSecret"] == client_secret
        assert creds.stat().st_mode & 0o777 == 0o600

        usage = block_under("Using it")
        run = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", usage], cwd=checkout,
                             capture_output=True, text=True, timeout=60,
                             env=user_env(API=f"http://127.0.0.1:{port}", CLIENT_ID=client_id,
                                          CLIENT_SECRET=client_secret))
        assert run.returncode == 0, f"usage snippet failed ({run.returncode}): {run.stderr}"
        created, read_back, page = parse_json_stream(run.stdout)
        assert created["name"] == "warehouse" and created["type"] == "postgres", created
        assert "password" not in created["details"] and created["secrets"]["password"]["isSet"]
        assert read_back == created, (read_back, created)
        assert [e["connectionId"] for e in page["entries"]] == [created["connectionId"]], page
        assert page["total"] == 1

        pid = served.server_pid()
        os.kill(pid, signal.SIGTERM)
        assert served.proc.wait(20) == 0, "connreg serve did not exit 0 on SIGTERM:\n" + served.tail()
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            subprocess.run(["pkill", "-KILL", "-f", f"{checkout}/build/connreg"], check=False)
    assert any('"event":"stopped"' in line for line in served.lines), served.tail()


def test_readme_operator_cli_lines_run_in_order(checkout):
    binary = checkout / "build" / "connreg"
    if not binary.exists():
        pytest.fail("the first command's test did not build ./build/connreg")
    ids: dict[str, str] = {}
    placeholders = {"ORG": "organizationId", "MEMBER": "memberId", "CLIENT": "clientId",
                    "TEAM": "teamId"}
    lines = [l.split("#", 1)[0].strip() for l in block_under("Operator CLI").splitlines()]
    lines = [l for l in lines if l]
    assert lines and all(l.startswith("connreg ") for l in lines), lines
    for line in lines:
        words = line.split()[1:]
        for i, w in enumerate(words):
            if w in placeholders:
                assert placeholders[w] in ids, f"'{line}' uses {w} before a line printed it"
                words[i] = ids[placeholders[w]]
        run = subprocess.run([str(binary), *words], cwd=checkout, capture_output=True, text=True,
                             timeout=120, env=user_env())
        assert run.returncode == 0, f"'{line}' failed ({run.returncode}): {run.stderr}"
        out = [json.loads(l) for l in run.stdout.splitlines() if l.startswith("{")]
        for obj in out:
            ids.update({k: v for k, v in obj.items() if isinstance(v, str)})
    assert set(placeholders.values()) <= set(ids), ids
