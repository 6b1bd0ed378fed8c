"""The seed document's own examples (shared/seed/000_*.txt), typos repaired, in the order a reader
of the document would try them: create, list, get, update with restore, test, delete."""

from __future__ import annotations

import pytest

from conftest import check_connection, check_error, etag_value, schemas

C = "/v2/connections"

# The "Example Request" of Create a Connection, with its missing comma and its placeholders
# ("timeoutSecs": "integer", "useFriendlyNames": boolean) repaired.
SEED_CREATE = {
    "details": {
        "type": "snowflake",
        "account": "tester",
        "host": "testing.snowtest.com",
        "password": "",
        "role": "A_ROLE",
        "user": "THE_DEV",
        "warehouse": "TEST_WAREHOUSE",
        "writeAccess": {
            "writeDatabase": "PUBLIC_API",
            "writeSchema": "PUBLIC",
            "materializationWarehouse": "",
        },
    },
    "name": "test_write_7_ctas",
    "timeoutSecs": 10,
    "useFriendlyNames": True,
}

# The documented response shape (the "Response" blocks of the seed).
DOCUMENTED_FIELDS = {"organizationId": str, "connectionId": str, "isSample": bool, "lastActiveAt": str,
                     "name": str, "type": str, "useOauth": bool, "createdBy": str, "updatedBy": str,
                     "createdAt": str, "updatedAt": str, "isArchived": bool}


def documented_shape(obj):
    for f, t in DOCUMENTED_FIELDS.items():
        assert f in obj, f"the documented field {f} is missing"
        assert isinstance(obj[f], t), f"{f} is not a {t.__name__}: {obj[f]!r}"


@pytest.fixture(scope="module")
def created(api):
    r = api.post(C, SEED_CREATE)
    assert r.status_code == 201, r.text
    obj = r.json()
    schemas().validate("createConnection", 201, obj)
    return r


def test_create_seed_example(api, created):
    obj = created.json()
    documented_shape(obj)
    check_connection(obj, organization_id=api.organization_id)
    assert obj["name"] == "test_write_7_ctas"
    assert obj["type"] == "snowflake"
    assert obj["isSample"] is False and obj["useOauth"] is False and obj["isArchived"] is False
    assert obj["createdBy"] == obj["updatedBy"] == api.member_id
    assert obj["createdAt"] == obj["updatedAt"] == obj["lastActiveAt"]
    # Sigma's names for the rest (contract 3).
    assert obj["account"] == "tester"
    assert obj["warehouse"] == "TEST_WAREHOUSE"
    assert obj["user"] == "THE_DEV"
    assert obj["role"] == "A_ROLE"
    assert obj["writeAccess"] is True
    assert obj["friendlyName"] is True
    assert obj["timeout"] == {"default": 10}
    d = obj["details"]
    assert d["writeAccess"] == SEED_CREATE["details"]["writeAccess"]
    assert d["host"] == "testing.snowtest.com" and d["account"] == "tester"
    assert "password" not in d
    # An empty password is a value (contract 4).
    if "secrets" in obj:
        assert obj["secrets"].get("password", {}).get("isSet") is True
    assert created.headers["Location"].endswith(f"/v2/connections/{obj['connectionId']}")


def test_seed_example_with_cli_style_typos_is_refused(api):
    # The seed's cURL placeholders taken literally are not valid: "integer" is not a number.
    body = dict(SEED_CREATE, timeoutSecs="integer")
    check_error(api.post(C, body), 400, "bad_request")


def test_list_seed_example(api, created):
    cid = created.json()["connectionId"]
    r = api.get(C, params={"limit": 10})
    assert r.status_code == 200
    page = r.json()
    schemas().validate("listConnections", 200, page)
    assert set(page) >= {"entries", "hasMore", "nextPage", "total"}
    match = [e for e in page["entries"] if e["connectionId"] == cid]
    assert len(match) == 1
    documented_shape(match[0])
    assert match[0] == created.json() or match[0]["version"] == created.json()["version"]


def test_get_seed_example(api, created):
    cid = created.json()["connectionId"]
    r = api.get(f"{C}/{cid}")
    assert r.status_code == 200
    obj = r.json()
    schemas().validate("getConnection", 200, obj)
    documented_shape(obj)
    assert obj == created.json()


