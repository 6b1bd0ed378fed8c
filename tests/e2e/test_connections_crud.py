"""Connection objects: create, read, replace, merge, archive, restore, preconditions, idempotency,
secrets, tenancy, routing (contract sections 1, 3, 4, 5, 9)."""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest
import requests

from conftest import (SECRET_FIELDS, TYPES, check_connection, check_error, conn_body, etag_value,
                      schemas, uniq, valid_details)

C = "/v2/connections"


def create_with_response(api, body):
    api._remember_secrets(body)
    r = api.post(C, body)
    assert r.status_code == 201, r.text
    return r


# --------------------------------------------------------------------------------------------
# create and read


def test_users_numbers_come_back_as_written_not_1_5E0(api):
    """Issue 17: a description's 1.5 came back as 1.5E0. A user's numbers come back as written
    wherever the stored double keeps the text: the create's answer, GET one, the list page."""
    written = '{"a":1.5,"b":-0.25,"c":0.1,"d":18446744073709551615,"e":-9223372036854775808,"f":[2.5e-07]}'
    body = conn_body("postgres", name=uniq("numbers"))
    text = json.dumps(body)[:-1] + ', "description": ' + written + "}"
    api._remember_secrets(body)
    r = api.request("POST", C, data=text)
    assert r.status_code == 201, r.text
    cid = r.json()["connectionId"]
    listing = api.get(C, params={"search": body["name"], "limit": 5})
    for got in (r.text, api.get(f"{C}/{cid}").text, listing.text):
        assert '"description":' + written in got, got
        assert "E" not in got.split('"description":', 1)[1].split("}", 1)[0], got


def test_create_returns_201_location_etag(api):
    body = conn_body("postgres", description={"team": "finance", "tags": ["a", "b"]}, timeoutSecs=45,
                     useFriendlyNames=False)
    r = create_with_response(api, body)
    obj = r.json()
    schemas().validate("createConnection", 201, obj)
    check_connection(obj, organization_id=api.organization_id)
    cid = obj["connectionId"]
    loc = r.headers.get("Location", "")
    assert loc.endswith(f"/v2/connections/{cid}"), f"Location {loc!r}"
    assert obj["name"] == body["name"]
    assert obj["type"] == "postgres"
    assert obj["isSample"] is False and obj["isArchived"] is False and obj["useOauth"] is False
    assert obj["createdBy"] == api.member_id and obj["updatedBy"] == api.member_id
    assert obj["createdAt"] == obj["updatedAt"]
    assert obj["lastActiveAt"] == obj["createdAt"], "lastActiveAt starts equal to createdAt"
    assert obj["timeout"] == {"default": 45}
    assert obj["friendlyName"] is False
    assert obj["user"] == "reader"
    assert obj["description"] == body["description"]
    assert obj["version"] == 1
    assert etag_value(r) == str(obj["version"])
    expected_details = {k: v for k, v in body["details"].items() if k != "password"}
    for k, v in expected_details.items():
        assert obj["details"].get(k) == v, (k, obj["details"])
    assert "password" not in obj["details"]
    # The Location header points to the object.
    follow = api.get(loc if loc.startswith("/") else "/" + loc.split("/", 3)[3])
    assert follow.status_code == 200 and follow.json()["connectionId"] == cid


def test_friendly_names_default_true(api):
    obj = api.create(conn_body("mysql"))
    assert obj.get("friendlyName") is True, obj


def test_get_one(api):
    created = api.create(conn_body("snowflake"))
    r = api.get(f"{C}/{created['connectionId']}")
    assert r.status_code == 200
    got = r.json()
    schemas().validate("getConnection", 200, got)
    check_connection(got, organization_id=api.organization_id)
    assert etag_value(r) == str(got["version"])
    for k in ("connectionId", "name", "type", "createdAt", "updatedAt", "organizationId", "version"):
        assert got[k] == created[k], k
    # Snowflake's account, warehouse, user, role are copied to the top level (contract 3).
    assert got["account"] == "acme-xy12345" and got["warehouse"] == "COMPUTE_WH"
    assert got["user"] == "READER" and got["role"] == "ANALYST"


def test_get_unknown_id_is_404(api):
    check_error(api.get(f"{C}/{uuid.uuid4()}"), 404, "not_found")


@pytest.mark.parametrize("bad", ["not-a-uuid", "12345", "C265DEC6-0F17-4CE0-88A4-E54ECCDE0AF8",
                                 "%27%20OR%201%3D1--", "a" * 300])
