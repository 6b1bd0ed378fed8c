"""Shared fixtures and helpers of the end-to-end suite (tests/e2e, pytest, /usr/bin/python3).

Every test talks to the real `connreg` binary ($CONNREG_BIN, default build/connreg), started on
127.0.0.1:0 with a fresh SQLite store in its own temporary directory. The contract is
$CONNREG_SHARED/spec/contract.md; response bodies are validated against the schemas of Sigma's
OpenAPI document ($CONNREG_SHARED/reference/sigma-openapi.json, its oneOfs read as anyOfs:
sigma_reference.py) and against the stricter rules of the contract (sections 3 and 12), see
`check_connection` and `check_member`.

What lives here:
- `Server`: start/stop one `connreg serve`, read its log lines, run the operator CLI on its store.
- `Api`: a requests.Session with a bearer token; every response it receives is checked for the
  rules that hold everywhere (X-Request-Id present, no secret field, no registered secret value).
- `Schemas`: the Sigma response schemas by operationId and status, $refs resolved.
- raw-socket helpers for the protocol tests (`raw_exchange`, `read_http_response`).
- body builders: `valid_details(type)`, `conn_body(...)`.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable

import jsonschema
import pytest
import requests

import sigma_reference

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

BIN = os.environ.get("CONNREG_BIN") or str(REPO / "build" / "connreg")
SHARED = Path(os.environ.get("CONNREG_SHARED") or "/work/shared")

TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SANE_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

ALWAYS_PRESENT = ("organizationId", "connectionId", "isSample", "isAuditLog", "lastActiveAt",
                  "name", "type", "useOauth", "createdBy", "updatedBy", "createdAt", "updatedAt",
                  "isArchived")
# What the suite knows of the warehouse types comes from docs/openapi.json, the document the
# server serves, which a unit test (probe_registry_test.cc) holds to the server's registry of
# driver families: the types in the contract's order (the `details` discriminator), each one's
# details schema with a valid example, and the secret fields (contract section 4, marked *), which
# stored details never show.
_SCHEMAS = json.loads((REPO / "docs" / "openapi.json").read_text())["components"]["schemas"]
_DETAILS_SCHEMA = {t: _SCHEMAS[ref.rsplit("/", 1)[1]]
                   for t, ref in _SCHEMAS["ConnectionDetails"]["discriminator"]["mapping"].items()}
TYPES = tuple(_DETAILS_SCHEMA)
SECRET_FIELDS = frozenset(_SCHEMAS["Connection"]["properties"]["details"]["propertyNames"]["not"]["enum"])

START_TIMEOUT = 15.0
STOP_TIMEOUT = 12.0
HTTP_TIMEOUT = 30.0

_ALL_SERVERS: list["Server"] = []

# The store backend every server of the suite runs on: "sqlite" (default) or "postgres"
# (CONNREG_E2E_BACKEND=postgres: one throwaway PostgreSQL server, a fresh database per server).
# Tests marked `sqlite_only` read the SQLite files themselves; they are deselected on PostgreSQL.
BACKEND = os.environ.get("CONNREG_E2E_BACKEND", "sqlite")
_PG = None


def postgres_server():
    global _PG
    if _PG is None:
        from pg_support import PgServer
        _PG = PgServer().start()
    return _PG


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: reads the SQLite store files directly")


def pytest_collection_modifyitems(config, items):
    if BACKEND != "postgres":
        return
    keep, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("sqlite_only") else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


# --------------------------------------------------------------------------------------------
# The server process


class Server:
    """One `connreg serve` on 127.0.0.1:0 with its store in a fresh temporary directory.

    Stdout and stderr are drained by background threads for the whole life of the process (so
    the pipes never fill); `lines` holds every line printed so far, `log_events()` the JSON ones.
    """

    def __init__(self, *extra_args: str, env: dict[str, str] | None = None, tmpdir: Path | None = None,
                 database: str | None = None, preexec_fn=None):
        self.own_tmp = tmpdir is None
        self.tmp = Path(tmpdir) if tmpdir else Path(tempfile.mkdtemp(prefix="connreg-e2e-"))
        self.db_path = self.tmp / "connreg.db"
        self.database = f"sqlite:{self.db_path}"
        self.extra_args = list(extra_args)
        self.preexec_fn = preexec_fn  # run in the child before exec (resource limits)
        self.env = dict(os.environ)
        # The test environment must not leak a configuration into the server under test.
        for k in list(self.env):
            if k.startswith("CONNREG_") and k not in ("CONNREG_BIN", "CONNREG_SHARED"):
                del self.env[k]
        # The warehouses of these tests (fakes, the throwaway databases) listen on 127.0.0.1, and
        # loopback is denied by default (contract section 7): every server of the suite allows
        # it, unless a test passes env={"CONNREG_EGRESS_ALLOW_LOOPBACK": "false"} (or "").
        self.env["CONNREG_EGRESS_ALLOW_LOOPBACK"] = "true"
        if BACKEND == "postgres":
            # One fresh database per server directory (kept across restarts on the same
            # directory), and a master key from the environment, as PostgreSQL deployments do.
            url_file, key_file = self.tmp / "database.url", self.tmp / "master.key.b64"
            if not url_file.exists():
                url_file.write_text(postgres_server().new_database())
                key_file.write_text(base64.b64encode(os.urandom(32)).decode())
            self.database = url_file.read_text()
            self.env["CONNREG_MASTER_KEY"] = key_file.read_text()
        if database is not None:
            self.database = database
        self.env.update(env or {})
        self.lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._lines_lock = threading.Lock()
        self._listening = threading.Event()
        self._stdout_flowing = threading.Event()  # cleared: stdout is not read (pause_stdout)
        self._stdout_flowing.set()
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.base_url = ""
        self.returncode: int | None = None
        self._bootstrap: dict | None = None
        self._api: Api | None = None

    # -- lifecycle

    def start(self) -> "Server":
        assert Path(BIN).exists(), f"connreg binary not found at {BIN} (set CONNREG_BIN)"
        cmd = [BIN, "serve", "--database", self.database, "--listen", "127.0.0.1:0", *self.extra_args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, cwd=self.tmp, env=self.env,
                                     preexec_fn=self.preexec_fn)
        _ALL_SERVERS.append(self)
        threading.Thread(target=self._drain, args=(self.proc.stdout, self.lines, True), daemon=True).start()
        threading.Thread(target=self._drain, args=(self.proc.stderr, self.stderr_lines, False), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None:
                time.sleep(0.1)
                raise AssertionError(f"connreg exited with {self.proc.returncode} before listening:\n"
                                     + self.output_tail())
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("connreg did not log a listening event within "
                                     f"{START_TIMEOUT}s:\n" + self.output_tail())
        self.base_url = f"http://127.0.0.1:{self.port}"
        return self

    def _drain(self, stream, sink: list[str], is_stdout: bool) -> None:
        for raw in iter(stream.readline, b""):
            if is_stdout:
                self._stdout_flowing.wait()
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lines_lock:
                sink.append(line)
            if is_stdout and self.port is None and '"listening"' in line:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("event") == "listening" and isinstance(ev.get("port"), int):
                    self.port = ev["port"]
                    self._listening.set()
        stream.close()

    def pause_stdout(self) -> None:
        """Stops reading the server's stdout (after at most one more line): the pipe fills up, as
        with a log shipper that stalls."""
        self._stdout_flowing.clear()

    def resume_stdout(self) -> None:
        self._stdout_flowing.set()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait; returns the exit status (killing the process if it does not exit)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"connreg did not exit within {timeout}s of SIGTERM")
        self.returncode = self.proc.returncode
        return self.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    # -- logs

    def output(self) -> str:
        with self._lines_lock:
            return "\n".join(self.lines + self.stderr_lines)

    def output_tail(self, n: int = 40) -> str:
        with self._lines_lock:
            return "\n".join((self.lines + ["--- stderr ---"] + self.stderr_lines)[-n:])

    def log_events(self) -> list[dict]:
        out = []
        with self._lines_lock:
            lines = list(self.lines)
        for line in lines:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if isinstance(ev, dict):
                out.append(ev)
        return out

    def wait_for_log(self, predicate, timeout: float = 5.0) -> dict | None:
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.log_events():
                if predicate(ev):
                    return ev
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    # -- store and CLI

    @property
    def bootstrap_path(self) -> Path:
        return self.tmp / "bootstrap-credentials.json"

    @property
    def bootstrap(self) -> dict:
        if self._bootstrap is None:
            self._bootstrap = json.loads(self.bootstrap_path.read_text())
        return self._bootstrap

    def cli(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        r = subprocess.run([BIN, *args, "--database", self.database], capture_output=True, text=True,
                           cwd=self.tmp, env=self.env, timeout=timeout)
        if check:
            assert r.returncode == 0, f"connreg {' '.join(args)} failed ({r.returncode}): {r.stderr}"
        return r

    def cli_json(self, *args: str) -> dict:
        r = self.cli(*args)
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        assert len(lines) == 1, f"expected one JSON line from connreg {' '.join(args)}, got {r.stdout!r}"
        return json.loads(lines[0])

    def new_org_admin(self, org_name: str | None = None, account_type: str = "admin") -> "Api":
        """A new organization with one member and one API client, made with the CLI."""
        org = self.cli_json("org", "create", "--name", org_name or f"org-{uuid.uuid4().hex[:8]}")
        return self.new_member_client(org["organizationId"], account_type)

    def new_member_client(self, org_id: str, account_type: str = "admin") -> "Api":
        member = self.cli_json("member", "create", "--org", org_id,
                               "--email", f"{uuid.uuid4().hex[:10]}@example.com",
                               "--account-type", account_type)
        assert member["organizationId"] == org_id and member["accountType"] == account_type, member
        client = self.cli_json("client", "create", "--member", member["memberId"])
        assert client["memberId"] == member["memberId"], client
        api = Api(self, client["clientId"], client["clientSecret"])
        api.organization_id = org_id
        api.member_id = member["memberId"]
        return api

    def api(self) -> "Api":
        """The bootstrap admin client of the first organization (one shared instance)."""
        if self._api is None:
            b = self.bootstrap
            self._api = Api(self, b["clientId"], b["clientSecret"])
            self._api.organization_id = b["organizationId"]
            self._api.member_id = b["memberId"]
        return self._api

    def url(self, path: str) -> str:
        return self.base_url + path


def start_server(*extra_args: str, **kw) -> Server:
    return Server(*extra_args, **kw).start()


def stop_and_check(srv: Server) -> None:
    rc = srv.stop()
    assert rc == 0, f"connreg exited with {rc} after SIGTERM:\n{srv.output_tail()}"


# --------------------------------------------------------------------------------------------
# Response checks that hold for every response


def walk_json(node: Any, path: str = "$"):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk_json(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk_json(v, f"{path}[{i}]")


def assert_no_secret_fields(body: Any, where: str = "") -> None:
    """No field named like a warehouse secret, except under the `secrets` extension (which holds
    only {isSet, updatedAt}) and in the token endpoint's own response."""

    def visit(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "secrets" and isinstance(v, dict):
                    for name, meta in v.items():
                        assert isinstance(meta, dict) and set(meta) <= {"isSet", "updatedAt"}, \
                            f"{where}: secrets.{name} carries more than isSet/updatedAt: {meta!r}"
                    continue
                assert k not in SECRET_FIELDS, f"{where}: secret field {path}.{k} in a response"
                visit(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                visit(v, f"{path}[{i}]")

    visit(body, "$")


def check_timestamp(value: Any, what: str) -> None:
    assert isinstance(value, str) and TIMESTAMP_RE.match(value), \
        f"{what} is not RFC 3339 UTC with milliseconds: {value!r}"


def check_connection(obj: Any, *, organization_id: str | None = None) -> dict:
    """The contract's stricter rules for a connection object (section 3)."""
    assert isinstance(obj, dict), obj
    missing = [f for f in ALWAYS_PRESENT if f not in obj]
    assert not missing, f"connection lacks always-present fields {missing}: {obj}"
    assert isinstance(obj["connectionId"], str) and UUID4_RE.match(obj["connectionId"]), \
        f"connectionId is not a lowercase UUID v4: {obj['connectionId']!r}"
    for f in ("organizationId", "name", "type", "createdBy", "updatedBy"):
        assert isinstance(obj[f], str) and obj[f], f"{f} is not a non-empty string: {obj[f]!r}"
    for f in ("isSample", "isAuditLog", "useOauth", "isArchived"):
        assert isinstance(obj[f], bool), f"{f} is not a boolean: {obj[f]!r}"
    assert obj["isAuditLog"] is False, obj
    for f in ("createdAt", "updatedAt", "lastActiveAt"):
        check_timestamp(obj[f], f)
    assert obj["updatedAt"] >= obj["createdAt"], obj
    if "version" in obj:
        assert isinstance(obj["version"], int) and not isinstance(obj["version"], bool) and obj["version"] >= 1, obj
    if "timeout" in obj:
        assert isinstance(obj["timeout"], dict) and isinstance(obj["timeout"].get("default"), int), obj
    if "details" in obj:
        assert isinstance(obj["details"], dict), obj
        assert obj["details"].get("type") == obj["type"], f"type {obj['type']} != details.type: {obj}"
        for k in obj["details"]:
            assert k not in SECRET_FIELDS, f"details carries the secret field {k}: {obj['details']}"
    if "secrets" in obj:
        assert isinstance(obj["secrets"], dict), obj
        for name, meta in obj["secrets"].items():
            assert name in SECRET_FIELDS, f"secrets lists a non-secret field {name}"
            assert meta.get("isSet") is True, obj["secrets"]
            if "updatedAt" in meta:
                check_timestamp(meta["updatedAt"], f"secrets.{name}.updatedAt")
    if "lastTest" in obj:
        lt = obj["lastTest"]
        check_timestamp(lt.get("at"), "lastTest.at")
        assert lt.get("read") in ("SUCCESS", "FAILED"), lt
        assert lt.get("write") in ("SUCCESS", "FAILED", "DISABLED"), lt
    if organization_id is not None:
        assert obj["organizationId"] == organization_id, obj
    assert_no_secret_fields(obj, "connection")
    return obj


def etag_value(resp: requests.Response) -> str:
    tag = resp.headers.get("ETag")
    assert tag, f"no ETag header on {resp.request.method} {resp.request.path_url}"
    if tag.startswith("W/"):
        tag = tag[2:]
    return tag.strip('"')


# --------------------------------------------------------------------------------------------
# Sigma's OpenAPI schemas


class Schemas:
    """Response schemas of Sigma's OpenAPI document, internal $refs resolved."""

    def __init__(self):
        self.doc = sigma_reference.sigma_document()
        self.ops: dict[str, dict] = {}
        for p, item in self.doc["paths"].items():
            for method, op in item.items():
                if isinstance(op, dict) and "operationId" in op:
                    self.ops[op["operationId"]] = op
        self._validators: dict[tuple[str, str], jsonschema.Draft202012Validator] = {}
        # (method, path pattern, operationId) of every operation, to find a request's operation.
        self._routes = [(method.upper(), re.compile("^" + re.sub(r"\{[^/}]+\}", "[^/]+", p) + "$"),
                         op["operationId"])
                        for p, item in self.doc["paths"].items() for method, op in item.items()
                        if isinstance(op, dict) and "operationId" in op]

    def operation_at(self, method: str, path: str) -> str | None:
        """The operationId of Sigma's operation serving `method` on `path` (no query string)."""
        return next((op for m, pattern, op in self._routes if m == method and pattern.match(path)), None)

    def _pointer(self, ref: str) -> Any:
        assert ref.startswith("#/"), f"external $ref not supported: {ref}"
        node: Any = self.doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def resolve(self, node: Any, seen: tuple[str, ...] = ()) -> Any:
        if isinstance(node, dict):
            if "$ref" in node and isinstance(node["$ref"], str):
                ref = node["$ref"]
                assert ref not in seen, f"recursive $ref {ref}"
                target = self.resolve(copy.deepcopy(self._pointer(ref)), seen + (ref,))
                rest = {k: self.resolve(v, seen) for k, v in node.items() if k != "$ref"}
                if rest and isinstance(target, dict):
                    return {**target, **rest}
                return target
            return {k: self.resolve(v, seen) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v, seen) for v in node]
        return node

    def response_schema(self, op_id: str, status: int | str) -> dict:
        op = self.ops[op_id]
        responses = op["responses"]
        resp = responses.get(str(status))
        if resp is None:
            resp = responses["default"]
        resp = self.resolve(resp)
        return resp["content"]["application/json"]["schema"]

    def error_schema(self) -> dict:
        return self.resolve(self.doc["components"]["responses"]["ApiError"])["content"]["application/json"]["schema"]

    def validator(self, op_id: str, status: int | str) -> jsonschema.Draft202012Validator:
        key = (op_id, str(status))
        if key not in self._validators:
            schema = self.error_schema() if op_id == "ApiError" else self.response_schema(op_id, status)
            jsonschema.Draft202012Validator.check_schema(schema)
            self._validators[key] = jsonschema.Draft202012Validator(schema)
        return self._validators[key]

    def validate(self, op_id: str, status: int | str, body: Any) -> None:
        errors = sorted(self.validator(op_id, status).iter_errors(body), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            raise AssertionError(f"{op_id} {status} body does not match Sigma's schema at "
                                 f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}\nbody: "
                                 f"{json.dumps(body)[:2000]}")


_SCHEMAS: Schemas | None = None


def schemas() -> Schemas:
    global _SCHEMAS
    if _SCHEMAS is None:
        _SCHEMAS = Schemas()
    return _SCHEMAS


# The routes of contract section 12, whose every success the suite checks against Sigma's schema
# of its operation, whichever test made the request.
SECTION_12_PREFIXES = ("/v2/members", "/v2/teams", "/v2/whoami")


def check_section_12_success(resp: requests.Response, body: Any) -> None:
    path = resp.request.path_url.split("?", 1)[0]
    if not 200 <= resp.status_code < 300 or not path.startswith(SECTION_12_PREFIXES):
        return
    op = schemas().operation_at(resp.request.method, path)
    assert op is not None, f"{resp.request.method} {path}: no operation of Sigma's document"
    schemas().validate(op, resp.status_code, body)


# The server's number rule (issue 17, core/json_write.h): a number the server makes, such as a
# duration, reads as people write it ("1.07", "0"), never Boost's "1.065807E0": at most two
# decimals, no exponent, no trailing zeros. Checks every durationMs in a body's raw text and
# returns their texts.
SERVER_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]?[1-9])?")


