"""Regressions of issue 18, "Credentials go only where they were configured to go: findings of an
outside attack" (the domain, API and HTTP findings; the probe findings have their own tests).
Each test is named after its finding and reproduces it as the tester did; each fails against the
binary built before the fix.

The connection tests reach fake servers on 127.0.0.1, so this module's server allows loopback
(CONNREG_EGRESS_ALLOW_LOOPBACK).
"""

from __future__ import annotations

import hashlib
import json
import resource
import socket
import sqlite3
import time
import uuid

import pytest
import requests

from conftest import (SocketReader, check_error, conn_body, connect, start_server, stop_and_check,
                      uniq, valid_details)
from fake_postgres import FakePostgres

C = "/v2/connections"
LOOPBACK = {"CONNREG_EGRESS_ALLOW_LOOPBACK": "true"}


@pytest.fixture(scope="module")
def server():
    srv = start_server(env=LOOPBACK)
    yield srv
    stop_and_check(srv)


@pytest.fixture(scope="module")
def api(server):
    return server.api()


@pytest.fixture
def fake_pg():
    f = FakePostgres(accept_login=False)
    yield f
    f.close()


def raw_post(api, path, text, method="POST"):
    return api.request(method, path, data=text)


# --------------------------------------------------------------------------------------------
# Finding 1 (High): a number too large for a double poisons a connection and the listing.


POISON = [
    ('{"name":"%s","description":{"a":1e999},"details":%s}', "description.a must be a finite number"),
    ('{"name":"%s","description":{"a":-1e400},"details":%s}', "description.a must be a finite number"),
    ('{"name":"%s","description":{"deep":[{"x":2e308}]},"details":%s}',
     "description.deep[0].x must be a finite number"),
]


def test_finding1_infinite_number_is_400_and_the_listing_stays_200(api):
    before = api.list(limit=1000)["total"]
    for template, message in POISON:
        text = template % (uniq("inf"), json.dumps(valid_details("postgres")))
        err = check_error(raw_post(api, C, text), 400, "bad_request")
        assert err["message"] == message, err
        err = check_error(raw_post(api, f"{C}/test", text), 400, "bad_request")
        assert err["message"] == message, err
    page = api.list(limit=1000)
    assert page["total"] == before, "a poisoned body was stored"

    made = api.create(conn_body("postgres"))
    cid = made["connectionId"]
    for method in ("PATCH", "PUT"):
        text = '{"name":"n","description":{"a":1e999},"details":%s}' % json.dumps(made["details"])
        err = check_error(raw_post(api, f"{C}/{cid}", text, method), 400, "bad_request")
        assert err["message"] == "description.a must be a finite number", err
    err = check_error(raw_post(api, f"{C}/{cid}/test", '{"description":{"a":-1e400}}'), 400, "bad_request")
    assert "finite" in err["message"], err
    assert api.get_conn(cid)["version"] == made["version"]
    assert api.list(limit=1000)["total"] == before + 1
    # The largest finite doubles are values like any other, and come back as they went in.
    text = ('{"name":"%s","description":{"max":1.7976931348623157e308,"tiny":5e-324},"details":%s}'
            % (uniq("max"), json.dumps(valid_details("postgres"))))
    r = raw_post(api, C, text)
    assert r.status_code == 201, r.text
    got = api.get_conn(r.json()["connectionId"])
    assert got["description"] == {"max": 1.7976931348623157e308, "tiny": 5e-324}
    api.list(limit=1000)


# --------------------------------------------------------------------------------------------
# Finding 2 (High): an admin can extract any stored secret by pointing it at their own listener.


def saved_pg(api, password, port=5432, **details):
    d = {"type": "postgres", "host": "db.example.invalid", "port": port, "database": "d",
         "user": "u", "password": password}
    d.update(details)
    return api.create({"name": uniq("pg"), "timeoutSecs": 5, "details": d})


def assert_no_login(fake, password):
    time.sleep(0.3)
    assert password not in fake.passwords, "the stored password reached the attacker's listener"
    assert fake.passwords == [], f"the listener was connected to: {len(fake.passwords)} logins"