def test_get_malformed_id_is_404(api, bad):
    check_error(api.get(f"{C}/{bad}"), 404, "not_found")


def test_list_contains_created(api):
    created = api.create(conn_body("bigQuery"))
    entries = api.list_all()
    assert created["connectionId"] in {e["connectionId"] for e in entries}


# --------------------------------------------------------------------------------------------
# PUT


def test_put_replaces(api):
    created = api.create(conn_body("postgres", description={"x": 1}, timeoutSecs=10))
    cid = created["connectionId"]
    time.sleep(0.005)
    # A new host needs the password again (contract 4); null clears it.
    new_details = {"type": "postgres", "host": "replica.example.invalid", "database": "other",
                   "password": None}
    new_name = uniq("renamed")
    r = api.put(f"{C}/{cid}", {"name": new_name, "details": new_details})
    assert r.status_code == 200, r.text
    obj = r.json()
    schemas().validate("updateConnection", 200, obj)
    check_connection(obj, organization_id=api.organization_id)
    assert obj["connectionId"] == cid
    assert obj["name"] == new_name
    assert obj["details"]["host"] == "replica.example.invalid" and obj["details"]["database"] == "other"
    assert "user" not in obj["details"], "PUT replaces: a field absent from the body is gone"
    assert "user" not in obj
    assert "description" not in obj or obj["description"] in (None, {}), "PUT replaces the description"
    assert obj.get("timeout", {}).get("default", 30) != 10, "PUT replaces timeoutSecs"
    assert obj["version"] == created["version"] + 1
    assert etag_value(r) == str(obj["version"])
    assert obj["createdAt"] == created["createdAt"]
    assert obj["updatedAt"] > created["updatedAt"]
    assert obj["updatedBy"] == api.member_id
    again = api.get_conn(cid)
    assert again["name"] == new_name and again["version"] == obj["version"]


def test_put_can_change_type(api):
    created = api.create(conn_body("postgres"))
    r = api.put(f"{C}/{created['connectionId']}", conn_body("mysql", name=created["name"]))
    assert r.status_code == 200, r.text
    obj = check_connection(r.json())
    assert obj["type"] == "mysql" and obj["details"]["type"] == "mysql"


def test_put_unknown_is_404(api):
    check_error(api.put(f"{C}/{uuid.uuid4()}", conn_body()), 404, "not_found")


def test_put_invalid_body_is_400_and_changes_nothing(api):
    created = api.create(conn_body("postgres"))
    cid = created["connectionId"]
    check_error(api.put(f"{C}/{cid}", {"name": "x"}), 400, "bad_request")
    check_error(api.put(f"{C}/{cid}", {"name": "x", "details": {"type": "postgres", "host": "h"}}), 400)
    assert api.get_conn(cid)["version"] == created["version"]


def test_put_on_archived_needs_restore(api):
    created = api.create(conn_body("redshift"))
    cid = created["connectionId"]
    assert api.delete(f"{C}/{cid}").status_code == 200
    body = conn_body("redshift", name=uniq("restored"))
    check_error(api.put(f"{C}/{cid}", body), 409, "conflict")
    assert api.get_conn(cid)["isArchived"] is True
    r = api.put(f"{C}/{cid}", dict(body, restore=False))
    check_error(r, 409, "conflict")
    r = api.put(f"{C}/{cid}", dict(body, restore=True))
    assert r.status_code == 200, r.text
    obj = check_connection(r.json())
    schemas().validate("updateConnection", 200, obj)
    assert obj["isArchived"] is False and obj["name"] == body["name"]
    assert cid in {e["connectionId"] for e in api.list_all()}
    # restore on an active connection is harmless.
    r = api.put(f"{C}/{cid}", dict(body, restore=True))
    assert r.status_code == 200 and r.json()["isArchived"] is False


def test_put_restore_must_be_boolean(api):
    created = api.create(conn_body())
    r = api.put(f"{C}/{created['connectionId']}", dict(conn_body(), restore="true"))
    body = check_error(r, 400, "bad_request")
    assert "restore" in body["message"]


# --------------------------------------------------------------------------------------------
# PATCH (deprecated)


