"""Testing a connection (contract section 7): saved, saved with a change, unsaved; the result shape,
egress policy, nothing saved by a test, lastTest, and no secret in any message.

No warehouse runs here, so a read never succeeds; the tests assert what must hold regardless.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from conftest import (SECRET_FIELDS, TYPES, check_connection, check_durations_text, check_error, conn_body,
                      schemas, valid_details)

C = "/v2/connections"
STEP_NAMES = {"resolve", "connect", "tls", "authenticate", "query", "write"}
CODES = {"dns_failure", "egress_denied", "connection_refused", "timeout", "tls_failure", "auth_failed",
         "permission_denied", "not_found", "protocol_error", "driver_unavailable"}


def check_result(r, secrets=()):
    assert r.status_code == 200, r.text
    check_durations_text(r.text)
    res = r.json()
    schemas().validate("testConnection", 200, res)
    assert res["read"] in ("SUCCESS", "FAILED") and res["write"] in ("SUCCESS", "FAILED", "DISABLED")
    if "durationMs" in res:
        assert isinstance(res["durationMs"], (int, float)) and res["durationMs"] >= 0
    if res["read"] == "FAILED":
        assert isinstance(res.get("readError"), str) and res["readError"], res
    for s in res.get("steps", []):
        assert s["name"] in STEP_NAMES and s["status"] in ("SUCCESS", "FAILED", "SKIPPED"), s
        assert isinstance(s["durationMs"], (int, float)) and s["durationMs"] >= 0
        if "code" in s:
            assert s["code"] in CODES, s
    for v in secrets:
        assert v not in r.text, "a secret appears in a test result"
    return res


def test_saved_test_without_write_access(api):
    created = api.create(conn_body("postgres", timeoutSecs=5))
    res = check_result(api.get(f"{C}/{created['connectionId']}/test", timeout=70), list(api.secret_values))
    assert res["write"] == "DISABLED", "write is DISABLED when writeAccess is not configured"
    after = api.get_conn(created["connectionId"])
    assert after["lastTest"]["read"] == res["read"] and after["lastTest"]["write"] == res["write"]
    assert after["lastTest"]["at"] >= created["createdAt"]
    if res["read"] == "FAILED":
        assert after["lastActiveAt"] == created["lastActiveAt"]


def test_saved_test_with_write_access(api):
    body = conn_body("postgres", timeoutSecs=5)
    body["details"]["writeAccess"] = {"writeSchema": "sigma_w"}
    created = api.create(body)
    res = check_result(api.post(f"{C}/{created['connectionId']}/test", timeout=70))
    assert res["write"] in ("SUCCESS", "FAILED")
    if res["read"] == "FAILED":
        assert res["write"] == "FAILED"


def test_post_test_with_change_saves_nothing(api):
    created = api.create(conn_body("postgres", timeoutSecs=5))
    cid = created["connectionId"]
    before = api.get_conn(cid)
    res = check_result(api.post(f"{C}/{cid}/test", {"details": {"host": "other.example.invalid",
                                                                 "password": "pw-given-again-1"}},
                                timeout=70))
    after = api.get_conn(cid)
    assert after["details"] == before["details"] and after["name"] == before["name"]
    assert after["version"] == before["version"], "a test must not change the connection's version"
    check_error(api.post(f"{C}/{cid}/test", {"details": {"hots": "x"}}), 400, "bad_request")
    check_error(api.post(f"{C}/{cid}/test", {"details": {"port": 0}}), 400, "bad_request")


def test_unsaved_config_test(api):
    total = api.list(limit=1, includeArchived="true")["total"]
    body = conn_body("mysql", timeoutSecs=5)
    api._remember_secrets(body)
    res = check_result(api.post(f"{C}/test", body, timeout=70), [body["details"]["password"]])
    assert res["write"] == "DISABLED"
    assert api.list(limit=1, includeArchived="true")["total"] == total, "an unsaved test saved something"
    bad = conn_body("mysql")
    bad["details"]["port"] = 70000
    err = check_error(api.post(f"{C}/test", bad), 400, "bad_request")
    assert "details.port" in err["message"]


@pytest.mark.parametrize("host", ["169.254.169.254", "0.0.0.1", "224.0.0.1", "fe80::1"])
def test_egress_denied(api, host):
    body = {"name": "egress", "timeoutSecs": 5,
            "details": {"type": "postgres", "host": host, "database": "d", "user": "u", "password": "pw-egress-1"}}
    res = check_result(api.post(f"{C}/test", body, timeout=70))
    assert res["read"] == "FAILED"
    steps = res.get("steps")
    assert steps, "no steps in a test result"
    resolve = [s for s in steps if s["name"] == "resolve"]
    assert resolve and resolve[0]["status"] == "FAILED" and resolve[0].get("code") == "egress_denied", \
        f"a denied address must fail the resolve step with egress_denied: {steps}"
    assert not any(s["name"] == "connect" and s["status"] == "SUCCESS" for s in steps)


def test_test_durations_read_as_people_write_numbers_not_1_065807E0(api):
    """Issue 17: a test result said "durationMs":1.065807E0 and "durationMs":0E0."""
    body = {"name": "numbers", "timeoutSecs": 5,
            "details": {"type": "postgres", "host": "169.254.169.254", "database": "d"}}
    r = api.post(f"{C}/test", body, timeout=70)
    durations = check_durations_text(r.text)
    assert len(durations) == 1 + len(r.json()["steps"]), r.text


def test_resolve_comes_first(api):
    body = {"name": "dns", "timeoutSecs": 5,
            "details": {"type": "postgres", "host": "no-such-host.invalid", "database": "d"}}
    res = check_result(api.post(f"{C}/test", body, timeout=70))
    assert res["read"] == "FAILED"
    steps = res.get("steps", [])
    assert steps and steps[0]["name"] == "resolve", f"every test resolves first: {steps}"
    assert steps[0]["status"] == "FAILED" and steps[0].get("code") == "dns_failure", steps


def test_test_of_unknown_is_404(api):
    check_error(api.get(f"{C}/{uuid.uuid4()}/test"), 404, "not_found")
    check_error(api.post(f"{C}/{uuid.uuid4()}/test"), 404, "not_found")


def test_test_of_archived_is_409(api):
    cid = api.create(conn_body())["connectionId"]
    api.delete(f"{C}/{cid}")
    check_error(api.get(f"{C}/{cid}/test"), 409, "conflict")
    check_error(api.post(f"{C}/{cid}/test"), 409, "conflict")


@pytest.mark.parametrize("kind", TYPES)
def test_every_type_answers_a_test(api, kind):
    body = conn_body(kind, timeoutSecs=3)
    api._remember_secrets(body)
    secrets = [v for k, v in body["details"].items() if k in SECRET_FIELDS]
    check_result(api.post(f"{C}/test", body, timeout=70), secrets)


# --------------------------------------------------------------------------------------------
# Against a fake PostgreSQL server (fake_postgres.py: cleartext password, so the test sees which
# secret the server sent).


import socket
import threading
import time

from fake_postgres import FakePostgres


@pytest.fixture
def pg_reject():
    f = FakePostgres(accept_login=False)
    yield f
    f.close()


@pytest.fixture
def pg_accept():
    f = FakePostgres(accept_login=True)
    yield f
    f.close()


def pg_body(port, password, **top):
    return dict({"name": "fake-pg", "timeoutSecs": 5,
                 "details": {"type": "postgres", "host": "127.0.0.1", "port": port, "database": "d",
                             "user": "u", "password": password}}, **top)


def test_stored_password_is_used_and_never_echoed(api, pg_reject):
    password = "PgSecret-" + uuid.uuid4().hex
    created = api.create(pg_body(pg_reject.port, password))
    r = api.get(f"{C}/{created['connectionId']}/test", timeout=70)
    res = check_result(r, [password])
    assert res["read"] == "FAILED"
    assert pg_reject.passwords == [password], \
        f"the warehouse did not receive the stored password (got {len(pg_reject.passwords)} logins)"
    auth = [s for s in res.get("steps", []) if s["name"] == "authenticate"]
    assert auth and auth[0]["status"] == "FAILED" and auth[0].get("code") == "auth_failed", res.get("steps")
    for s in res.get("steps", []):
        assert password not in json.dumps(s)
    after = api.get_conn(created["connectionId"])
    assert after["lastActiveAt"] == created["lastActiveAt"], "a failed login is not activity"


def test_successful_read_moves_last_active_at(api, pg_accept):
    password = "PgOk-" + uuid.uuid4().hex
    created = api.create(pg_body(pg_accept.port, password))
    time.sleep(0.01)
    res = check_result(api.get(f"{C}/{created['connectionId']}/test", timeout=70), [password])
    assert res["read"] == "SUCCESS", res
    assert res["write"] == "DISABLED"
    assert pg_accept.passwords == [password]
    assert any("select" in q.lower() for q in pg_accept.queries), pg_accept.queries
    after = api.get_conn(created["connectionId"])
    assert after["lastActiveAt"] > created["lastActiveAt"], "a successful read moves lastActiveAt"
    assert after["lastTest"]["read"] == "SUCCESS"
    assert after["updatedAt"] == created["updatedAt"], "a test is not an update"


def test_post_test_uses_stored_secret_with_a_change(api, pg_accept):
    password = "PgStored-" + uuid.uuid4().hex
    created = api.create(pg_body(pg_accept.port, password))
    res = check_result(api.post(f"{C}/{created['connectionId']}/test",
                                {"details": {"database": "other", "user": "v"}}, timeout=70))
    assert res["read"] == "SUCCESS", res
    assert pg_accept.passwords == [password], "the change was not tested with the stored secret"
    assert api.get_conn(created["connectionId"])["details"]["database"] == "d", "a test saved its change"


def test_post_test_with_another_endpoint_uses_only_the_secret_given_again(api, pg_accept):
    """Contract 4: a test body that moves the endpoint must bring the secrets (finding 2 of issue
    18 in test_attack_findings.py); the server then receives the given one, never the stored."""
    stored = "PgStored-" + uuid.uuid4().hex
    created = api.create(pg_body(1, stored))  # the stored port is wrong; the test body fixes it
    check_error(api.post(f"{C}/{created['connectionId']}/test", {"details": {"port": pg_accept.port}}),
                400, "bad_request")
    given = "PgGiven-" + uuid.uuid4().hex
    api.secret_values.add(given)
    res = check_result(api.post(f"{C}/{created['connectionId']}/test",
                                {"details": {"port": pg_accept.port, "password": given}}, timeout=70))
    assert res["read"] == "SUCCESS", res
    assert pg_accept.passwords == [given]
    assert api.get_conn(created["connectionId"])["details"]["port"] == 1, "a test saved its change"


def test_unsaved_test_uses_the_given_secret(api, pg_accept):
    password = {"type": "plain", "value": "PgUnsaved-" + uuid.uuid4().hex}
    api.secret_values.add(password["value"])
    total = api.list(limit=1, includeArchived="true")["total"]
    res = check_result(api.post(f"{C}/test", pg_body(pg_accept.port, password), timeout=70))
    assert res["read"] == "SUCCESS", res
    assert pg_accept.passwords == [password["value"]]
    assert api.list(limit=1, includeArchived="true")["total"] == total


def test_connection_refused(api):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    res = check_result(api.post(f"{C}/test", pg_body(port, "pw-refused-1"), timeout=70))
    assert res["read"] == "FAILED"
    connect = [st for st in res.get("steps", []) if st["name"] == "connect"]
    assert connect and connect[0]["status"] == "FAILED" and connect[0].get("code") == "connection_refused", \
        res.get("steps")


def test_deadline_is_timeout_secs(api):
    """A warehouse that accepts TCP and then says nothing: the test ends at timeoutSecs."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held = []
    stop = threading.Event()

    def hold():
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    try:
        t0 = time.monotonic()
        res = check_result(api.post(f"{C}/test", pg_body(silent.getsockname()[1], "pw-silent-1", timeoutSecs=2),
                                    timeout=70))
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        t.join(2)
        for c in held:
            c.close()
        silent.close()
    assert res["read"] == "FAILED"
    assert 1.5 <= elapsed <= 6, f"a test with timeoutSecs 2 took {elapsed:.1f}s"
    assert any(s.get("code") == "timeout" for s in res.get("steps", [])), res.get("steps")