def test_finding2_test_body_with_another_host_is_400_and_connects_nowhere(api, fake_pg):
    password = "PWMARK-" + uuid.uuid4().hex
    made = saved_pg(api, password)
    r = api.post(f"{C}/{made['connectionId']}/test", {"details": {"host": "127.0.0.1", "port": fake_pg.port}},
                 timeout=30)
    err = check_error(r, 400, "bad_request")
    assert err["message"] == "details.password must be given again when details.host changes", err
    assert_no_login(fake_pg, password)
    # The port alone is an endpoint change too.
    r = api.post(f"{C}/{made['connectionId']}/test", {"details": {"port": fake_pg.port}}, timeout=30)
    assert check_error(r, 400)["message"] == "details.password must be given again when details.port changes"
    # With the secret given again the test runs, and the listener gets that one only.
    given = "given-" + uuid.uuid4().hex
    api.secret_values.add(given)
    r = api.post(f"{C}/{made['connectionId']}/test",
                 {"details": {"host": "127.0.0.1", "port": fake_pg.port, "password": given}}, timeout=30)
    assert r.status_code == 200, r.text
    assert fake_pg.passwords == [given]


def test_finding2_patch_host_is_400_so_a_later_test_goes_nowhere_new(api, fake_pg):
    password = "PWMARK-" + uuid.uuid4().hex
    made = saved_pg(api, password)
    cid = made["connectionId"]
    r = api.patch(f"{C}/{cid}", {"details": {"host": "127.0.0.1", "port": fake_pg.port}})
    err = check_error(r, 400, "bad_request")
    assert err["message"] == "details.password must be given again when details.host changes", err
    assert api.get_conn(cid)["details"]["host"] == "db.example.invalid"
    r = api.get(f"{C}/{cid}/test", timeout=30)
    assert r.status_code == 200, r.text
    assert_no_login(fake_pg, password)
    # Given again, the PATCH is accepted, and the secret changes with it.
    given = "given-" + uuid.uuid4().hex
    api.secret_values.add(given)
    r = api.patch(f"{C}/{cid}", {"details": {"host": "127.0.0.1", "port": fake_pg.port, "password": given}})
    assert r.status_code == 200, r.text
    api.get(f"{C}/{cid}/test", timeout=30)
    assert fake_pg.passwords == [given]


def test_finding2_put_leaving_the_password_out_with_a_new_host_is_400(api, fake_pg):
    password = "PWMARK-" + uuid.uuid4().hex
    made = saved_pg(api, password)
    cid = made["connectionId"]
    details = dict(made["details"], host="127.0.0.1", port=fake_pg.port)
    r = api.put(f"{C}/{cid}", {"name": made["name"], "timeoutSecs": 5, "details": details})
    err = check_error(r, 400, "bad_request")
    assert err["message"] == "details.password must be given again when details.host changes", err
    api.get(f"{C}/{cid}/test", timeout=30)
    assert_no_login(fake_pg, password)
    # Same endpoint: the stored password is kept, as before. Default port: no change.
    same = {k: v for k, v in made["details"].items() if k != "port"}
    r = api.put(f"{C}/{cid}", {"name": made["name"], "details": same})
    assert r.status_code == 200, r.text
    assert r.json()["secrets"]["password"]["isSet"] is True
    given = "given-" + uuid.uuid4().hex
    api.secret_values.add(given)
    r = api.put(f"{C}/{cid}", {"name": made["name"], "timeoutSecs": 5, "details": dict(details, password=given)})
    assert r.status_code == 200, r.text
    api.get(f"{C}/{cid}/test", timeout=30)
    assert fake_pg.passwords == [given]


def test_finding2_weakening_tls_needs_the_secrets_again(api):
    made = saved_pg(api, "PWMARK-" + uuid.uuid4().hex, useTls=True)
    assert made["details"]["tlsMode"] == "verify-full", "new connections verify fully when TLS is on"
    cid = made["connectionId"]
    for change, field in (({"useTls": False}, "useTls"), ({"tlsMode": "require"}, "tlsMode")):
        err = check_error(api.patch(f"{C}/{cid}", {"details": change}), 400, "bad_request")
        assert err["message"] == f"details.password must be given again when details.{field} changes", err
    r = api.patch(f"{C}/{cid}", {"details": {"tlsMode": "require", "password": "again-" + uuid.uuid4().hex}})
    assert r.status_code == 200, r.text
    assert r.json()["details"]["tlsMode"] == "require"


