"""Request-body validation (contract section 4, and the body rules of section 10).

Every 400 names the JSON path of the first bad value. The module ends by checking that none of the
bad requests created anything and that the server still answers.
"""

from __future__ import annotations

import json
import re
import socket

import pytest
import requests

from conftest import (TYPES, check_connection, check_error, conn_body, connect, schemas,
                      send_until_response, SocketReader, uniq, valid_details)

C = "/v2/connections"


def bad(api, body, path_fragment=None, status=400, code="bad_request"):
    r = api.post(C, body)
    err = check_error(r, status, code)
    if path_fragment is not None:
        assert path_fragment in err["message"], \
            f"the 400 message does not name {path_fragment!r}: {err['message']!r}"
    return err


# --------------------------------------------------------------------------------------------
# One valid body per type


# More valid bodies of some types, beyond the example of each (conftest.valid_details).
VALID_VARIANTS = {
    "postgres": [valid_details("postgres", port=5432, useTls=True, writeAccess={"writeSchema": "sigma_w"})],
    "redshift": [{"type": "redshift", "host": "rs.example.invalid", "database": "dev"}],
    "alloydb": [valid_details("alloydb")],
    "mysql": [valid_details("mysql", database="shop", useTls=False, writeAccess={"writeSchema": "w"})],
    "snowflake": [valid_details("snowflake"),
                  {"type": "snowflake", "host": "acme.snowflakecomputing.com", "user": "U",
                   "privateKey": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----",
                   "privateKeyPassphrase": "pass-phrase-123"},
                  {"type": "snowflake", "account": "acme", "useOauth": True,
                   "writeAccess": {"materializationWarehouse": "MAT_WH"}},
                  {"type": "snowflake", "account": "acme", "user": "U", "password": "pw-pw-pw-pw",
                   "writeAccess": {"writeDatabase": "DB", "writeSchema": "S"},
                   "userAttributes": {"role": "r_attr", "warehouse": "w_attr"}}],
    "bigQuery": [valid_details("bigQuery", additionalProjectIds=["p2", "p3"],
                               writeAccess={"writeProject": "acme", "writeDataset": "sigma"})],
    "databricks": [valid_details("databricks", catalog="main"),
                   {"type": "databricks", "host": "dbc.example.invalid", "endpoint": "/sql/1.0/warehouses/x",
                    "useOauth": True}],
    "starburst": [valid_details("starburst", catalog="hive", writeAccess={"writeCatalog": "c", "writeSchema": "s"})],
    "sqlserver": [valid_details("sqlserver", database="master", useReadUncommittedIsolation=True)],
    "azuresql": [valid_details("azuresql", writeAccess={"writeDatabase": "d", "writeSchema": "s"})],
}


@pytest.mark.parametrize("kind", TYPES)
def test_valid_body_of_each_type(api, kind):
    for details in [valid_details(kind)] + VALID_VARIANTS.get(kind, []):
        body = {"name": uniq(kind), "details": details}
        obj = api.create(body)
        assert obj["type"] == details["type"] == kind
        assert obj["details"]["type"] == kind
        assert obj["writeAccess"] is ("writeAccess" in details), obj
        if details.get("useOauth"):
            assert obj["useOauth"] is True


def test_default_ports(api):
    pg = api.create({"name": uniq("pg"), "details": {"type": "postgres", "host": "h.invalid", "database": "d"}})
    rs = api.create({"name": uniq("rs"), "details": {"type": "redshift", "host": "h.invalid", "database": "d"}})
    # The default port is 5432 (redshift 5439); when shown, it must be the documented one.
    if "port" in pg["details"]:
        assert pg["details"]["port"] == 5432
    if "port" in rs["details"]:
        assert rs["details"]["port"] == 5439


def test_unknown_details_field_message(api):
    body = conn_body("postgres")
    body["details"]["hots"] = "db.example.invalid"
    err = bad(api, body)
    assert err["message"] == "details.hots is not a field of a postgres connection", err["message"]