def test_update_seed_example_with_restore(api, created):
    cid = created.json()["connectionId"]
    assert api.delete(f"{C}/{cid}").json() == {}
    body = dict(SEED_CREATE, restore=True)
    r = api.put(f"{C}/{cid}", body)
    assert r.status_code == 200, r.text
    obj = r.json()
    schemas().validate("updateConnection", 200, obj)
    documented_shape(obj)
    check_connection(obj)
    assert obj["isArchived"] is False
    assert obj["connectionId"] == cid
    assert obj["createdAt"] == created.json()["createdAt"]
    assert etag_value(r) == str(obj["version"])
    assert obj["version"] == created.json()["version"] + 2  # archive, then restore-and-update
    # The password was not in the body: it stays set.
    if "secrets" in obj:
        assert obj["secrets"].get("password", {}).get("isSet") is True


def test_test_seed_example(api, created):
    cid = created.json()["connectionId"]
    r = api.get(f"{C}/{cid}/test", timeout=75)
    assert r.status_code == 200, r.text
    result = r.json()
    schemas().validate("testConnection", 200, result)
    assert result["read"] in ("SUCCESS", "FAILED")
    assert result["write"] in ("SUCCESS", "FAILED"), "writeAccess is configured, so write is not DISABLED"
    if result["read"] == "FAILED":
        assert result["write"] == "FAILED"
        assert isinstance(result.get("readError"), str) and result["readError"]
    if "steps" in result:
        names = [s["name"] for s in result["steps"]]
        assert names and set(names) <= {"resolve", "connect", "tls", "authenticate", "query", "write"}, names
        for s in result["steps"]:
            assert s["status"] in ("SUCCESS", "FAILED", "SKIPPED"), s
            assert isinstance(s["durationMs"], (int, float)) and s["durationMs"] >= 0
            if "code" in s:
                assert s["code"] in ("dns_failure", "egress_denied", "connection_refused", "timeout",
                                     "tls_failure", "auth_failed", "permission_denied", "not_found",
                                     "protocol_error", "driver_unavailable"), s
        if result["read"] == "FAILED":
            assert any(s["status"] == "FAILED" for s in result["steps"])
    if "durationMs" in result:
        assert result["durationMs"] <= 60_000 + 5_000
    after = api.get_conn(cid)
    assert "lastTest" in after, "lastTest appears after the first test (contract 3)"
    assert after["lastTest"]["read"] == result["read"] and after["lastTest"]["write"] == result["write"]
    if result["read"] == "FAILED":
        assert after["lastActiveAt"] == created.json()["lastActiveAt"], \
            "lastActiveAt moves only when a query reached the warehouse"


def test_delete_seed_example(api, created):
    cid = created.json()["connectionId"]
    r = api.delete(f"{C}/{cid}")
    assert r.status_code == 200
    assert r.json() == {}
    schemas().validate("deleteConnection", 200, r.json())
    assert api.get_conn(cid)["isArchived"] is True
    assert cid not in {e["connectionId"] for e in api.list(limit=1000)["entries"]}


def test_seed_curl_forms(api):
    """The seed's cURL lines: POST to `/v2/connections/` (trailing slash), `accept` and
    `Content-Type: application/json` sent on body-less GET and DELETE requests too."""
    headers = {"accept": "application/json"}
    r = api.post(C + "/", dict(SEED_CREATE, name="curl-form"), headers=headers)
    assert r.status_code == 201, r.text
    cid = r.json()["connectionId"]
    json_ct = {"accept": "application/json", "Content-Type": "application/json"}
    r = api.request("GET", C + "?limit=5", headers=json_ct)
    assert r.status_code == 200, r.text
    r = api.request("GET", f"{C}/{cid}", headers=json_ct)
    assert r.status_code == 200, r.text
    r = api.request("GET", f"{C}/{cid}/test", headers=json_ct, timeout=75)
    assert r.status_code == 200, r.text
    schemas().validate("testConnection", 200, r.json())
    r = api.request("DELETE", f"{C}/{cid}", headers=json_ct)
    assert r.status_code == 200 and r.json() == {}, r.text