def test_egress_deny_list_is_checked_before_connecting(tmp_path, pg_accept):
    from conftest import start_server, stop_and_check
    srv = start_server(tmpdir=tmp_path, env={"CONNREG_EGRESS_DENY": "127.0.0.0/8"})
    try:
        api = srv.api()
        res = check_result(api.post(f"{C}/test", pg_body(pg_accept.port, "pw-deny-1"), timeout=70))
        assert res["read"] == "FAILED"
        resolve = [s for s in res.get("steps", []) if s["name"] == "resolve"]
        assert resolve and resolve[0].get("code") == "egress_denied", res.get("steps")
        time.sleep(0.2)
        assert pg_accept.passwords == [], "the server connected to a denied address"
        # "localhost" resolves to the same denied address.
        body = pg_body(pg_accept.port, "pw-deny-2")
        body["details"]["host"] = "localhost"
        res = check_result(api.post(f"{C}/test", body, timeout=70))
        assert res["read"] == "FAILED" and pg_accept.passwords == []
    finally:
        stop_and_check(srv)


def test_put_secret_semantics_reach_the_warehouse(api, pg_accept):
    """Contract 4: a secret absent from a PUT keeps its value (same type), "" is a value, and
    null clears it; checked by what the warehouse receives, not only by `secrets`."""
    password = "PgKeep-" + uuid.uuid4().hex
    created = api.create(pg_body(pg_accept.port, password))
    cid = created["connectionId"]
    details = {k: v for k, v in pg_body(pg_accept.port, password)["details"].items() if k != "password"}

    def put_and_test(new_details):
        r = api.put(f"{C}/{cid}", {"name": "fake-pg", "timeoutSecs": 5, "details": new_details})
        assert r.status_code == 200, r.text
        pg_accept.passwords.clear()
        check_result(api.get(f"{C}/{cid}/test", timeout=70))
        return list(pg_accept.passwords)

    assert put_and_test(details) == [password], "a PUT without the password lost it"
    # libpq never sends an empty password (it fails client-side), so "" is checked through
    # `secrets` and by the stored password no longer being sent.
    assert put_and_test(dict(details, password="")) in ([], [""]), "an empty password replaced the old one"
    if "secrets" in created:
        assert api.get_conn(cid)["secrets"]["password"]["isSet"] is True, "an empty password is a value"
    assert put_and_test(dict(details, password=None)) in ([], [""]), "password: null must clear it"
    got = api.get_conn(cid)
    assert "password" not in got.get("secrets", {})


