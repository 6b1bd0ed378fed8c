"""HTTP protocol behaviour (contract section 10): request ids, header limits, framing, keep-alive,
pipelining, the slow-header timeout, SIGTERM draining. After every test the server must still
answer (autouse fixture)."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import pytest
import requests

from conftest import (SANE_REQUEST_ID_RE, SocketReader, check_error, conn_body, connect, healthy,
                      raw_exchange, start_server, stop_and_check)

C = "/v2/connections"


@pytest.fixture(autouse=True)
def still_serving(server):
    yield
    assert server.alive(), "the server died:\n" + server.output_tail()
    assert healthy(server), "the server stopped answering /healthz after this test"


def req(method: str, path: str, headers: dict | None = None, body: bytes = b"") -> bytes:
    h = {"Host": "127.0.0.1"}
    h.update(headers or {})
    if body and "Content-Length" not in h and "Transfer-Encoding" not in h:
        h["Content-Length"] = str(len(body))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    return head.encode() + body


def check_raw_error(resp, code=None):
    """Contract 9/10: every error is JSON {code, message, requestId}, with the X-Request-Id header."""
    rid = resp.headers.get("x-request-id")
    assert rid, f"no X-Request-Id on a {resp.status}"
    assert resp.headers.get("content-type", "").startswith("application/json"), resp
    body = resp.json()
    assert isinstance(body.get("code"), str) and isinstance(body.get("message"), str), body
    assert body.get("requestId") == rid, body
    if code:
        assert body["code"] == code, body


# --------------------------------------------------------------------------------------------
# X-Request-Id


@pytest.mark.parametrize("rid", ["abc-123_X.y", "a", "Z" * 128, "0123456789"])
def test_sane_request_id_echoed(api, rid):
    r = api.get(C, headers={"X-Request-Id": rid})
    assert r.status_code == 200
    assert r.headers.get("X-Request-Id") == rid


@pytest.mark.parametrize("rid", ["x" * 129, "y" * 200, "has space", "semi;colon", "slash/x", "quote\"x", "ümlaut"])
def test_insane_request_id_replaced(api, rid):
    r = api.get(C, headers={"X-Request-Id": rid.encode("utf-8")})
    assert r.status_code == 200
    got = r.headers.get("X-Request-Id")
    assert got and got != rid
    assert SANE_REQUEST_ID_RE.match(got), f"generated request id is not sane: {got!r}"


def test_request_id_in_error_bodies(api, server):
    rid = "trace-error-0001"
    r = api.get(f"{C}/not-there", headers={"X-Request-Id": rid})
    body = check_error(r, 404, "not_found")
    assert body["requestId"] == rid
    r = requests.get(server.url(C), headers={"X-Request-Id": "trace-401"}, timeout=10)
    assert check_error(r, 401, "unauthorized")["requestId"] == "trace-401"
    r = api.post(C, {"bogus": 1}, headers={"X-Request-Id": "trace-400"})
    assert check_error(r, 400, "bad_request")["requestId"] == "trace-400"


def test_generated_request_ids_are_unique(api):
    seen = {api.get("/healthz", auth=False).headers["X-Request-Id"] for _ in range(30)}
    assert len(seen) == 30


def test_request_id_in_access_log(api, server):
    rid = "log-me-" + str(time.time_ns())
    api.get(C, headers={"X-Request-Id": rid})
    ev = server.wait_for_log(lambda e: e.get("requestId") == rid, timeout=8)
    assert ev is not None, "no access log line carries the request id"
    assert ev.get("status") == 200 and ev.get("method") == "GET"
    assert ev.get("memberId") == api.member_id


def test_stalled_stdout_never_blocks_requests(tmp_path):
    """A log reader that stops draining stdout fills the pipe (64 KiB) within a few hundred access
    lines; requests must go on being answered, and the lines arrive once the reader is back."""
    srv = start_server(tmpdir=tmp_path)
    try:
        srv.pause_stdout()
        time.sleep(0.3)
        session = requests.Session()
        rid = "after-the-stall-" + str(time.time_ns())
        start = time.monotonic()
        for i in range(3000):  # ~200 bytes of access log each: 600 KB, ten pipes' worth
            r = session.get(srv.url("/healthz"), timeout=5,
                            headers={"X-Request-Id": rid if i == 2999 else f"stall-{i}"})
            assert r.status_code == 200
        assert time.monotonic() - start < 60
        srv.resume_stdout()
        assert srv.wait_for_log(lambda e: e.get("requestId") == rid, timeout=10) is not None
    finally:
        srv.resume_stdout()
        stop_and_check(srv)


# --------------------------------------------------------------------------------------------
# Header limits and framing


def test_64k_header_is_431(server):
    resps, rd = raw_exchange(server, req("GET", "/healthz", {"X-Big": "a" * 65536}))
    assert resps, "the server closed the connection without answering 431"
    assert resps[0].status == 431, resps[0]
    check_raw_error(resps[0])


def test_many_headers_over_16k_is_431(server):
    headers = {f"X-H{i}": "v" * 100 for i in range(200)}
    resps, _ = raw_exchange(server, req("GET", "/healthz", headers))
    assert resps and resps[0].status == 431, resps


def test_headers_under_limit_accepted(api):
    r = api.get(C, headers={"X-Pad": "p" * 8000})
    assert r.status_code == 200


def test_content_length_and_transfer_encoding_is_400(server, api):
    body = b'{"name":"x"}'
    data = req("POST", C, {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json",
                           "Content-Length": str(len(body)), "Transfer-Encoding": "chunked"},
               b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    resps, rd = raw_exchange(server, data)
    assert resps and resps[0].status == 400, resps
    check_raw_error(resps[0], "bad_request")
    assert rd.closed_within(3), "the connection stays open after a smuggling attempt"


@pytest.mark.parametrize("te", ["gzip", "chunked, gzip", "identity", "xchunked"])
def test_transfer_encoding_not_ending_in_chunked_is_400(server, api, te):
    body = b'{"name":"x"}'
    data = req("POST", C, {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json",
                           "Transfer-Encoding": te}, body)
    resps, rd = raw_exchange(server, data)
    assert resps and resps[0].status == 400, resps
    check_raw_error(resps[0], "bad_request")
    assert rd.closed_within(3), "the connection stays open after a bad Transfer-Encoding"


def test_chunked_body_accepted(server, api):
    body = json.dumps(conn_body()).encode()
    chunks = b"".join(b"%x\r\n" % len(body[i:i + 10]) + body[i:i + 10] + b"\r\n" for i in range(0, len(body), 10))
    data = req("POST", C, {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json",
                           "Transfer-Encoding": "chunked"}, chunks + b"0\r\n\r\n")
    resps, _ = raw_exchange(server, data)
    assert resps and resps[0].status == 201, resps


@pytest.mark.parametrize("line", [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
                                  b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n",
                                  b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
                                  b"POST /v2/connections HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                                  b"POST /v2/connections HTTP/1.1\r\nHost: x\r\nContent-Length: 12, 13\r\n\r\n"])
def test_garbage_requests(server, line):
    resps, rd = raw_exchange(server, line, timeout=5)
    if resps:
        assert 400 <= resps[0].status < 500, resps[0]


# --------------------------------------------------------------------------------------------
# Keep-alive and pipelining


def test_keep_alive(server, api):
    s = connect(server)
    try:
        rd = SocketReader(s)
        s.sendall(req("GET", "/healthz", {"X-Request-Id": "ka-1"}))
        r1 = rd.read_response()
        s.sendall(req("GET", C, {"X-Request-Id": "ka-2", "Authorization": f"Bearer {api.token}"}))
        r2 = rd.read_response()
    finally:
        s.close()
    assert r1 and r1.status == 200 and r1.headers.get("x-request-id") == "ka-1"
    assert r2 and r2.status == 200 and r2.headers.get("x-request-id") == "ka-2"
    assert "entries" in r2.json()


def test_pipelining(server, api):
    auth = {"Authorization": f"Bearer {api.token}"}
    body = json.dumps(conn_body(name="pipelined")).encode()
    data = (req("POST", C, dict(auth, **{"X-Request-Id": "pipe-1", "Content-Type": "application/json"}), body)
            + req("GET", "/v2/connections?search=pipelined", dict(auth, **{"X-Request-Id": "pipe-2"}))
            + req("GET", "/nope", {"X-Request-Id": "pipe-3"}))
    resps, _ = raw_exchange(server, data, n_responses=3)
    assert [r.headers.get("x-request-id") for r in resps] == ["pipe-1", "pipe-2", "pipe-3"], resps
    assert [r.status for r in resps] == [201, 200, 404]
    # The second request saw the first one's effect: responses are in order, requests too.
    assert resps[1].json()["total"] >= 1


def test_connection_close_honoured(server):
    resps, rd = raw_exchange(server, req("GET", "/healthz", {"Connection": "close"}))
    assert resps and resps[0].status == 200
    assert rd.closed_within(3)


def test_http_1_0(server):
    resps, rd = raw_exchange(server, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert resps and resps[0].status == 200


# --------------------------------------------------------------------------------------------
# Slow clients and shutdown


def test_slow_header_client_is_disconnected(tmp_path):
    srv = start_server("--header-timeout", "2", tmpdir=tmp_path)
    try:
        s = connect(srv)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Partial: yes")
        t0 = time.monotonic()
        # Meanwhile other requests are served.
        for _ in range(5):
            assert requests.get(srv.url("/healthz"), timeout=3).status_code == 200
        rd = SocketReader(s, 10)
        closed = rd.closed_within(6)
        elapsed = time.monotonic() - t0
        s.close()
        assert closed, "a client with incomplete headers was not disconnected"
        assert 1.0 <= elapsed <= 6.0, f"disconnected after {elapsed:.1f}s with a 2 s header timeout"
        # A trickle of header bytes does not extend the deadline forever.
        s = connect(srv)
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 7:
            try:
                s.sendall(b"X-A: b\r\n")
            except OSError:
                closed = True
                break
            time.sleep(0.3)
        if not closed:
            closed = SocketReader(s, 3).closed_within(2)
        s.close()
        assert closed, "a client trickling header bytes was never disconnected"
        assert healthy(srv)
    finally:
        stop_and_check(srv)


def test_idle_keep_alive_client_does_not_block(server):
    idle = connect(server)
    try:
        for _ in range(3):
            assert requests.get(server.url("/healthz"), timeout=3).status_code == 200
    finally:
        idle.close()


def test_sigterm_during_stream_of_requests(tmp_path):
    srv = start_server(tmpdir=tmp_path)
    api = srv.api()
    token = api.token
    stop = threading.Event()
    results = {"ok": 0, "errors": 0, "bad_status": []}

    def stream():
        session = requests.Session()
        while not stop.is_set():
            try:
                r = session.get(srv.url(C), headers={"Authorization": f"Bearer {token}"}, timeout=5)
                if r.status_code == 200:
                    results["ok"] += 1
                elif r.status_code != 503:
                    results["bad_status"].append(r.status_code)
            except requests.RequestException:
                results["errors"] += 1
                time.sleep(0.02)
            time.sleep(0.01)

    threads = [threading.Thread(target=stream, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    # A request in flight: headers sent, the body trickles in across the SIGTERM.
    body = json.dumps(conn_body(name="in-flight")).encode()
    s = connect(srv, timeout=15)
    s.sendall(req("POST", C, {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                              "Content-Length": str(len(body))}))
    s.sendall(body[:10])
    deadline = time.monotonic() + 5
    while results["ok"] < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert results["ok"] >= 10, "the request stream did not get going"
    t0 = time.monotonic()
    srv.proc.send_signal(15)
    time.sleep(0.5)
    for i in range(10, len(body), 20):
        try:
            s.sendall(body[i:i + 20])
        except OSError:
            break
        time.sleep(0.05)
    in_flight = SocketReader(s, 10).read_response()
    s.close()
    try:
        rc = srv.proc.wait(12)
    finally:
        stop.set()
        for t in threads:
            t.join(6)
        srv.kill()
    assert rc == 0, f"exit status {rc} after SIGTERM"
    assert time.monotonic() - t0 < 12
    assert not results["bad_status"], results
    assert in_flight is not None, "a request in flight at SIGTERM got no response"
    assert in_flight.status == 201, in_flight
    # The stopped server's store kept the in-flight write.
    again = start_server(tmpdir=tmp_path)
    try:
        assert again.api().list(search="in-flight")["total"] == 1
    finally:
        stop_and_check(again)


def test_sigterm_idle_exits_zero(tmp_path):
    srv = start_server(tmpdir=tmp_path)
    idle = connect(srv)  # an idle keep-alive connection must not hold the shutdown
    try:
        t0 = time.monotonic()
        assert srv.stop() == 0
        assert time.monotonic() - t0 < 12
    finally:
        idle.close()


# --------------------------------------------------------------------------------------------
# CORS, rate limit, metrics (contract sections 5, 9, 10)


def test_cors_for_configured_origins(tmp_path):
    srv = start_server(tmpdir=tmp_path, env={"CONNREG_CORS_ORIGINS": "https://app.example.com"})
    try:
        pre = requests.options(srv.url(C), timeout=10, headers={
            "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert pre.status_code in (200, 204), pre.text
        assert pre.headers.get("Access-Control-Allow-Origin") == "https://app.example.com", pre.headers
        assert "POST" in pre.headers.get("Access-Control-Allow-Methods", "").upper()
        assert "authorization" in pre.headers.get("Access-Control-Allow-Headers", "").lower()
        r = srv.api().get(C, headers={"Origin": "https://app.example.com"})
        assert r.headers.get("Access-Control-Allow-Origin") == "https://app.example.com"
        evil = srv.api().get(C, headers={"Origin": "https://evil.example.net"})
        assert "Access-Control-Allow-Origin" not in evil.headers, "CORS allowed an unlisted origin"
        pre = requests.options(srv.url(C), timeout=10, headers={
            "Origin": "https://evil.example.net", "Access-Control-Request-Method": "POST"})
        assert pre.headers.get("Access-Control-Allow-Origin") is None
    finally:
        stop_and_check(srv)


def test_no_cors_by_default(server, api):
    r = api.get(C, headers={"Origin": "https://app.example.com"})
    assert r.headers.get("Access-Control-Allow-Origin") in (None, ""), "CORS must be off unless configured"


def test_rate_limit(tmp_path):
    srv = start_server(tmpdir=tmp_path, env={"CONNREG_RATE_LIMIT": "5"})
    try:
        api = srv.api()
        codes = []
        limited = None
        for _ in range(40):
            r = api.get(C)
            codes.append(r.status_code)
            if r.status_code == 429:
                limited = r
                break
        assert limited is not None, f"no 429 after 40 quick requests with a limit of 5/s: {codes}"
        check_error(limited, 429, "too_many_requests")
        ra = limited.headers.get("Retry-After", "")
        assert ra.isdigit() and int(ra) >= 1, f"429 without a Retry-After in seconds: {ra!r}"
        # Another client is not limited by this one's traffic.
        other = srv.new_org_admin()
        assert other.get(C).status_code == 200
        # The limit recovers.
        deadline = time.monotonic() + int(ra) + 3
        while time.monotonic() < deadline:
            if api.get(C).status_code == 200:
                break
            time.sleep(0.3)
        else:
            raise AssertionError("the rate limit never recovered")
    finally:
        stop_and_check(srv)


def test_metrics(server, api):
    body = conn_body("postgres", name="metrics-probe-name", timeoutSecs=1)
    body["details"].update(host="127.0.0.1", port=1)  # refused at once
    cid = api.create(body)["connectionId"]
    assert api.get(f"{C}/{cid}").status_code == 200
    assert api.get(f"{C}/{cid}/test", timeout=30).status_code == 200
    api.get(f"{C}/{uuid.uuid4()}")  # a 404
    r = requests.get(server.url("/metrics"), timeout=10)
    assert r.status_code == 200, r.text[:200]
    assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers
    text = r.text
    samples = {}
    for l in text.splitlines():
        if not l or l.startswith("#"):
            continue
        name_part, _, value = l.rpartition(" ")
        samples[name_part] = float(value)  # every sample ends in a number
    assert any(l.startswith("# TYPE ") for l in text.splitlines())

    def sample(prefix):
        found = [v for k, v in samples.items() if k.startswith(prefix)]
        assert found, f"no sample {prefix} in /metrics"
        return sum(found)

    one = "/v2/connections/{connectionId}"
    assert sample(f'connreg_http_requests_total{{route="{one}",status="200"}}') >= 1
    assert sample(f'connreg_http_requests_total{{route="{one}",status="404"}}') >= 1
    assert sample(f'connreg_http_request_duration_seconds_count{{route="{one}"}}') >= 2
    assert sample("connreg_http_requests_in_flight") >= 1  # this request
    assert sample('connreg_store_operation_duration_seconds_count{operation="get_connection"}') >= 1
    assert sample('connreg_store_operation_duration_seconds_count{operation="create_connection') >= 1
    assert sample('connreg_connection_test_steps_total{type="postgres",step="resolve",') >= 1
    assert sample('connreg_pool_size{pool="blocking"}') >= 1
    assert sample('connreg_pool_size{pool="probe"}') >= 1
    assert sample("connreg_build_info{") == 1
    # Labels carry templates and enum values only.
    for secret_or_id in (api.token, cid, "metrics-probe-name", body["details"]["password"]):
        assert secret_or_id not in text


def test_docs_served(server):
    r = requests.get(server.url("/docs"), timeout=10)
    assert r.status_code == 200 and "text/html" in r.headers.get("Content-Type", "")
    r = requests.get(server.url("/openapi.json"), timeout=10)
    assert r.status_code == 200 and r.json().get("openapi", "").startswith("3.")


def test_sigterm_right_after_listening_exits_zero(tmp_path):
    """An orchestrator may stop a server the moment it reports ready: the SIGTERM handler must be
    in place before the "listening" line is printed (contract 10: SIGTERM → exit 0)."""
    codes = []
    for i in range(10):
        srv = start_server(tmpdir=tmp_path)  # returns as soon as the listening line is read
        srv.proc.send_signal(15)
        try:
            codes.append(srv.proc.wait(12))
        finally:
            srv.kill()
    assert codes == [0] * len(codes), \
        f"exit statuses {codes}: -15 means SIGTERM arrived before the handler was installed"
