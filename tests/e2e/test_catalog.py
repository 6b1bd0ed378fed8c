"""The warehouse catalog (contract section 13) through the HTTP API, against the real PostgreSQL
and MariaDB servers that scripts/test-databases.sh starts (their ports and passwords are in the
file $CONNREG_TEST_DB_ENV), on the store of the run (SQLite, or PostgreSQL with
CONNREG_E2E_BACKEND=postgres). Each test makes a schema (PostgreSQL) or tables (MariaDB) of its
own with a unique name and syncs only that, so the suites running at once do not disturb each
other. Every 2xx answer of one of Sigma's operations is validated against Sigma's schema of it
(expect_ok)."""
from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid

import pytest

from conftest import (Api, check_durations_text, check_error, expect_ok, start_server, stop_and_check,
                      probe_db_env as env, walk_pages)

C = "/v2/connections"
PATHS = "/v2/connections/paths"
DATABASE, WRITER = "connreg_probe", "connreg_writer"


def psql(sql: str) -> None:
    e = env()
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                    "-p", e["CONNREG_TEST_PG_PORT"], "-U", WRITER, "-d", DATABASE, "-c", sql],
                   check=True, capture_output=True, timeout=60,
                   env={**os.environ, "PGPASSWORD": e["CONNREG_TEST_PG_WRITER_PASSWORD"]})


def mysql(sql: str) -> None:
    e = env()
    subprocess.run(["mariadb", "-h", "127.0.0.1", "-P", e["CONNREG_TEST_MYSQL_PORT"], "-u", WRITER,
                    f"-p{e['CONNREG_TEST_MYSQL_WRITER_PASSWORD']}", DATABASE, "-e", sql],
                   check=True, capture_output=True, timeout=60)


def pg_connection(api: Api, **extra) -> str:
    e = env()
    details = {"type": "postgres", "host": "127.0.0.1", "port": int(e["CONNREG_TEST_PG_PORT"]),
               "user": WRITER, "password": e["CONNREG_TEST_PG_WRITER_PASSWORD"], "database": DATABASE,
               **extra}
    return api.create({"name": f"cat-{uuid.uuid4().hex[:8]}", "details": details,
                       "timeoutSecs": 20})["connectionId"]