def test_patch_merges_details(api):
    created = api.create(conn_body("postgres", description={"k": "v"}))
    cid = created["connectionId"]
    r = api.patch(f"{C}/{cid}", {"details": {"database": "merged_db"}})
    assert r.status_code == 200, r.text
    obj = r.json()
    schemas().validate("updateConnectionDeprecated", 200, obj)
    check_connection(obj)
    assert obj["details"]["database"] == "merged_db"
    assert obj["details"]["host"] == created["details"]["host"], "PATCH keeps unnamed details"
    assert obj["details"]["user"] == created["details"]["user"]
    assert obj["name"] == created["name"]
    assert obj["description"] == {"k": "v"}
    assert obj["version"] == created["version"] + 1
    assert etag_value(r) == str(obj["version"])
    assert r.headers.get("Deprecation") == "true"
    link = r.headers.get("Link", "")
    assert link == f'</v2/connections/{cid}>; rel="successor-version"', link
    if "secrets" in created:
        assert obj.get("secrets", {}).get("password", {}).get("isSet") is True, "PATCH lost the password"


def test_patch_top_level_replaces(api):
    created = api.create(conn_body("mysql", timeoutSecs=20))
    cid = created["connectionId"]
    new_name = uniq("patched")
    r = api.patch(f"{C}/{cid}", {"name": new_name, "timeoutSecs": 99})
    assert r.status_code == 200, r.text
    obj = check_connection(r.json())
    assert obj["name"] == new_name and obj["timeout"] == {"default": 99}
    assert obj["details"] == created["details"]


def test_patch_validates_the_merged_result(api):
    created = api.create(conn_body("mysql"))
    cid = created["connectionId"]
    check_error(api.patch(f"{C}/{cid}", {"details": {"port": 0}}), 400, "bad_request")
    check_error(api.patch(f"{C}/{cid}", {"details": {"hots": "x"}}), 400, "bad_request")
    check_error(api.patch(f"{C}/{cid}", {"bogus": 1}), 400, "bad_request")
    assert api.get_conn(cid)["version"] == created["version"]


def test_patch_unknown_is_404(api):
    check_error(api.patch(f"{C}/{uuid.uuid4()}", {"name": "x"}), 404, "not_found")


# --------------------------------------------------------------------------------------------
# DELETE (archive)


def test_delete_archives(api):
    created = api.create(conn_body("alloydb"))
    cid = created["connectionId"]
    r = api.delete(f"{C}/{cid}")
    assert r.status_code == 200, r.text
    assert r.json() == {}
    schemas().validate("deleteConnection", 200, r.json())
    r = api.delete(f"{C}/{cid}")
    assert r.status_code == 200 and r.json() == {}, "DELETE of an archived connection answers 200 {}"
    got = api.get_conn(cid)
    assert got["isArchived"] is True
    assert got["version"] == created["version"] + 1, "archiving is a change; a repeat is not"
    assert cid not in {e["connectionId"] for e in api.list_all()}
    archived_too = api.list_all(includeArchived="true")
    match = [e for e in archived_too if e["connectionId"] == cid]
    assert len(match) == 1 and match[0]["isArchived"] is True


def test_delete_unknown_is_404(api):
    check_error(api.delete(f"{C}/{uuid.uuid4()}"), 404, "not_found")


def test_test_of_archived_is_409(api):
    created = api.create(conn_body("postgres"))
    cid = created["connectionId"]
    api.delete(f"{C}/{cid}")
    check_error(api.get(f"{C}/{cid}/test"), 409, "conflict")


# --------------------------------------------------------------------------------------------
# Preconditions


def test_if_match_on_put(api):
    created = api.create(conn_body())
    cid = created["connectionId"]
    r = api.put(f"{C}/{cid}", conn_body(), headers={"If-Match": '"999"'})
    check_error(r, 412, "precondition_failed")
    assert api.get_conn(cid)["version"] == created["version"]
    r = api.get(f"{C}/{cid}")
    tag = r.headers["ETag"]
    r = api.put(f"{C}/{cid}", conn_body(), headers={"If-Match": tag})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == created["version"] + 1
    # The old tag no longer matches.
    check_error(api.put(f"{C}/{cid}", conn_body(), headers={"If-Match": tag}), 412, "precondition_failed")


def test_if_match_on_delete(api):
    created = api.create(conn_body())
    cid = created["connectionId"]
    check_error(api.delete(f"{C}/{cid}", headers={"If-Match": '"12345"'}), 412, "precondition_failed")
    assert api.get_conn(cid)["isArchived"] is False
    tag = api.get(f"{C}/{cid}").headers["ETag"]
    r = api.delete(f"{C}/{cid}", headers={"If-Match": tag})
    assert r.status_code == 200 and r.json() == {}
    assert api.get_conn(cid)["isArchived"] is True