# --------------------------------------------------------------------------------------------
# Finding 4 (Medium): a weak password can be recovered from the database file alone.


def old_request_hash(raw_body: bytes) -> str:
    """The scheme before the fix: BLAKE2b-256 keyed with a label compiled into the binary."""
    return hashlib.blake2b(b"POST /v2/connections\n" + raw_body, digest_size=32,
                           key=b"connreg token hash v1 ..........").hexdigest()


def stored_request_hash(srv, key: str) -> str:
    db = sqlite3.connect(f"file:{srv.db_path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT request_hash FROM idempotency_keys WHERE key = ?",
                          (key,)).fetchall()
    finally:
        db.close()
    assert len(rows) == 1, rows
    return rows[0][0]


def idempotent_post(api, key: str, raw: bytes):
    return api.request("POST", C, data=raw, headers={"Idempotency-Key": key})


@pytest.mark.sqlite_only
def test_finding4_request_hash_allows_no_dictionary_attack(server, api):
    dictionary = ["password", "Password1", "Spring2024!", "Summer2024!", "Autumn2024!", "Winter2024!",
                  "letmein"]
    name = uniq("idem")
    bodies = {}
    for pw in ("Summer2024!", "Winter2024!"):
        raw = json.dumps({"name": name, "details": {"type": "postgres", "host": "db.example.invalid",
                                                    "database": "d", "password": pw}}).encode()
        key = "finding4-" + uuid.uuid4().hex
        r = idempotent_post(api, key, raw)
        assert r.status_code == 201, r.text
        bodies[pw] = (raw, stored_request_hash(server, key))
    (raw_a, a), (raw_b, b) = bodies["Summer2024!"], bodies["Winter2024!"]
    # The dictionary attack of the finding: recompute the old scheme for each guess.
    for guess in dictionary:
        guessed = raw_a.replace(b"Summer2024!", guess.encode())
        assert old_request_hash(guessed) != a, f"the stored hash reveals the password {guess!r}"
    assert "Summer2024!" not in a
    # Bodies differing only in the password differ only in the MAC part.
    pa, pb = a.split(":"), b.split(":")
    assert len(pa) == len(pb) == 4 and pa[0] == pb[0] == "v2", (a, b)
    assert pa[1] == pb[1], "the body hash depends on the password"
    assert pa[2] == pb[2] and pa[2], "the MAC names the master key it was made under"
    assert pa[3] != pb[3]


@pytest.mark.sqlite_only
def test_finding4_replay_after_key_rotate_is_409_and_before_it_replays(tmp_path):
    srv = start_server(tmpdir=tmp_path)
    try:
        api = srv.api()
        raw = json.dumps(conn_body("postgres")).encode()
        key = "finding4-rotate-" + uuid.uuid4().hex
        first = idempotent_post(api, key, raw)
        assert first.status_code == 201, first.text
        again = idempotent_post(api, key, raw)
        assert again.status_code == 201 and again.json() == first.json(), again.text
        assert again.headers.get("Idempotent-Replayed") == "true"
        other = idempotent_post(api, key, raw.replace(b"pw-", b"qw-"))
        check_error(other, 409, "conflict")
        r = srv.cli("key", "rotate", "--settle", "1", timeout=60)
        assert r.returncode == 0, r.stderr
        # The server reloads its key file within a second: at the end it holds the new key only.
        assert srv.wait_for_log(lambda ev: ev.get("event") == "master_key_reloaded" and ev.get("keys") == 1,
                                timeout=10), srv.output_tail()
        err = check_error(idempotent_post(api, key, raw), 409, "conflict")
        assert "rotation" in err["message"], err
        # A new key works as ever.
        fresh = idempotent_post(api, "finding4-after-" + uuid.uuid4().hex, raw)
        assert fresh.status_code == 201, fresh.text
    finally:
        stop_and_check(srv)


