"""Authentication: OAuth 2.0 client credentials as Sigma (contract section 2), bootstrap (11)."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest
import requests

from conftest import (Api, check_error, schemas, start_server, stop_and_check)

TOKEN = "/v2/auth/token"


def post_token(server, data=None, auth=None, headers=None):
    return requests.post(server.url(TOKEN), data=data, auth=auth, headers=headers, timeout=30)


def check_oauth_error(resp, status, error, code=None):
    """OAuth failures carry both the OAuth fields and Sigma's (contract 2)."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text}"
    body = resp.json()
    for f in ("error", "error_description", "code", "message", "requestId"):
        assert isinstance(body.get(f), str) and body[f], f"token error lacks {f}: {body}"
    assert body["error"] == error, body
    if code is not None:
        assert body["code"] == code, body
    assert body["requestId"] == resp.headers.get("X-Request-Id"), body
    schemas().validate("postToken", "default", body)
    return body


def check_token_response(resp):
    assert resp.status_code == 200, resp.text
    body = resp.json()
    schemas().validate("postToken", 200, body)
    assert set(body) >= {"access_token", "refresh_token", "token_type", "expires_in"}, body
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["access_token"], str) and len(body["access_token"]) >= 16
    assert isinstance(body["refresh_token"], str) and len(body["refresh_token"]) >= 16
    assert body["access_token"] != body["refresh_token"]
    return body


def bearer_get(server, token, path="/v2/connections"):
    return requests.get(server.url(path), headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_bootstrap_credentials_file(server):
    path = server.bootstrap_path
    assert path.exists()
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, f"bootstrap-credentials.json has mode {oct(mode)}, want 0600"
    creds = json.loads(path.read_text())
    assert set(creds) >= {"organizationId", "memberId", "clientId", "clientSecret"}, creds
    assert all(isinstance(v, str) and v for v in creds.values())
    # The secret is printed once at first start (contract 11).
    assert creds["clientSecret"] in server.output(), "the bootstrap secret was not printed"
    assert creds["clientId"] in server.output(), "the bootstrap client id was not printed"
    assert server.output().count(creds["clientSecret"]) == 1, "the bootstrap secret was printed more than once"
    # The secret is random, at least 256 bits: 43+ base64 characters or 64 hex digits.
    assert len(creds["clientSecret"]) >= 43


def test_bootstrap_not_repeated_on_restart(tmp_path):
    first = start_server(tmpdir=tmp_path)
    try:
        creds = json.loads(first.bootstrap_path.read_text())
    finally:
        stop_and_check(first)
    second = start_server(tmpdir=tmp_path)
    try:
        assert creds["clientSecret"] not in second.output(), "the secret was printed again on a second start"
        assert json.loads(second.bootstrap_path.read_text()) == creds
        api = second.api()
        assert api.fetch_token()["access_token"]
    finally:
        stop_and_check(second)


def test_token_by_form_fields(server):
    b = server.bootstrap
    body = check_token_response(post_token(server, {"grant_type": "client_credentials",
                                                    "client_id": b["clientId"],
                                                    "client_secret": b["clientSecret"]}))
    assert bearer_get(server, body["access_token"]).status_code == 200


def test_token_by_basic_auth(server):
    b = server.bootstrap
    r = post_token(server, {"grant_type": "client_credentials"}, auth=(b["clientId"], b["clientSecret"]))
    body = check_token_response(r)
    assert bearer_get(server, body["access_token"]).status_code == 200


def test_token_response_is_not_cached(server):
    b = server.bootstrap
    r = post_token(server, {"grant_type": "client_credentials", "client_id": b["clientId"],
                            "client_secret": b["clientSecret"]})
    assert r.status_code == 200
    cc = r.headers.get("Cache-Control", "")
    assert "no-store" in cc, f"token response without Cache-Control: no-store ({cc!r}), RFC 6749 5.1"


def test_wrong_secret_is_invalid_client(server):
    b = server.bootstrap
    r = post_token(server, {"grant_type": "client_credentials", "client_id": b["clientId"],
                            "client_secret": b["clientSecret"][:-2] + "xx"})
    body = check_oauth_error(r, 401, "invalid_client")
    assert b["clientSecret"] not in r.text


def test_wrong_secret_by_basic_is_invalid_client(server):
    b = server.bootstrap
    r = post_token(server, {"grant_type": "client_credentials"}, auth=(b["clientId"], "not-the-secret"))
    check_oauth_error(r, 401, "invalid_client")


def test_unknown_client_is_invalid_client(server):
    r = post_token(server, {"grant_type": "client_credentials", "client_id": "nobody",
                            "client_secret": "nothing-at-all-really"})
    check_oauth_error(r, 401, "invalid_client")


def test_missing_credentials_is_invalid_client(server):
    r = post_token(server, {"grant_type": "client_credentials"})
    assert r.status_code in (400, 401), r.text
    check_oauth_error(r, r.status_code, "invalid_client" if r.status_code == 401 else "invalid_request")


def test_unknown_grant_type(server):
    b = server.bootstrap
    r = post_token(server, {"grant_type": "password", "client_id": b["clientId"],
                            "client_secret": b["clientSecret"]})
    check_oauth_error(r, 400, "unsupported_grant_type")


def test_missing_grant_type(server):
    b = server.bootstrap
    r = post_token(server, {"client_id": b["clientId"], "client_secret": b["clientSecret"]})
    check_oauth_error(r, 400, "invalid_request")


def post_json_token(server, body, auth=None, content_type="application/json"):
    return requests.post(server.url(TOKEN), timeout=30, auth=auth,
                         headers={"Content-Type": content_type}, data=json.dumps(body))


def test_token_endpoint_takes_a_json_body_as_sigmas_openapi_document_gives_it(server):
    """A client generated from Sigma's OpenAPI document sends JSON (contract section 2): both
    grants work with it, and it validates against Sigma's schema; HTTP Basic works beside it."""
    b = server.bootstrap
    r = post_json_token(server, {"grant_type": "client_credentials", "client_id": b["clientId"],
                                 "client_secret": b["clientSecret"]})
    first = check_token_response(r)
    schemas().validate("postToken", 200, first)
    assert bearer_get(server, first["access_token"]).status_code == 200
    second = check_token_response(post_json_token(
        server, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}))
    assert bearer_get(server, second["access_token"]).status_code == 200
    basic = post_json_token(server, {"grant_type": "client_credentials"},
                            auth=(b["clientId"], b["clientSecret"]),
                            content_type="application/json; charset=utf-8")
    check_token_response(basic)
    wrong = post_json_token(server, {"grant_type": "client_credentials", "client_id": b["clientId"],
                                     "client_secret": "not-the-secret"})
    check_oauth_error(wrong, 401, "invalid_client")