@pytest.mark.parametrize("kind,field", [
    ("mysql", "database_name"), ("snowflake", "projectId"), ("bigQuery", "host"),
    ("databricks", "password"), ("sqlserver", "host"), ("redshift", "server"),
])
def test_field_not_of_this_type(api, kind, field):
    body = conn_body(kind)
    body["details"][field] = "x"
    err = bad(api, body, f"details.{field}")
    assert kind in err["message"]


@pytest.mark.parametrize("kind,field", [
    ("postgres", "host"), ("postgres", "database"), ("redshift", "database"), ("mysql", "port"),
    ("mysql", "user"), ("mysql", "password"), ("bigQuery", "projectId"), ("databricks", "endpoint"),
    ("databricks", "host"), ("starburst", "port"), ("sqlserver", "server"), ("azuresql", "database"),
])
def test_missing_required_field(api, kind, field):
    body = conn_body(kind)
    del body["details"][field]
    bad(api, body, f"details.{field}")


def test_missing_type(api):
    body = conn_body("postgres")
    del body["details"]["type"]
    bad(api, body, "details.type")


def test_unknown_type(api):
    body = conn_body("postgres")
    body["details"]["type"] = "oracle"
    bad(api, body, "details.type")


def test_type_is_case_sensitive(api):
    body = conn_body("bigQuery")
    body["details"]["type"] = "bigquery"
    bad(api, body, "details.type")


@pytest.mark.parametrize("kind,field,value", [
    ("postgres", "host", 5), ("postgres", "database", ["a"]), ("postgres", "useTls", "true"),
    ("mysql", "user", None), ("snowflake", "warehouse", {"a": 1}), ("bigQuery", "additionalProjectIds", "p2"),
    ("bigQuery", "additionalProjectIds", [1, 2]), ("databricks", "useOauth", 1),
])
def test_wrong_json_type(api, kind, field, value):
    body = conn_body(kind)
    body["details"][field] = value
    bad(api, body, f"details.{field}")


@pytest.mark.parametrize("port", [0, 65536, -1, "5432", 5432.5, True, 1e10])
def test_bad_port(api, port):
    body = conn_body("mysql")
    body["details"]["port"] = port
    bad(api, body, "details.port")


@pytest.mark.parametrize("port", [1, 65535])
def test_port_bounds_accepted(api, port):
    body = conn_body("mysql")
    body["details"]["port"] = port
    assert api.create(body)["details"]["port"] == port


@pytest.mark.parametrize("host", ["db example.com", "db/example.com", "db.example.com/x", "db?x=1", "a=b",
                                  "db\nexample.com", "db\x00x", "", "host;sslmode=disable"])
def test_bad_host(api, host):
    body = conn_body("postgres")
    body["details"]["host"] = host
    bad(api, body, "details.host")


@pytest.mark.parametrize("host", ["10.1.2.3", "::1", "db-1.internal", "[::1]"])
def test_host_forms(api, host):
    body = conn_body("postgres")
    body["details"]["host"] = host
    r = api.post(C, body)
    if host == "[::1]":
        assert r.status_code in (201, 400), r.text  # bracketed literal: either reading is defensible
    else:
        assert r.status_code == 201, r.text


def test_bad_server_for_sqlserver(api):
    body = conn_body("sqlserver")
    body["details"]["server"] = "sql server/x"
    bad(api, body, "details.server")


def test_string_of_4097_chars(api):
    body = conn_body("postgres")
    body["details"]["database"] = "d" * 4097
    bad(api, body, "details.database")
    body["details"]["database"] = "d" * 4096
    api.create(body)


def test_long_secret_strings(api):
    body = conn_body("postgres")
    body["details"]["password"] = "p" * 4097
    bad(api, body, "details.password")
    body = conn_body("bigQuery")
    body["details"]["serviceAccount"] = json.dumps({"k": "x" * 60000})
    api.secret_values.add("x" * 60000)
    api.create(body)  # up to 64 KiB
    body["details"]["serviceAccount"] = json.dumps({"k": "x" * 66000})
    bad(api, body, "details.serviceAccount")