def test_if_match_on_patch(api):
    created = api.create(conn_body())
    cid = created["connectionId"]
    check_error(api.patch(f"{C}/{cid}", {"name": "p"}, headers={"If-Match": '"77"'}), 412, "precondition_failed")
    tag = api.get(f"{C}/{cid}").headers["ETag"]
    assert api.patch(f"{C}/{cid}", {"name": "p"}, headers={"If-Match": tag}).status_code == 200


def test_if_none_match(api):
    created = api.create(conn_body())
    cid = created["connectionId"]
    r = api.get(f"{C}/{cid}")
    tag = r.headers["ETag"]
    r304 = api.get(f"{C}/{cid}", headers={"If-None-Match": tag})
    assert r304.status_code == 304, r304.text
    assert r304.content == b""
    assert r304.headers.get("ETag") == tag
    api.patch(f"{C}/{cid}", {"name": uniq("changed")})
    r200 = api.get(f"{C}/{cid}", headers={"If-None-Match": tag})
    assert r200.status_code == 200 and r200.json()["version"] == created["version"] + 1
    assert api.get(f"{C}/{cid}", headers={"If-None-Match": "*"}).status_code == 304


# --------------------------------------------------------------------------------------------
# Idempotency-Key


def test_idempotency_key(api, other_api):
    key = uuid.uuid4().hex
    body = conn_body("mysql")
    before = api.list(limit=1)["total"]
    r1 = api.post(C, body, headers={"Idempotency-Key": key})
    assert r1.status_code == 201, r1.text
    r2 = api.post(C, body, headers={"Idempotency-Key": key})
    assert r2.status_code == 201, r2.text
    assert r2.json()["connectionId"] == r1.json()["connectionId"]
    assert r2.json() == r1.json(), "a repeat returns the first response"
    assert r2.headers.get("Location") == r1.headers.get("Location")
    assert api.list(limit=1)["total"] == before + 1, "a repeat must not create a second connection"
    different = dict(body, name=body["name"] + "-other")
    check_error(api.post(C, different, headers={"Idempotency-Key": key}), 409, "conflict")
    assert api.list(limit=1)["total"] == before + 1
    # Another tenant's identical key is a different key.
    r3 = other_api.post(C, body, headers={"Idempotency-Key": key})
    assert r3.status_code == 201, r3.text
    assert r3.json()["connectionId"] != r1.json()["connectionId"]
    assert r3.json()["organizationId"] == other_api.organization_id


def test_without_idempotency_key_creates_twice(api):
    body = conn_body("mysql")
    a = api.create(body)
    b = api.create(body)
    assert a["connectionId"] != b["connectionId"]


# --------------------------------------------------------------------------------------------
# Secrets


def _all_text(resp: requests.Response) -> str:
    return resp.text + "\n" + "\n".join(f"{k}: {v}" for k, v in resp.headers.items())


@pytest.mark.sqlite_only
def test_password_never_returned(api, server):
    password = "Pw-" + uuid.uuid4().hex + "-!x"
    body = conn_body("postgres")
    body["details"]["password"] = password
    r = api.post(C, body)
    assert r.status_code == 201
    responses = [r]
    cid = r.json()["connectionId"]
    responses.append(api.get(f"{C}/{cid}"))
    responses.append(api.get(C, params={"limit": 1000}))
    responses.append(api.get(C, params={"search": body["name"]}))
    responses.append(api.put(f"{C}/{cid}", {"name": body["name"], "details": {k: v for k, v in body["details"].items() if k != "password"}}))
    responses.append(api.patch(f"{C}/{cid}", {"details": {"database": "x2"}}))
    for resp in responses:
        assert resp.status_code in (200, 201), resp.text
        assert password not in _all_text(resp)
        obj = resp.json()
        for conn in obj.get("entries", [obj]):
            assert "password" not in conn.get("details", {})
    created = r.json()
    if "secrets" in created:
        assert created["secrets"]["password"]["isSet"] is True
        after_put = responses[4].json()
        assert after_put["secrets"]["password"]["isSet"] is True, "PUT without password must keep it"
        assert after_put["secrets"]["password"].get("updatedAt") == created["secrets"]["password"].get("updatedAt")
        # null clears it.
        cleared = api.put(f"{C}/{cid}", {"name": body["name"],
                                         "details": dict(after_put["details"], password=None)})
        assert cleared.status_code == 200, cleared.text
        assert "password" not in cleared.json().get("secrets", {}), "password: null must clear it"
        # "" is a value.
        empty = api.put(f"{C}/{cid}", {"name": body["name"], "details": dict(after_put["details"], password="")})
        assert empty.status_code == 200, empty.text
        assert empty.json().get("secrets", {}).get("password", {}).get("isSet") is True
    # Not in the logs, not in the database file in clear.
    time.sleep(0.2)
    assert password not in server.output()
    for f in os.listdir(server.tmp):
        p = server.tmp / f
        if p.is_file():
            assert password.encode() not in p.read_bytes(), f"the password is in clear in {f}"