def test_token_json_body_must_be_an_object_of_strings(server):
    b = server.bootstrap
    for body, field in (({"grant_type": "client_credentials", "client_id": b["clientId"],
                          "client_secret": 12345}, "client_secret"),
                        ({"grant_type": ["client_credentials"]}, "grant_type")):
        r = post_json_token(server, body)
        check_oauth_error(r, 400, "invalid_request")
        assert field in r.json()["error_description"], r.text
        assert "access_token" not in r.text
    for raw in ("[1, 2]", "{\"grant_type\": ", "\"client_credentials\""):
        r = requests.post(server.url(TOKEN), timeout=30, data=raw,
                          headers={"Content-Type": "application/json"})
        check_oauth_error(r, 400, "invalid_request")


def test_token_body_of_another_media_type_is_refused(server):
    b = server.bootstrap
    r = requests.post(server.url(TOKEN), timeout=30, headers={"Content-Type": "text/plain"},
                      data=f"grant_type=client_credentials&client_id={b['clientId']}"
                           f"&client_secret={b['clientSecret']}")
    check_oauth_error(r, 400, "invalid_request")
    assert "application/json" in r.json()["error_description"], r.text
    assert "access_token" not in r.text


def test_refresh_token_rotation(server):
    b = server.bootstrap
    first = check_token_response(post_token(server, {"grant_type": "client_credentials",
                                                     "client_id": b["clientId"],
                                                     "client_secret": b["clientSecret"]}))
    second = check_token_response(post_token(server, {"grant_type": "refresh_token",
                                                      "refresh_token": first["refresh_token"]}))
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert bearer_get(server, second["access_token"]).status_code == 200
    # A used refresh token fails with invalid_grant and revokes every token descended from it.
    check_oauth_error(post_token(server, {"grant_type": "refresh_token",
                                          "refresh_token": first["refresh_token"]}), 400, "invalid_grant")
    r = bearer_get(server, second["access_token"])
    check_error(r, 401, "unauthorized")
    check_oauth_error(post_token(server, {"grant_type": "refresh_token",
                                          "refresh_token": second["refresh_token"]}), 400, "invalid_grant")


def test_refresh_with_wrong_client_credentials(server):
    b = server.bootstrap
    first = check_token_response(post_token(server, {"grant_type": "client_credentials",
                                                     "client_id": b["clientId"],
                                                     "client_secret": b["clientSecret"]}))
    r = post_token(server, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                            "client_id": b["clientId"], "client_secret": "wrong-wrong-wrong"})
    check_oauth_error(r, 401, "invalid_client")


def test_garbage_refresh_token(server):
    r = post_token(server, {"grant_type": "refresh_token", "refresh_token": "garbage.garbage"})
    check_oauth_error(r, 400, "invalid_grant")


def test_access_token_is_not_a_refresh_token(server):
    b = server.bootstrap
    first = check_token_response(post_token(server, {"grant_type": "client_credentials",
                                                     "client_id": b["clientId"],
                                                     "client_secret": b["clientSecret"]}))
    r = post_token(server, {"grant_type": "refresh_token", "refresh_token": first["access_token"]})
    check_oauth_error(r, 400, "invalid_grant")