def test_write_access_fields_required(api):
    body = conn_body("postgres")
    body["details"]["writeAccess"] = {}
    bad(api, body, "details.writeAccess.writeSchema")
    body = conn_body("bigQuery")
    body["details"]["writeAccess"] = {"writeProject": "p"}
    bad(api, body, "details.writeAccess.writeDataset")
    body = conn_body("postgres")
    body["details"]["writeAccess"] = {"writeSchema": "s", "extra": 1}
    bad(api, body, "details.writeAccess.extra")


def test_snowflake_login_rules(api):
    bad(api, {"name": "n", "details": {"type": "snowflake", "user": "U", "password": "pw-pw-pw"}},
        None)  # neither account nor host
    bad(api, {"name": "n", "details": {"type": "snowflake", "account": "a", "user": "U"}}, None)  # no login
    bad(api, {"name": "n", "details": {"type": "snowflake", "account": "a", "user": "U",
                                       "password": "pw-pw-pw", "authType": "oauth"}}, "details.authType")


def test_databricks_needs_token_or_oauth(api):
    bad(api, {"name": "n", "details": {"type": "databricks", "host": "h.invalid",
                                       "endpoint": "/sql/1.0/warehouses/x"}}, None)


def test_password_forms(api):
    ok = conn_body("postgres")
    ok["details"]["password"] = {"type": "plain", "value": "pw-pw-pw-pw"}
    api.create(ok)
    body = conn_body("postgres")
    body["details"]["password"] = {"type": "vault", "value": "x"}
    bad(api, body, "details.password")
    body["details"]["password"] = 1234
    bad(api, body, "details.password")


# --------------------------------------------------------------------------------------------
# Top level


def test_unknown_top_level_field(api):
    err = bad(api, dict(conn_body(), nmae="typo"), "nmae")


def test_details_required(api):
    bad(api, {"name": uniq()}, "details")


def test_details_must_be_object(api):
    bad(api, {"name": uniq(), "details": "postgres"}, "details")


def test_body_must_be_object(api):
    check_error(api.post(C, [conn_body()]), 400, "bad_request")
    check_error(api.post(C, data=b"null"), 400, "bad_request")
    check_error(api.post(C, data=b""), 400, "bad_request")


@pytest.mark.parametrize("name", [None, "", "   ", "\t\n", "n" * 256, "bad\x07name", "a\x00b", "line\nbreak", 5, ["x"]],
                         ids=["missing", "empty", "spaces", "whitespace", "256", "bell", "nul", "newline", "number", "list"])
def test_bad_name(api, name):
    body = conn_body()
    if name is None:
        del body["name"]
    else:
        body["name"] = name
    bad(api, body, "name")


def test_name_bounds(api):
    assert api.create(conn_body(name="n" * 255))["name"] == "n" * 255
    assert api.create(conn_body(name="x"))["name"] == "x"
    # 255 characters, not bytes.
    assert api.create(conn_body(name="é" * 255))["name"] == "é" * 255
    bad(api, conn_body(name="é" * 256), "name")


@pytest.mark.parametrize("value", ["30", 0, 86401, -5, 1.5, True])
def test_bad_timeout_secs(api, value):
    bad(api, conn_body(timeoutSecs=value), "timeoutSecs")


@pytest.mark.parametrize("value", [1, 86400])
def test_timeout_secs_bounds(api, value):
    assert api.create(conn_body(timeoutSecs=value))["timeout"] == {"default": value}


@pytest.mark.parametrize("value", ["yes", 1, "true"])
def test_bad_use_friendly_names(api, value):
    bad(api, conn_body(useFriendlyNames=value), "useFriendlyNames")