# --------------------------------------------------------------------------------------------
# Regressions of issue 18 (findings of an outside attack), probe side.


def test_loopback_is_denied_by_default_and_the_step_names_the_variable(tmp_path, pg_accept):
    """Finding 5: loopback is denied unless CONNREG_EGRESS_ALLOW_LOOPBACK=true (the suite's
    servers set it, see conftest.Server); the failed step names the variable."""
    from conftest import start_server, stop_and_check
    srv = start_server(tmpdir=tmp_path, env={"CONNREG_EGRESS_ALLOW_LOOPBACK": ""})
    try:
        api = srv.api()
        for host in ("127.0.0.1", "localhost", "::1"):
            body = pg_body(pg_accept.port, "pw-loopback-1")
            body["details"]["host"] = host
            res = check_result(api.post(f"{C}/test", body, timeout=70))
            resolve = [s for s in res.get("steps", []) if s["name"] == "resolve"]
            assert resolve and resolve[0].get("code") == "egress_denied", (host, res.get("steps"))
            assert "CONNREG_EGRESS_ALLOW_LOOPBACK" in resolve[0].get("message", ""), resolve
        time.sleep(0.2)
        assert pg_accept.passwords == [], "the server connected to loopback"
    finally:
        stop_and_check(srv)
    # The flag of the same meaning allows it.
    (tmp_path / "flag").mkdir()
    srv = start_server("--egress-allow-loopback", "true", tmpdir=tmp_path / "flag",
                       env={"CONNREG_EGRESS_ALLOW_LOOPBACK": ""})
    try:
        res = check_result(srv.api().post(f"{C}/test", pg_body(pg_accept.port, "pw-loopback-2"),
                                          timeout=70))
        assert res["read"] == "SUCCESS", res
        assert pg_accept.passwords == ["pw-loopback-2"]
    finally:
        stop_and_check(srv)