def check_durations_text(text: str) -> list[str]:
    durations = re.findall(r'"durationMs":([^,}\]]*)', text)
    assert durations, text
    for d in durations:
        assert SERVER_NUMBER.fullmatch(d), f"durationMs is {d!r}, not as people write numbers"
    return durations


def check_error(resp: requests.Response, status: int, code: str | None = None) -> dict:
    """An error response: the status, a JSON body {code, message, requestId} matching the
    ApiError schema, and the requestId equal to the X-Request-Id header (contract 9, 10)."""
    assert resp.status_code == status, \
        f"expected {status}, got {resp.status_code}: {resp.text[:500]}"
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), f"error without a JSON content type: {ctype!r}"
    body = resp.json()
    schemas().validate("ApiError", "default", body)
    for f in ("code", "message", "requestId"):
        assert isinstance(body.get(f), str) and body[f], f"error body lacks {f}: {body}"
    if code is not None:
        assert body["code"] == code, f"expected code {code!r}, got {body}"
    assert body["requestId"] == resp.headers.get("X-Request-Id"), \
        f"requestId {body['requestId']!r} != X-Request-Id {resp.headers.get('X-Request-Id')!r}"
    return body


# --------------------------------------------------------------------------------------------
# The API client


class Api:
    """An API client of one member: gets a token once and sends Bearer requests."""

    def __init__(self, server: Server, client_id: str, client_secret: str):
        self.server = server
        self.client_id = client_id
        self.client_secret = client_secret
        self.session = requests.Session()
        self._token: str | None = None
        self.organization_id: str | None = None
        self.member_id: str | None = None
        # Values that must never appear in a response (secrets this client sent).
        self.secret_values: set[str] = set()

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def fetch_token(self) -> dict:
        r = self.session.post(self.base_url + "/v2/auth/token", timeout=HTTP_TIMEOUT,
                              data={"grant_type": "client_credentials", "client_id": self.client_id,
                                    "client_secret": self.client_secret})
        assert r.status_code == 200, f"token request failed: {r.status_code} {r.text}"
        return r.json()

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = self.fetch_token()["access_token"]
        return self._token

    def request(self, method: str, path: str, *, json_body: Any = None, data: bytes | str | None = None,
                headers: dict | None = None, params: Any = None, auth: bool = True,
                content_type: str | None = "application/json", timeout: float = HTTP_TIMEOUT,
                session: requests.Session | None = None) -> requests.Response:
        h = {}
        if auth:
            h["Authorization"] = f"Bearer {self.token}"
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
        elif data is not None:
            body = data.encode() if isinstance(data, str) else data
        if body is not None and content_type:
            h["Content-Type"] = content_type
        h.update(headers or {})
        s = session or self.session
        r = s.request(method, self.base_url + path, data=body, headers=h, params=params, timeout=timeout)
        self._check_any(r)
        return r

    def _check_any(self, r: requests.Response) -> None:
        where = f"{r.request.method} {r.request.path_url} -> {r.status_code}"
        assert r.headers.get("X-Request-Id"), f"{where}: no X-Request-Id header"
        assert r.status_code < 500 or r.status_code == 503, f"{where}: server error {r.text[:500]}"
        text = r.text
        for v in self.secret_values:
            assert v not in text, f"{where}: a secret value appears in the response body"
            for hk, hv in r.headers.items():
                assert v not in hv, f"{where}: a secret value appears in the header {hk}"
        if r.content and r.headers.get("Content-Type", "").startswith("application/json"):
            try:
                body = r.json()
            except ValueError:
                raise AssertionError(f"{where}: Content-Type is JSON but the body is not: {text[:300]}")
            if not r.request.path_url.startswith("/v2/auth/"):
                assert_no_secret_fields(body, where)
            check_section_12_success(r, body)
        if r.status_code == 304:
            assert not r.content, f"{where}: a 304 with a body"

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw) -> requests.Response:
        return self.request("POST", path, json_body=body, **kw)

    def put(self, path: str, body: Any = None, **kw) -> requests.Response:
        return self.request("PUT", path, json_body=body, **kw)

    def patch(self, path: str, body: Any = None, **kw) -> requests.Response:
        return self.request("PATCH", path, json_body=body, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.request("DELETE", path, **kw)

    # -- conveniences that assert success and validate

    def create(self, body: dict | None = None, **kw) -> dict:
        body = body if body is not None else conn_body()
        self._remember_secrets(body)
        r = self.post("/v2/connections", body, **kw)
        assert r.status_code == 201, f"create failed: {r.status_code} {r.text[:500]}"
        obj = r.json()
        schemas().validate("createConnection", 201, obj)
        return check_connection(obj, organization_id=self.organization_id)

    def get_conn(self, cid: str) -> dict:
        r = self.get(f"/v2/connections/{cid}")
        assert r.status_code == 200, f"get failed: {r.status_code} {r.text[:500]}"
        obj = r.json()
        schemas().validate("getConnection", 200, obj)
        return check_connection(obj, organization_id=self.organization_id)

    def list(self, **params) -> dict:
        r = self.get("/v2/connections", params=params)
        assert r.status_code == 200, f"list failed: {r.status_code} {r.text[:500]}"
        page = r.json()
        check_page(page)
        return page

    def list_all(self, limit: int = 1000, **params) -> list[dict]:
        out: list[dict] = []
        page_token = None
        while True:
            q = dict(params, limit=limit)
            if page_token is not None:
                q["page"] = page_token
            page = self.list(**q)
            out.extend(page["entries"])
            if not page["hasMore"]:
                return out
            page_token = page["nextPage"]

    def _remember_secrets(self, body: Any) -> None:
        for path, node in walk_json(body):
            key = path.rsplit(".", 1)[-1]
            if key in SECRET_FIELDS:
                val = node.get("value") if isinstance(node, dict) else node
                if isinstance(val, str) and len(val) >= 8:
                    self.secret_values.add(val)


def check_page(page: Any) -> dict:
    schemas().validate("listConnections", 200, page)
    assert set(page) >= {"entries", "nextPage", "hasMore", "total"}, page.keys()
    assert isinstance(page["entries"], list)
    assert isinstance(page["hasMore"], bool)
    assert isinstance(page["total"], int) and not isinstance(page["total"], bool)
    assert (page["nextPage"] is None) == (not page["hasMore"]), \
        f"nextPage {page['nextPage']!r} disagrees with hasMore {page['hasMore']}"
    if page["nextPage"] is not None:
        assert isinstance(page["nextPage"], str) and page["nextPage"]
    for e in page["entries"]:
        check_connection(e)
    return page


# --------------------------------------------------------------------------------------------
# Members and teams (contract section 12)

ACCOUNT_TYPES = ("admin", "creator", "explorer", "viewer")


def expect_ok(resp: requests.Response, op_id: str, status: int = 200) -> Any:
    """A success of Sigma's operation `op_id`: the status, and a body valid against Sigma's
    schema of it."""
    assert resp.status_code == status, \
        f"{resp.request.method} {resp.request.path_url}: expected {status}, got {resp.status_code}: {resp.text[:500]}"
    body = resp.json()
    schemas().validate(op_id, status, body)
    return body


def probe_db_env() -> dict[str, str]:
    """The ports and passwords of the throwaway PostgreSQL and MariaDB servers that
    scripts/test-databases.sh started (ctest's test_databases fixture), from the file
    $CONNREG_TEST_DB_ENV names."""
    path = os.environ.get("CONNREG_TEST_DB_ENV")
    assert path and os.path.exists(path), \
        "CONNREG_TEST_DB_ENV names no file: run through ctest (the test_databases fixture)"
    out = {}
    for line in open(path):
        k, _, v = line.strip().removeprefix("export ").partition("=")
        out[k] = v
    return out


def walk_pages(api: "Api", path: str, op_id: str, limit: int, **params) -> tuple[list[dict], set[int]]:
    """Every entry of a listing (contract section 6), page by page, each page valid against
    Sigma's schema of `op_id`; and the `total`s seen."""
    out, totals, page = [], set(), None
    for _ in range(1000):
        q = dict(params, limit=limit)
        if page is not None:
            q["page"] = page
        body = expect_ok(api.get(path, params=q), op_id)
        assert set(body) == {"entries", "nextPage", "hasMore", "total"}, body
        assert (body["nextPage"] is None) == (not body["hasMore"]), body
        assert len(body["entries"]) <= limit
        out += body["entries"]
        totals.add(body["total"])
        if not body["hasMore"]:
            return out, totals
        page = body["nextPage"]
    raise AssertionError("the walk did not end")


def check_member(obj: Any, *, organization_id: str | None = None) -> dict:
    """The member object of contract section 12, beyond Sigma's schema."""
    assert isinstance(obj, dict), obj
    assert set(obj) == {"organizationId", "memberId", "memberType", "firstName", "lastName", "email",
                        "profileImgUrl", "createdBy", "updatedBy", "createdAt", "updatedAt",
                        "homeFolderId", "userKind", "isArchived", "isInactive"}, sorted(obj)
    assert obj["memberType"] in ACCOUNT_TYPES, obj
    assert obj["profileImgUrl"] is None and obj["userKind"] == "internal", obj
    assert isinstance(obj["isArchived"], bool) and isinstance(obj["isInactive"], bool), obj
    for f in ("memberId", "firstName", "email", "createdBy", "updatedBy", "homeFolderId"):
        assert isinstance(obj[f], str) and obj[f], f"{f}: {obj}"
    for f in ("createdAt", "updatedAt"):
        check_timestamp(obj[f], f)
    assert obj["updatedAt"] >= obj["createdAt"], obj
    if organization_id is not None:
        assert obj["organizationId"] == organization_id, obj
    return obj


def check_team(obj: Any, *, with_members: bool) -> dict:
    """The team object of contract section 12; `members` on single-team responses only."""
    assert isinstance(obj, dict), obj
    keys = {"teamId", "name", "description", "visibility", "isArchived", "workspaceId", "createdBy",
            "updatedBy", "createdAt", "updatedAt"}
    assert set(obj) == keys | ({"members"} if with_members else set()), sorted(obj)
    assert obj["visibility"] in ("public", "private") and obj["workspaceId"] is None, obj
    assert obj["description"] is None or isinstance(obj["description"], str), obj
    for f in ("createdAt", "updatedAt"):
        check_timestamp(obj[f], f)
    if with_members:
        assert obj["members"] == sorted(obj["members"]), obj
    return obj


# --------------------------------------------------------------------------------------------
# Request bodies


def uniq(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def fill_secrets(details: dict, make: Callable[[str], str]) -> dict:
    """Gives each secret field of `details` that holds a string the value make(old value); a
    secret that holds a JSON key (a service account) stays a key, with make(its private_key_id)."""
    for field, value in details.items():
        if field not in SECRET_FIELDS or not isinstance(value, str):
            continue
        try:
            key = json.loads(value)
        except ValueError:
            key = None
        if isinstance(key, dict):
            details[field] = json.dumps({**key, "private_key_id": make(str(key.get("private_key_id")))})
        else:
            details[field] = make(value)
    return details


def valid_details(kind: str, **extra) -> dict:
    """A minimal valid `details` of a warehouse type: the example of its schema, each secret value
    with a suffix of its own (so a leak names its test)."""
    d: dict[str, Any] = copy.deepcopy(_DETAILS_SCHEMA[kind]["examples"][0])
    d["type"] = kind
    fill_secrets(d, lambda example: f"{example}-{uuid.uuid4().hex}")
    d.update(extra)
    return d


def conn_body(kind: str = "postgres", name: str | None = None, **top) -> dict:
    body = {"name": name or uniq("conn"), "details": valid_details(kind)}
    body.update(top)
    return body


# --------------------------------------------------------------------------------------------
# Raw sockets


def connect(server: Server, timeout: float = 10.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class HttpResponse:
    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes):
        self.status = status
        self.reason = reason
        self.header_list = headers
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<HttpResponse {self.status} {self.headers} {self.body[:200]!r}>"


class SocketReader:
    """Buffered reading of HTTP/1.1 responses from one socket."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0):
        self.sock = sock
        self.buf = b""
        self.timeout = timeout
        self.eof = False

    def _fill(self, deadline: float) -> bool:
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no complete response in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_response(self, head_request: bool = False) -> HttpResponse | None:
        """The next response, or None when the server closed the connection before one."""
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                if self.buf:
                    raise AssertionError(f"connection closed inside a response head: {self.buf[:300]!r}")
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3}) ?(.*)", lines[0])
        assert m, f"not an HTTP status line: {lines[0]!r}"
        status = int(m.group(1))
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
        hmap = {k.lower(): v for k, v in headers}
        body = b""
        if head_request or status in (204, 304) or 100 <= status < 200:
            pass
        elif "chunked" in hmap.get("transfer-encoding", "").lower():
            while True:
                while b"\r\n" not in self.buf:
                    if not self._fill(deadline):
                        raise AssertionError("connection closed inside a chunked body")
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    if not self._fill(deadline):
                        raise AssertionError("connection closed inside a chunk")
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
        elif "content-length" in hmap:
            n = int(hmap["content-length"])
            while len(self.buf) < n:
                if not self._fill(deadline):
                    raise AssertionError("connection closed inside a body")
            body, self.buf = self.buf[:n], self.buf[n:]
        else:
            while self._fill(deadline):
                pass
            body, self.buf = self.buf, b""
        return HttpResponse(status, m.group(2), headers, body)

    def closed_within(self, seconds: float) -> bool:
        """True when the peer closes the connection within `seconds` (reading and discarding)."""
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                if not self._fill(deadline):
                    return True
        except (TimeoutError, socket.timeout):
            return False
        except OSError:
            return True
        return self.eof


def raw_exchange(server: Server, data: bytes, n_responses: int = 1, timeout: float = 10.0) -> tuple[list[HttpResponse], SocketReader]:
    s = connect(server, timeout)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    rd = SocketReader(s, timeout)
    out = []
    for _ in range(n_responses):
        r = rd.read_response()
        if r is None:
            break
        out.append(r)
    return out, rd


def send_until_response(sock: socket.socket, data: bytes, chunk: int = 65536) -> None:
    """Send `data`, stopping early (without error) once the server answers or closes."""
    view = memoryview(data)
    sock.setblocking(True)
    while view:
        r, _, _ = select.select([sock], [], [], 0)
        if r:
            return
        try:
            n = sock.send(view[:chunk])
        except (BrokenPipeError, ConnectionResetError):
            return
        view = view[n:]


def healthy(server: Server) -> bool:
    try:
        r = requests.get(server.url("/healthz"), timeout=5)
        return r.status_code == 200
    except requests.RequestException:
        return False


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session", autouse=True)
def _reap_servers(request):
    """Kills any server a test left running; removes the temporary stores this module made
    (kept when CONNREG_E2E_KEEP is set or a test failed, for a post-mortem)."""
    yield
    for s in _ALL_SERVERS:
        s.kill()
    failed = request.session.testsfailed > 0
    if not failed and not os.environ.get("CONNREG_E2E_KEEP"):
        for s in _ALL_SERVERS:
            if s.own_tmp:
                shutil.rmtree(s.tmp, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _stop_postgres():
    yield
    if _PG is not None:
        _PG.destroy()


@pytest.fixture(scope="session")
def sigma_schemas() -> Schemas:
    return schemas()


@pytest.fixture(scope="module")
def server():
    srv = start_server()
    yield srv
    stop_and_check(srv)


@pytest.fixture
def fresh_server():
    srv = start_server()
    yield srv
    stop_and_check(srv)


@pytest.fixture(scope="module")
def api(server) -> Api:
    return server.api()


@pytest.fixture(scope="module")
def other_api(server) -> Api:
    """The admin of a second organization, made with the CLI while the server runs."""
    return server.new_org_admin("Second Org")