@pytest.mark.parametrize("value", ["text", ["a"], 5, True])
def test_description_must_be_object(api, value):
    bad(api, conn_body(description=value), "description")


def test_description_size(api):
    small = {"k": "v" * (16 * 1024 - 100)}
    assert api.create(conn_body(description=small))["description"] == small
    big = {"k": "v" * (16 * 1024 + 1)}
    bad(api, conn_body(description=big), "description")


def test_restore_not_allowed_on_post(api):
    bad(api, conn_body(restore=True), "restore")


def nested(depth: int) -> dict:
    """A body whose JSON nesting depth (the top-level object counting 1) is `depth`."""
    node: dict = {}
    for _ in range(depth - 2):
        node = {"a": node}
    return conn_body(description=node)


def test_nesting_33_deep(api):
    r = api.post(C, nested(33))
    check_error(r, 400, "bad_request")


def test_nesting_32_deep_accepted(api):
    r = api.post(C, nested(32))
    assert r.status_code == 201, r.text


def test_deeply_nested_array_does_not_crash(api, server):
    r = api.post(C, data=b"[" * 100000 + b"]" * 100000)
    check_error(r, 400, "bad_request")
    assert requests.get(server.url("/healthz"), timeout=5).status_code == 200


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None, "application/jsonx"])
def test_content_type_must_be_json(api, ctype):
    headers = {"Content-Type": ctype} if ctype else {}
    r = api.request("POST", C, data=json.dumps(conn_body()).encode(), content_type=None, headers=headers)
    check_error(r, 415, "unsupported_media_type")


def test_content_type_with_charset_accepted(api):
    r = api.request("POST", C, data=json.dumps(conn_body()).encode(), content_type="application/json; charset=utf-8")
    assert r.status_code == 201, r.text


def test_put_and_patch_need_json_too(api):
    created = api.create(conn_body())
    cid = created["connectionId"]
    check_error(api.request("PUT", f"{C}/{cid}", data=json.dumps(conn_body()), content_type="text/plain"),
                415, "unsupported_media_type")
    check_error(api.request("PATCH", f"{C}/{cid}", data='{"name":"x"}', content_type="text/plain"),
                415, "unsupported_media_type")


def test_malformed_json_names_byte_offset(api):
    raw = b'{"name":"x" "details":{}}'  # the error is at byte 11/12
    err = check_error(api.post(C, data=raw), 400, "bad_request")
    numbers = {int(n) for n in re.findall(r"\d+", err["message"])}
    assert numbers & {11, 12}, f"no byte offset in {err['message']!r}"
    raw = b'{"name":"x", "details": {"type": "postgres",, }}'
    err = check_error(api.post(C, data=raw), 400, "bad_request")
    numbers = {int(n) for n in re.findall(r"\d+", err["message"])}
    assert numbers & {43, 44, 45}, f"no byte offset in {err['message']!r}"


@pytest.mark.parametrize("raw", [b"{", b'{"name": }', b"{'name': 'x'}", b'{"name":"x",}', b"\xef\xbb\xbf{}x",
                                 b'{"name":"x"} {"name":"y"}', b"NaN", b'{"a":1e999999}'])
def test_malformed_json(api, raw):
    check_error(api.post(C, data=raw), 400, "bad_request")


def test_invalid_utf8_in_string(api):
    raw = b'{"name":"caf\xe9 \xff\xfe","details":{"type":"postgres","host":"h.invalid","database":"d"}}'
    check_error(api.post(C, data=raw), 400, "bad_request")
    raw = b'{"name":"ok","details":{"type":"postgres","host":"h.invalid","database":"\xc0\xaf"}}'
    check_error(api.post(C, data=raw), 400, "bad_request")


def test_lone_surrogate_escape(api):
    raw = b'{"name":"bad \\ud800 x","details":{"type":"postgres","host":"h.invalid","database":"d"}}'
    r = api.post(C, data=raw)
    assert r.status_code in (201, 400), r.text
    if r.status_code == 201:
        json.dumps(r.json())  # the stored name must still serialize as valid JSON