def _ipv6_loopback_listener():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
    except OSError:
        return None
    s.listen(8)
    s.settimeout(0.2)
    return s


def test_unspecified_ipv6_does_not_reach_loopback(tmp_path):
    """Finding 5: with loopback denied by the operator, "::", "[::]" and "0:0:0:0:0:0:0:0"
    connected to a listener on ::1."""
    listener = _ipv6_loopback_listener()
    if listener is None:
        pytest.fail("this machine has no IPv6 loopback to run the reproduction on")
    from conftest import start_server, stop_and_check
    srv = start_server(tmpdir=tmp_path, env={"CONNREG_EGRESS_DENY": "127.0.0.0/8,::1"})
    port = listener.getsockname()[1]
    try:
        api = srv.api()
        for host in ("::", "[::]", "0:0:0:0:0:0:0:0"):
            body = pg_body(port, "pw-unspecified-1")
            body["details"]["host"] = host
            res = check_result(api.post(f"{C}/test", body, timeout=70))
            resolve = [s for s in res.get("steps", []) if s["name"] == "resolve"]
            assert resolve and resolve[0].get("code") == "egress_denied", (host, res.get("steps"))
        with pytest.raises(OSError):
            listener.accept()  # nothing connected
    finally:
        listener.close()
        stop_and_check(srv)