def check_unauthorized(resp):
    check_error(resp, 401, "unauthorized")
    www = resp.headers.get("WWW-Authenticate", "")
    assert www.startswith("Bearer"), f"401 without WWW-Authenticate: Bearer ({www!r})"


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer garbage-token-that-was-never-issued"},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "bearer"},
    {"Authorization": "Token abc"},
], ids=["missing", "garbage", "bare-bearer", "bearer-space", "basic", "lowercase-bare", "other-scheme"])
def test_connections_need_a_valid_bearer(server, headers):
    r = requests.get(server.url("/v2/connections"), headers=headers, timeout=30)
    check_unauthorized(r)


def test_client_secret_is_not_a_bearer_token(server):
    r = bearer_get(server, server.bootstrap["clientSecret"])
    check_unauthorized(r)


@pytest.mark.parametrize("method,path", [
    ("POST", "/v2/connections"),
    ("GET", "/v2/connections/00000000-0000-4000-8000-000000000000"),
    ("PUT", "/v2/connections/00000000-0000-4000-8000-000000000000"),
    ("DELETE", "/v2/connections/00000000-0000-4000-8000-000000000000"),
    ("GET", "/v2/connections/00000000-0000-4000-8000-000000000000/test"),
])
def test_every_v2_route_needs_a_token(server, method, path):
    r = requests.request(method, server.url(path), timeout=30, json={"name": "x"} if method in ("POST", "PUT") else None)
    check_unauthorized(r)


def test_lowercase_bearer_scheme_is_accepted(server):
    # RFC 7235: the auth scheme is case-insensitive.
    api = server.api()
    r = requests.get(server.url("/v2/connections"), headers={"Authorization": f"bearer {api.token}"}, timeout=30)
    assert r.status_code == 200, r.text


def test_expired_token(tmp_path):
    srv = start_server("--token-ttl", "1", tmpdir=tmp_path)
    try:
        body = srv.api().fetch_token()
        assert body["expires_in"] == 1, body
        t0 = time.monotonic()
        assert bearer_get(srv, body["access_token"]).status_code == 200
        deadline = t0 + 6
        while True:
            r = bearer_get(srv, body["access_token"])
            if r.status_code != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        check_unauthorized(r)
        assert time.monotonic() - t0 >= 0.9, "the token expired before its lifetime"
    finally:
        stop_and_check(srv)


def test_tokens_never_logged(server):
    api = Api(server, server.bootstrap["clientId"], server.bootstrap["clientSecret"])
    body = api.fetch_token()
    bearer_get(server, body["access_token"])
    post_token(server, {"grant_type": "client_credentials", "client_id": server.bootstrap["clientId"],
                        "client_secret": "wrong-secret-value-123"})
    n = len(server.log_events())
    server.wait_for_log(lambda e: False, timeout=0.5)  # the access log may be buffered
    assert len(server.log_events()) > n or server.log_events(), "no log lines at all"
    out = "\n".join(server.lines)
    assert body["access_token"] not in out
    assert body["refresh_token"] not in out
    assert "wrong-secret-value-123" not in out


def _client_credentials(server):
    b = server.bootstrap
    return check_token_response(post_token(server, {"grant_type": "client_credentials",
                                                    "client_id": b["clientId"],
                                                    "client_secret": b["clientSecret"]}))


def _refresh(server, token):
    return post_token(server, {"grant_type": "refresh_token", "refresh_token": token})


def test_reuse_revokes_the_whole_descent(server):
    first = _client_credentials(server)
    second = check_token_response(_refresh(server, first["refresh_token"]))
    third = check_token_response(_refresh(server, second["refresh_token"]))
    assert bearer_get(server, third["access_token"]).status_code == 200
    check_oauth_error(_refresh(server, first["refresh_token"]), 400, "invalid_grant")
    check_unauthorized(bearer_get(server, third["access_token"]))
    check_oauth_error(_refresh(server, third["refresh_token"]), 400, "invalid_grant")
    # An unrelated family of the same client is untouched.
    other = _client_credentials(server)
    assert bearer_get(server, other["access_token"]).status_code == 200


def test_refresh_token_of_another_client(server):
    other = server.new_org_admin()
    first = _client_credentials(server)
    r = post_token(server, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                            "client_id": other.client_id, "client_secret": other.client_secret})
    assert r.status_code in (400, 401), r.text
    assert "access_token" not in r.json()
    check_oauth_error(r, r.status_code, "invalid_grant" if r.status_code == 400 else "invalid_client")


def test_refresh_token_expires(tmp_path):
    srv = start_server("--refresh-ttl", "1", tmpdir=tmp_path)
    try:
        b = srv.bootstrap
        first = check_token_response(post_token(srv, {"grant_type": "client_credentials",
                                                      "client_id": b["clientId"],
                                                      "client_secret": b["clientSecret"]}))
        time.sleep(2.2)  # the refresh lifetime is 1 s; nothing to poll without consuming the token
        check_oauth_error(_refresh(srv, first["refresh_token"]), 400, "invalid_grant")
    finally:
        stop_and_check(srv)


def test_revoked_client_refresh_fails(server):
    api = server.new_org_admin()
    tokens = api.fetch_token()
    server.cli("client", "revoke", "--client", api.client_id)
    r = _refresh(server, tokens["refresh_token"])
    assert r.status_code in (400, 401), r.text
    assert "access_token" not in r.json()
    check_unauthorized(bearer_get(server, tokens["access_token"]))