def test_duplicate_keys(api):
    raw = b'{"name":"a","name":"b","details":{"type":"postgres","host":"h.invalid","database":"d"}}'
    r = api.post(C, data=raw)
    # Either refuse or take one consistently; never a 500.
    assert r.status_code in (201, 400), r.text


def test_body_of_2_mib_is_413(api, server):
    payload = json.dumps(conn_body(description={"k": "x" * (2 * 1024 * 1024)})).encode()
    s = connect(server, timeout=15)
    try:
        head = (f"POST /v2/connections HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {api.token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode()
        s.sendall(head)
        send_until_response(s, payload)
        resp = SocketReader(s, 15).read_response()
    finally:
        s.close()
    assert resp is not None, "the server closed the connection without answering 413"
    assert resp.status == 413, resp
    body = resp.json()
    assert body["code"] == "payload_too_large"
    assert body.get("requestId") and body["requestId"] == resp.headers.get("x-request-id"), resp


def test_body_of_2_mib_chunked_is_413(api, server):
    s = connect(server, timeout=15)
    try:
        head = (f"POST /v2/connections HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {api.token}\r\n"
                f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
        s.sendall(head)
        chunk = b"x" * 65536
        data = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 32 + b"0\r\n\r\n"
        send_until_response(s, data)
        resp = SocketReader(s, 15).read_response()
    finally:
        s.close()
    assert resp is not None and resp.status == 413, resp


def test_nothing_created_by_bad_requests(api, server):
    """Runs last in this module: every connection seen was made by a request answered 201."""
    entries = api.list_all(includeArchived="true")
    # Every listed entry has a valid name and type; none carries a name a bad request sent.
    for e in entries:
        check_connection(e)
        assert e["name"].strip(), e
        assert len(e["name"]) <= 255, e["name"][:20]
        assert not e["name"].startswith("bad"), e
        assert "hots" not in e.get("details", {})
    assert requests.get(server.url("/healthz"), timeout=5).status_code == 200
    names = [e["name"] for e in entries]
    assert "   " not in names and "" not in names


@pytest.fixture(scope="module", autouse=True)
def _count_created(api):
    """Counts the 201s of this module and compares with the store at the end."""
    created: list[str] = []
    orig_request = api.request

    def counting_request(method, path, **kw):
        r = orig_request(method, path, **kw)
        if method == "POST" and path == C and r.status_code == 201:
            created.append(r.json()["connectionId"])
        return r

    before = api.list(limit=1, includeArchived="true")["total"]
    api.request = counting_request
    yield
    del api.request
    after = api.list(limit=1, includeArchived="true")["total"]
    assert after - before == len(created), \
        f"{after - before} connections appeared but only {len(created)} requests were answered 201"


def test_name_length_counts_after_trimming(api):
    name = "  " + "t" * 255 + "  "
    r = api.post(C, conn_body(name=name))
    assert r.status_code == 201, f"255 characters after trimming must be accepted: {r.text[:200]}"
    assert r.json()["name"].strip() == "t" * 255


def test_description_exactly_16_kib(api):
    exact = {"k": "v" * (16 * 1024 - len('{"k":""}'))}
    assert len(json.dumps(exact, separators=(",", ":"))) == 16 * 1024
    r = api.post(C, conn_body(description=exact))
    assert r.status_code == 201, f"a 16 KiB description must be accepted: {r.text[:200]}"
    over = {"k": exact["k"] + "v"}
    bad(api, conn_body(description=over), "description")


def test_string_limit_counts_characters(api):
    body = conn_body("postgres")
    body["details"]["database"] = "é" * 4096
    r = api.post(C, body)
    assert r.status_code == 201, f"4096 characters (8192 bytes) must be accepted: {r.text[:200]}"
    body["details"]["database"] = "é" * 4097
    bad(api, body, "details.database")