class EchoingHttps:
    """An HTTPS server (certificate for localhost, made here with the openssl CLI) that answers
    every request with 500 and a body quoting the request's headers first, then an 'internal
    page' of 300 bytes: what a test pointed at an internal service would read back."""

    MARKER = "INTERNAL-PAGE-MARKER"

    def __init__(self, tmp_path):
        import http.server
        import ssl
        import subprocess
        self.cert, key = tmp_path / "echo.pem", tmp_path / "echo.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(self.cert), "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                       check=True, capture_output=True)
        marker = self.MARKER

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                echoed = " ".join(f"{k}={v}" for k, v in self.headers.items())
                body = (echoed + " " + "." * 120 + marker + "." * 160).encode()
                self.send_response(500)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert), str(key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_server_reply_is_quoted_only_as_a_short_redacted_excerpt(tmp_path):
    """Finding 3: a starburst test against an HTTPS server that echoes its request headers
    returned `Authorization=Basic <base64 of user:password>`, and 300 bytes of the reply."""
    from conftest import start_server, stop_and_check
    echo = EchoingHttps(tmp_path)
    (tmp_path / "srv").mkdir()
    srv = start_server(tmpdir=tmp_path / "srv", env={"CONNREG_TLS_CA_FILE": str(echo.cert)})
    password = "PWMARK_trino_77"
    try:
        api = srv.api()
        api.secret_values.add(password)
        body = {"name": "echo", "timeoutSecs": 5,
                "details": {"type": "starburst", "host": "localhost", "port": echo.port, "user": "u",
                            "password": password}}
        r = api.post(f"{C}/test", body, timeout=70)
        res = check_result(r, [password])
        basic = base64.b64encode(f"u:{password}".encode()).decode()
        assert basic not in r.text and basic.rstrip("=") not in r.text, "the Basic header was reflected"
        assert "dTpQV01BUktf" not in r.text, "a part of the Basic header was reflected"
        assert EchoingHttps.MARKER not in r.text, "more than a short excerpt of the reply was reflected"
        failed = [s for s in res["steps"] if s["status"] == "FAILED"]
        assert failed and "HTTP 500" in failed[0].get("message", ""), res["steps"]
        assert len(failed[0]["message"]) <= 120, failed[0]["message"]
    finally:
        stop_and_check(srv)
        echo.close()