# --------------------------------------------------------------------------------------------
# Finding 7 (Low)


def test_finding7_snowflake_account_is_validated_like_a_host(api):
    for account in ("acme.evil.example/x?", "acme@evil", "acme evil", "acme\nHost: x", "a#b"):
        body = conn_body("snowflake")
        body["details"]["account"] = account
        err = check_error(api.post(C, body), 400, "bad_request")
        assert err["message"].startswith("details.account must be a Snowflake account identifier"), err
    api.create(conn_body("snowflake", details=valid_details("snowflake", account="xy12345.us-east-1.aws")))


def test_finding7_names_refuse_c1_controls_and_bidi_overrides(api):
    for bad, what in (("\u0085", "control"), ("\u009b", "control"), ("\u202e", "bidirectional"),
                      ("\u2066", "bidirectional"), ("\u2069", "bidirectional")):
        err = check_error(api.post(C, conn_body("postgres", name=f"invoice{bad}gpj.exe")), 400, "bad_request")
        assert err["message"].startswith("name must not contain") and what in err["message"], err
        made = api.create(conn_body("postgres"))
        check_error(api.patch(f"{C}/{made['connectionId']}", {"name": f"x{bad}y"}), 400, "bad_request")
    api.create(conn_body("postgres", name="Zürich \u00a0 データ 😀"))


def exchange(server, data: bytes):
    s = connect(server)
    try:
        s.sendall(data)
        rd = SocketReader(s)
        resp = rd.read_response()
        closed = rd.closed_within(3)
        return resp, closed
    finally:
        s.close()


