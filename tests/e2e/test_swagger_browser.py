"""Swagger UI at /docs in a real headless Chromium (tests/browser/swagger.test.mjs, run with node):
authorize through the OAuth2 client-credentials dialog, "Try it out" on POST /v2/connections,
GET /v2/connections and GET /v2/whoami, and see 201, 200 and 200 on the page. Leaves a screenshot in
$CONNREG_TEST_ARTIFACTS (default build/test-artifacts)/swagger.png.

Needs /usr/bin/chromium (Debian) and node_modules/playwright-core: scripts/install-browser.sh
installs both and is run here when one is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import openapi_support as s

SCRIPT = s.REPO / "tests" / "browser" / "swagger.test.mjs"


def _ensure_browser() -> None:
    have_chromium = Path("/usr/bin/chromium").exists()
    have_driver = (s.REPO / "node_modules" / "playwright-core" / "package.json").exists()
    if have_chromium and have_driver:
        return
    r = subprocess.run(["bash", str(s.REPO / "scripts" / "install-browser.sh")],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, "scripts/install-browser.sh failed:\n" + r.stdout[-2000:] + r.stderr[-2000:]


@pytest.fixture(scope="module")
def server():
    srv = s.ConnregServer()
    yield srv
    srv.stop()


def test_swagger_ui_authorize_and_try_it_out(server):
    if shutil.which("node") is None:
        pytest.fail("node is required (apt-get install nodejs npm)")
    _ensure_browser()
    artifacts = Path(os.environ.get("CONNREG_TEST_ARTIFACTS", s.REPO / "build" / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "swagger.png"
    if shot.exists():
        shot.unlink()
    env = dict(os.environ, CONNREG_BASE_URL=server.base_url,
               CONNREG_CLIENT_ID=server.creds["clientId"],
               CONNREG_CLIENT_SECRET=server.creds["clientSecret"], CONNREG_SCREENSHOT=str(shot))
    r = subprocess.run(["node", str(SCRIPT)], cwd=s.REPO, env=env, capture_output=True, text=True,
                       timeout=240)
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result from the browser script (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"
    result = json.loads(lines[-1])
    assert r.returncode == 0 and result["ok"], json.dumps(result, indent=1) + "\n" + r.stderr[-3000:]
    assert result["createStatus"] == "201" and result["listStatus"] == "200"
    assert result["whoamiStatus"] == "200"
    assert result["pathsStatus"] == "200"
    assert "connreg" in result["title"]

    # What the page did really happened: the connection exists, created by the bootstrap admin.
    listed = server.request("GET", "/v2/connections", params={"search": result["created"]}).json()
    assert listed["total"] == 1, listed
    entry = listed["entries"][0]
    assert entry["createdBy"] == server.creds["memberId"]
    assert entry["secrets"]["password"]["isSet"] is True
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "no screenshot"