@pytest.fixture
def schema():
    """A PostgreSQL schema of this test: two tables (one with comments and the type families), a
    view, dropped at the end."""
    name = f"cat_{uuid.uuid4().hex[:10]}"
    psql(f"""
        CREATE SCHEMA {name};
        CREATE TABLE {name}.orders (
          id bigint NOT NULL, amount numeric(10,2), note text, paid boolean,
          at timestamptz, day date, tags text[], doc jsonb, raw bytea);
        COMMENT ON TABLE {name}.orders IS 'every order';
        COMMENT ON COLUMN {name}.orders.amount IS 'in euros';
        CREATE TABLE {name}.customers (id int NOT NULL, email varchar(200));
        CREATE VIEW {name}.big_orders AS SELECT id, amount FROM {name}.orders WHERE amount > 100;
    """)
    yield name
    psql(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def sync(api: Api, cid: str, path: list[str], succeed: bool = True) -> dict:
    """POST .../sync answered 200; with `succeed`, a finished successful sync."""
    body = expect_ok(api.post(f"{C}/{cid}/sync", {"path": path}, timeout=60), "syncConnectionPath")
    if succeed:
        assert "status" not in body and set(body) >= {"syncedAt", "durationMs"}, body
    else:
        assert body["status"] == "FAILED", body
    return body


def walk_paths(api: Api, limit: int = 1000, **params) -> tuple[list[dict], set[int]]:
    return walk_pages(api, PATHS, "listConnectionPaths", limit, **params)


def by_path(entries: list[dict]) -> dict[tuple, dict]:
    return {tuple(e["path"]): e for e in entries}


def columns(api: Api, table_id: str, page_size: int = 1000) -> list[dict]:
    out, token = [], None
    for _ in range(100):
        params = {"pageSize": page_size}
        if token:
            params["pageToken"] = token
        body = expect_ok(api.get(f"{C}/tables/{table_id}/columns", params=params),
                         "listConnectionTableColumns")
        assert len(body["entries"]) <= page_size
        out += body["entries"]
        token = body.get("nextPageToken")
        if not token:
            return out
    raise AssertionError("the columns walk did not end")


def test_sync_finds_scopes_tables_views_and_columns_with_types_and_comments(api, schema):
    cid = pg_connection(api)
    done = sync(api, cid, [schema])
    assert done["added"] == 4 and done["removed"] == 0, done  # the schema, two tables, a view
    assert set(done) >= {"syncedAt", "added", "changed", "removed", "durationMs"}
    entries, totals = walk_paths(api, connectionId=cid)
    assert totals == {len(entries)}
    paths = by_path(entries)
    assert set(paths) == {(schema,), (schema, "orders"), (schema, "customers"),
                          (schema, "big_orders")}, paths
    assert paths[(schema,)]["kind"] == "scope"
    assert {paths[(schema, t)]["kind"] for t in ("orders", "customers", "big_orders")} == {"table"}
    # Ordered by path, element by element, byte order.
    assert [tuple(e["path"]) for e in entries] == sorted(paths)

    orders = paths[(schema, "orders")]["urlId"]
    cols = columns(api, orders)
    assert [c["name"] for c in cols] == ["id", "amount", "note", "paid", "at", "day", "tags", "doc",
                                         "raw"]
    family = {c["name"]: c["type"]["type"] for c in cols}
    assert family == {"id": "number", "amount": "number", "note": "text", "paid": "logical",
                      "at": "datetime", "day": "date", "tags": "array", "doc": "variant",
                      "raw": "binary"}, family
    assert cols[0]["type"]["nullable"] is False and cols[1]["type"]["nullable"] is True
    assert cols[1]["type"]["warehouseType"] == "numeric(10,2)"
    assert cols[1]["description"] == "in euros" and "description" not in cols[0]
    assert cols[6]["type"]["elementType"]["type"] == "text"
    assert all(c["visibility"] == "included" for c in cols)
    # Paged columns give the same list.
    assert columns(api, orders, page_size=2) == cols

    one = expect_ok(api.get(f"{PATHS}/{orders}"), "getInodeConnectionPath")
    assert one["connectionId"] == cid and one["path"] == [schema, "orders"]


def test_a_full_sync_leaves_system_schemas_out(api, schema):
    cid = pg_connection(api)
    sync(api, cid, [])
    entries, _ = walk_paths(api, connectionId=cid)
    tops = {e["path"][0] for e in entries}
    assert schema in tops and "probe_w" in tops
    assert not tops & {"information_schema", "pg_catalog", "pg_toast"}, tops


def test_ids_stay_across_syncs_removed_objects_are_marked_and_come_back_with_their_id(api, schema):
    cid = pg_connection(api)
    sync(api, cid, [schema])
    before = by_path(walk_paths(api, connectionId=cid)[0])
    again = sync(api, cid, [schema])
    assert (again["added"], again["changed"], again["removed"]) == (0, 0, 0), again
    assert by_path(walk_paths(api, connectionId=cid)[0]) == before

    customers = before[(schema, "customers")]["urlId"]
    psql(f"DROP TABLE {schema}.customers; CREATE TABLE {schema}.invoices (n int)")
    changed = sync(api, cid, [schema])
    assert (changed["added"], changed["removed"]) == (1, 1), changed
    now = by_path(walk_paths(api, connectionId=cid)[0])
    assert (schema, "customers") not in now and (schema, "invoices") in now
    assert now[(schema, "orders")]["urlId"] == before[(schema, "orders")]["urlId"]
    gone = expect_ok(api.get(f"{PATHS}/{customers}"), "getInodeConnectionPath")
    assert gone["removed"] is True
    assert {c["visibility"] for c in columns(api, customers)} == {"removed"}

    psql(f"CREATE TABLE {schema}.customers (id int NOT NULL, email varchar(200), phone text)")
    back = sync(api, cid, [schema])
    assert back["added"] == 1, back
    now = by_path(walk_paths(api, connectionId=cid)[0])
    assert now[(schema, "customers")]["urlId"] == customers
    assert [c["name"] for c in columns(api, customers)] == ["id", "email", "phone"]


def test_a_column_change_is_a_change_and_a_dropped_column_is_removed(api, schema):
    cid = pg_connection(api)
    sync(api, cid, [schema])
    orders = by_path(walk_paths(api, connectionId=cid)[0])[(schema, "orders")]["urlId"]
    psql(f"ALTER TABLE {schema}.orders DROP COLUMN raw, ADD COLUMN extra int")
    changed = sync(api, cid, [schema, "orders"])
    assert changed["changed"] == 1 and changed["added"] == 0, changed
    vis = {c["name"]: c["visibility"] for c in columns(api, orders)}
    assert vis["raw"] == "removed" and vis["extra"] == "included" and vis["id"] == "included"


def test_lookup_finds_a_synced_path_and_a_table_created_after_the_sync(api, schema):
    cid = pg_connection(api)
    sync(api, cid, [schema])
    found = expect_ok(api.post(f"/v2/connection/{cid}/lookup", {"path": [schema, "orders"]}),
                      "lookupConnection")
    assert found["kind"] == "table" and found["url"] == f"{PATHS}/{found['inodeId']}"
    scope = expect_ok(api.post(f"/v2/connection/{cid}/lookup", {"path": [schema]}),
                      "lookupConnection")
    assert scope["kind"] == "scope" and f"parentId={scope['inodeId']}" in scope["url"]
    children, totals = walk_paths(api, connectionId=cid, parentId=scope["inodeId"])
    assert {tuple(e["path"]) for e in children} == {(schema, "orders"), (schema, "customers"),
                                                    (schema, "big_orders")}
    assert totals == {3}

    psql(f"CREATE TABLE {schema}.fresh (x int, y text)")
    fresh = expect_ok(api.post(f"/v2/connection/{cid}/lookup", {"path": [schema, "fresh"]}),
                      "lookupConnection")
    assert [c["name"] for c in columns(api, fresh["inodeId"])] == ["x", "y"]
    check_error(api.post(f"/v2/connection/{cid}/lookup", {"path": [schema, "no_such_table"]}), 404)
    check_error(api.post(f"/v2/connection/{cid}/lookup", {"path": []}), 400)
    check_error(api.post(f"/v2/connection/{cid}/lookup", {"path": [schema, "a", "b"]}), 400)
    check_error(api.post(f"/v2/connection/{cid}/lookup", {"path": [1]}), 400)


def test_paths_page_by_keyset_with_an_exact_total(api, schema):
    psql(";".join(f"CREATE TABLE {schema}.t{i:02d} (x int)" for i in range(12)))
    cid = pg_connection(api)
    sync(api, cid, [schema])
    whole, _ = walk_paths(api, connectionId=cid)
    paged, totals = walk_paths(api, limit=5, connectionId=cid)
    assert paged == whole and totals == {len(whole)} and len(whole) == 16
    numbered = expect_ok(api.get(PATHS, params={"connectionId": cid, "limit": 5, "page": 2}),
                         "listConnectionPaths")
    assert numbered["entries"] == whole[5:10]
    first = expect_ok(api.get(PATHS, params={"connectionId": cid, "limit": 5}),
                      "listConnectionPaths")
    # A token of one listing is refused by another.
    check_error(api.get(PATHS, params={"limit": 5, "page": first["nextPage"]}), 400)


def test_permissions_by_connection_grant_path_grant_and_team(server, api, schema):
    cid = pg_connection(api)
    sync(api, cid, [schema])
    paths = by_path(walk_paths(api, connectionId=cid)[0])
    orders = paths[(schema, "orders")]["urlId"]
    customers = paths[(schema, "customers")]["urlId"]
    viewer = server.new_member_client(api.organization_id, "viewer")

    def visible() -> set[tuple]:
        return {tuple(e["path"]) for e in walk_paths(viewer, connectionId=cid)[0]}

    assert visible() == set()
    check_error(viewer.get(f"{PATHS}/{orders}"), 404)
    check_error(viewer.get(f"{C}/tables/{orders}/columns"), 404)
    check_error(viewer.post(f"/v2/connection/{cid}/lookup", {"path": [schema, "orders"]}), 404)
    check_error(viewer.post(f"{C}/{cid}/sync", {"path": []}), 403)
    check_error(viewer.get(f"{PATHS}/{orders}/grants"), 403)

    # A path grant on one table: that table and its schema (as a scope), nothing else.
    grant = {"grants": [{"grantee": {"memberId": viewer.member_id}, "permission": "usage"}]}
    expect_ok(api.post(f"{PATHS}/{orders}/grants", grant), "createConnectionPathGrant")
    assert visible() == {(schema,), (schema, "orders")}
    page = expect_ok(viewer.get(PATHS, params={"connectionId": cid}), "listConnectionPaths")
    assert page["total"] == 2
    expect_ok(viewer.get(f"{PATHS}/{orders}"), "getInodeConnectionPath")
    assert len(columns(viewer, orders)) == 9
    check_error(viewer.get(f"{PATHS}/{customers}"), 404)
    grants = expect_ok(api.get(f"{PATHS}/{orders}/grants"), "listConnectionPathGrants")
    assert [(g["inodeId"], g["memberId"]) for g in grants["entries"]] == [(orders, viewer.member_id)]
    expect_ok(api.delete(f"{PATHS}/{orders}/grants/{grants['entries'][0]['grantId']}"),
              "deleteConnectionPathGrant")
    assert visible() == set()

    # A team's grant on the schema: its subtree; archiving the team takes it away.
    team = api.post("/v2/teams", {"name": f"t-{uuid.uuid4().hex[:8]}", "members": [viewer.member_id]})
    assert team.status_code in (200, 201), team.text
    team_id = team.json()["teamId"]
    scope = paths[(schema,)]["urlId"]
    expect_ok(api.post(f"{PATHS}/{scope}/grants",
                       {"grants": [{"grantee": {"teamId": team_id}, "permission": "usage"}]}),
              "createConnectionPathGrant")
    assert visible() == set(paths)
    assert api.delete(f"/v2/teams/{team_id}").status_code == 200
    assert visible() == set()

    # A connection grant: everything of the connection.
    r = api.post(f"{C}/{cid}/grants",
                 {"grants": [{"grantee": {"memberId": viewer.member_id}, "permission": "usage"}]})
    assert r.status_code == 200, r.text
    assert visible() == set(paths)
    found = expect_ok(viewer.post(f"/v2/connection/{cid}/lookup", {"path": [schema, "orders"]}),
                      "lookupConnection")
    assert found["inodeId"] == orders


def test_ids_of_another_organization_answer_404(server, api, schema):
    cid = pg_connection(api)
    sync(api, cid, [schema])
    orders = by_path(walk_paths(api, connectionId=cid)[0])[(schema, "orders")]["urlId"]
    other = server.new_org_admin()
    check_error(other.get(f"{PATHS}/{orders}"), 404)
    check_error(other.get(f"{C}/tables/{orders}/columns"), 404)
    check_error(other.get(f"{PATHS}/{orders}/grants"), 404)
    check_error(other.post(f"{C}/{cid}/sync", {"path": []}), 404)
    check_error(other.post(f"/v2/connection/{cid}/lookup", {"path": [schema, "orders"]}), 404)
    check_error(other.get(PATHS, params={"connectionId": cid}), 404)
    check_error(other.get(PATHS, params={"parentId": orders}), 404)
    assert walk_paths(other)[0] == []
    check_error(api.get(f"{PATHS}/{uuid.uuid4()}"), 404)
    check_error(api.get(f"{PATHS}/not-an-id"), 404)


def test_an_archived_connection_is_409_and_keeps_its_catalog(api, schema):
    cid = pg_connection(api)
    sync(api, cid, [schema])
    assert api.delete(f"{C}/{cid}").status_code == 200
    check_error(api.post(f"{C}/{cid}/sync", {"path": []}), 409)
    assert len(walk_paths(api, connectionId=cid)[0]) == 4


def test_an_unreachable_warehouse_fails_with_steps_never_a_500(api):
    cid = api.create({"name": "unreachable", "timeoutSecs": 5, "details": {
        "type": "postgres", "host": "127.0.0.1", "port": 1, "user": "u", "password": "pw-unreachable",
        "database": "d"}})["connectionId"]
    body = sync(api, cid, [], succeed=False)
    connect = next(s for s in body["steps"] if s["name"] == "connect")
    assert connect["status"] == "FAILED" and connect["code"] == "connection_refused", body
    last_r = api.get(f"{C}/{cid}/sync")
    check_durations_text(last_r.text)  # the stored steps, under the server's number rule
    last = last_r.json()
    assert last["status"] == "FAILED" and last["syncId"] == body["syncId"]
    check_error(api.post(f"/v2/connection/{cid}/lookup", {"path": ["public", "t"]}), 404)


def test_a_wrong_password_fails_the_authenticate_step(api):
    e = env()
    cid = api.create({"name": "badpw", "timeoutSecs": 10, "details": {
        "type": "postgres", "host": "127.0.0.1", "port": int(e["CONNREG_TEST_PG_PORT"]),
        "user": WRITER, "password": "wrong-password-123", "database": DATABASE}})["connectionId"]
    body = sync(api, cid, [], succeed=False)
    auth = next(s for s in body["steps"] if s["name"] == "authenticate")
    assert auth["code"] == "auth_failed", body
    assert "wrong-password-123" not in str(body)


def test_a_sync_past_the_wait_answers_202_and_ends_with_a_timeout_step():
    """A warehouse that accepts the TCP connection and never answers: the request waits the
    test deadline (1 s) and answers 202; the sync ends at its own deadline (3 s) with a timeout
    step, and GET .../sync shows both states."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []
    stop = threading.Event()

    def hold():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                pass

    threading.Thread(target=hold, daemon=True).start()
    srv = start_server(env={"CONNREG_SYNC_TIMEOUT": "3"})
    try:
        api = srv.api()
        cid = api.create({"name": "silent", "timeoutSecs": 1, "details": {
            "type": "postgres", "host": "127.0.0.1", "port": listener.getsockname()[1], "user": "u",
            "password": "pw-silent-1234", "database": "d"}})["connectionId"]
        started = time.monotonic()
        r = api.post(f"{C}/{cid}/sync", {"path": []}, timeout=30)
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "RUNNING" and time.monotonic() - started < 2.9
        sync_id = r.json()["syncId"]
        running = api.get(f"{C}/{cid}/sync").json()
        assert running["status"] == "RUNNING" and running["syncId"] == sync_id
        # The same path joins the running sync.
        again = api.post(f"{C}/{cid}/sync", {"path": []}, timeout=30)
        assert again.status_code in (200, 202) and again.json()["syncId"] == sync_id
        for _ in range(100):
            last = api.get(f"{C}/{cid}/sync").json()
            if last["status"] != "RUNNING":
                break
            time.sleep(0.1)
        assert last["status"] == "FAILED", last
        assert any(s.get("code") == "timeout" for s in last["steps"]), last
        assert time.monotonic() - started < 8
    finally:
        stop.set()
        for s in held:
            s.close()
        listener.close()
        stop_and_check(srv)


def test_mysql_paths_are_database_and_table():
    """MariaDB: [database, table], with column comments and types."""
    e = env()
    table = f"cat_{uuid.uuid4().hex[:8]}"
    mysql(f"CREATE TABLE {table} (id INT NOT NULL COMMENT 'the key', name VARCHAR(40), "
          f"born DATE, score DOUBLE, flag TINYINT(1), blob_col BLOB) COMMENT 'people'")
    srv = start_server()
    try:
        api = srv.api()
        cid = api.create({"name": "maria", "timeoutSecs": 20, "details": {
            "type": "mysql", "host": "127.0.0.1", "port": int(e["CONNREG_TEST_MYSQL_PORT"]),
            "user": WRITER, "password": e["CONNREG_TEST_MYSQL_WRITER_PASSWORD"],
            "database": DATABASE}})["connectionId"]
        sync(api, cid, [DATABASE])
        paths = by_path(walk_paths(api, connectionId=cid)[0])
        assert (DATABASE,) in paths and (DATABASE, table) in paths
        cols = columns(api, paths[(DATABASE, table)]["urlId"])
        assert [c["name"] for c in cols] == ["id", "name", "born", "score", "flag", "blob_col"]
        assert cols[0]["description"] == "the key" and cols[0]["type"]["nullable"] is False
        # TINYINT(1) is how MySQL prints BOOLEAN.
        assert [c["type"]["type"] for c in cols] == ["number", "text", "date", "number", "logical",
                                                     "binary"]
        mysql(f"DROP TABLE {table}")
        assert sync(api, cid, [DATABASE])["removed"] >= 1
        gone = expect_ok(api.get(f"{PATHS}/{paths[(DATABASE, table)]['urlId']}"),
                         "getInodeConnectionPath")
        assert gone["removed"] is True
    finally:
        mysql(f"DROP TABLE IF EXISTS {table}")
        stop_and_check(srv)