def test_finding7_http11_without_host_is_400(server):
    resp, closed = exchange(server, b"GET /healthz HTTP/1.1\r\n\r\n")
    assert resp is not None and resp.status == 400, resp
    assert resp.json()["code"] == "bad_request" and closed
    resp, _ = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert resp.status == 400, resp
    resp, _ = exchange(server, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert resp.status == 200, resp


def test_finding7_transfer_encoding_gzip_chunked_is_400(server, api):
    body = json.dumps(conn_body("postgres")).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    for te in (b"gzip, chunked", b"deflate, chunked", b"identity, chunked"):
        req = (b"POST /v2/connections HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + api.token.encode()
               + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: " + te + b"\r\n\r\n" + chunked)
        resp, closed = exchange(server, req)
        assert resp is not None and resp.status == 400, (te, resp)
        assert closed, te


def test_finding7_obs_fold_is_400(server):
    for req in (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\t2\r\n\r\n"):
        resp, closed = exchange(server, req)
        assert resp is not None and resp.status == 400, resp
        assert closed


def test_finding7_head_works_on_every_reading_get_route(server, api):
    made = api.create(conn_body("postgres"))
    cid = made["connectionId"]
    grants = f"{C}/{cid}/grants"
    for path, auth in (("/healthz", False), ("/readyz", False), ("/metrics", False),
                       ("/openapi.json", False), ("/docs", False), (C, True), (f"{C}/{cid}", True),
                       (grants, True), ("/v2/connections/not-a-uuid", True)):
        headers = {"Authorization": f"Bearer {api.token}"} if auth else {}
        get = requests.get(server.url(path), headers=headers, timeout=10)
        head = requests.head(server.url(path), headers=headers, timeout=10)
        assert head.status_code == get.status_code, (path, head.status_code, get.status_code)
        assert head.content == b"", path
        for h in ("Content-Type", "ETag"):
            assert head.headers.get(h) == get.headers.get(h), (path, h)
        if path not in ("/metrics", C, "/readyz"):  # their bodies change between two requests
            assert head.headers.get("Content-Length") == get.headers.get("Content-Length"), path
    r = api.request("GET", f"{C}/{cid}", auth=False)
    h = api.request("HEAD", f"{C}/{cid}", auth=False)
    assert r.status_code == h.status_code == 401 and h.headers.get("WWW-Authenticate") == "Bearer"
    # The test route runs a real test: HEAD is a 405 with Allow, and nothing is tested.
    head = api.request("HEAD", f"{C}/{cid}/test")
    assert head.status_code == 405, head.status_code
    allow = {m.strip() for m in head.headers.get("Allow", "").split(",")}
    assert allow == {"GET", "POST"}, allow
    assert "lastTest" not in api.get_conn(cid)
    allow = {m.strip() for m in api.request("DELETE", "/healthz").headers.get("Allow", "").split(",")}
    assert allow == {"GET", "HEAD"}, allow


def test_finding7_viewer_malformed_body_to_admin_only_route_is_403(server, api):
    viewer = server.new_member_client(api.organization_id, "viewer")
    cid = api.create(conn_body("postgres"))["connectionId"]
    for method, path in (("POST", C), ("POST", f"{C}/test"), ("PUT", f"{C}/{cid}"), ("PATCH", f"{C}/{cid}"),
                         ("POST", f"{C}/{cid}/test"), ("POST", f"{C}/{cid}/grants")):
        for body in ("{not json", '{"description":{"a":1e999}}'):
            r = viewer.request(method, path, data=body)
            check_error(r, 403, "forbidden")


def open_idle(server, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        socks.append(s)
    return socks


def close_all(socks):
    for s in socks:
        s.close()
    socks.clear()


def healthy_soon(server, within=5.0):
    """/healthz answers 200 in under 2 s, within `within` seconds (closed sockets take a moment
    to leave the server's count)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status, took, _ = healthz_within(server, 3)
        if status == 200 and took < 2:
            return True
        time.sleep(0.05)
    return False


def healthz_within(server, seconds):
    t0 = time.monotonic()
    try:
        r = requests.get(server.url("/healthz"), timeout=seconds)
    except requests.RequestException as e:
        return None, time.monotonic() - t0, e
    return r.status_code, time.monotonic() - t0, None


def test_finding7_connections_over_the_cap_are_refused_and_the_server_stays_responsive(tmp_path):
    srv = start_server(tmpdir=tmp_path, env={"CONNREG_MAX_CONNECTIONS": "20"})
    socks = []
    try:
        socks = open_idle(srv, 40)
        refused = 0
        for s in socks:
            s.settimeout(0.5)
            try:
                data = s.recv(4096)
            except socket.timeout:
                continue
            except ConnectionResetError:
                refused += 1
                continue
            if data.startswith(b"HTTP/1.1 503"):
                refused += 1
        assert refused >= 20, f"only {refused} of 20 connections over the cap were refused at once"
        # A new client is answered at once (503 while the idle ones hold every place), not left waiting.
        status, took, err = healthz_within(srv, 3)
        assert err is None and status in (200, 503) and took < 2, (status, took, err)
        close_all(socks)
        assert healthy_soon(srv), "/healthz did not answer 200 once the idle sockets closed"
        listening = srv.wait_for_log(lambda ev: ev.get("event") == "listening")
        assert listening.get("maxConnections") == 20, listening
    finally:
        close_all(socks)
        stop_and_check(srv)


def test_finding7_descriptor_limit_is_raised_and_the_cap_fits_it(tmp_path):
    """150 idle sockets used up a 128-descriptor limit and /healthz timed out. The server raises
    its soft limit to the hard one, and keeps the cap (default 1024) within 3/4 of it."""
    soft, hard = 64, 128

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    srv = start_server(tmpdir=tmp_path, preexec_fn=limit)
    socks = []
    try:
        socks = open_idle(srv, 150)
        status, took, err = healthz_within(srv, 3)
        assert err is None and status in (200, 503) and took < 2, (status, took, err)
        with open(f"/proc/{srv.proc.pid}/limits") as f:
            line = next(l for l in f if l.startswith("Max open files"))
        assert line.split()[3] == str(hard), f"the soft limit was not raised: {line}"
        listening = srv.wait_for_log(lambda ev: ev.get("event") == "listening")
        assert listening.get("maxConnections") == hard * 3 // 4, listening
        close_all(socks)
        assert healthy_soon(srv), "/healthz did not answer 200 once the idle sockets closed"
    finally:
        close_all(socks)
        stop_and_check(srv)