def test_structured_password_form(api):
    password = "Pw-" + uuid.uuid4().hex
    body = conn_body("postgres")
    body["details"]["password"] = {"type": "plain", "value": password}
    api.secret_values.add(password)
    obj = api.create(body)
    assert "password" not in obj["details"]


def test_secret_fields_of_every_type_are_hidden(api):
    for kind in TYPES:
        obj = api.create(conn_body(kind))
        for f in SECRET_FIELDS:
            assert f not in obj["details"], (kind, f)


def test_type_change_drops_old_secrets(api):
    body = conn_body("postgres")
    created = api.create(body)
    assert "secrets" in created, created
    r = api.put(f"{C}/{created['connectionId']}", {"name": body["name"], "details": {
        "type": "databricks", "host": "dbc.example.invalid", "endpoint": "/sql/1.0/warehouses/x",
        "useOauth": True}})
    assert r.status_code == 200, r.text
    assert "password" not in r.json().get("secrets", {}), \
        "a secret absent from a PUT survives only when the type is unchanged"


# --------------------------------------------------------------------------------------------
# Tenancy


def test_other_org_sees_nothing(api, other_api):
    created = api.create(conn_body("postgres"))
    cid = created["connectionId"]
    path = f"{C}/{cid}"
    check_error(other_api.get(path), 404, "not_found")
    check_error(other_api.put(path, conn_body()), 404, "not_found")
    check_error(other_api.put(path, dict(conn_body(), restore=True)), 404, "not_found")
    check_error(other_api.patch(path, {"name": "hijack"}), 404, "not_found")
    check_error(other_api.delete(path), 404, "not_found")
    check_error(other_api.get(path + "/test"), 404, "not_found")
    check_error(other_api.post(path + "/test"), 404, "not_found")
    r = other_api.get(path, headers={"If-None-Match": "*"})
    check_error(r, 404, "not_found")
    ids = {e["connectionId"] for e in other_api.list_all(includeArchived="true")}
    assert cid not in ids
    assert other_api.list(search=created["name"])["total"] == 0
    after = api.get_conn(cid)
    assert after["version"] == created["version"] and after["isArchived"] is False
    assert after["name"] == created["name"]


def test_other_org_objects_are_its_own(api, other_api):
    mine = other_api.create(conn_body("mysql"))
    assert mine["organizationId"] == other_api.organization_id != api.organization_id
    assert mine["createdBy"] == other_api.member_id
    check_error(api.get(f"{C}/{mine['connectionId']}"), 404, "not_found")
    assert mine["connectionId"] not in {e["connectionId"] for e in api.list_all(includeArchived="true")}


# --------------------------------------------------------------------------------------------
# Routing


@pytest.mark.parametrize("path", ["/nope", "/v2/nope", "/v2/connections/x/y/z", "/v1/connections"])
def test_unknown_route_is_404_json(api, path):
    check_error(api.get(path), 404, "not_found")


@pytest.mark.parametrize("method,path,allowed", [
    ("PATCH", "/v2/connections", {"GET", "POST"}),
    ("DELETE", "/v2/connections", {"GET", "POST"}),
    ("POST", "/v2/connections/00000000-0000-4000-8000-000000000000", {"GET", "PUT", "PATCH", "DELETE"}),
    ("GET", "/v2/auth/token", {"POST"}),
    ("POST", "/healthz", {"GET"}),
])
def test_wrong_method_is_405_with_allow(api, method, path, allowed):
    r = api.request(method, path, json_body={} if method in ("POST", "PATCH") else None)
    check_error(r, 405, "method_not_allowed")
    allow = {m.strip() for m in r.headers.get("Allow", "").split(",") if m.strip()}
    assert allowed <= allow, f"Allow {allow} lacks {allowed - allow}"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_without_auth(server, path):
    r = requests.get(server.url(path), timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers.get("X-Request-Id")


def test_responses_are_json(api):
    created = api.create(conn_body())
    for r in (api.get(C), api.get(f"{C}/{created['connectionId']}"), api.get("/nope")):
        assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
