"""Operating the server (contract sections 10 and 11): persistence across restarts, durability of
acknowledged writes under kill -9, the master key file, secrets at rest, migrations, logs, and
races that only show under concurrency."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import (Api, check_connection, check_error, conn_body, etag_value, start_server,
                      stop_and_check)

C = "/v2/connections"


@pytest.mark.sqlite_only
def test_key_file_and_store_files(server):
    key = server.tmp / "master.key"
    assert key.exists(), "no master key file beside the database on first start"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600, "master.key must be mode 0600"


def test_timestamps_are_now(api):
    obj = api.create(conn_body())
    created = dt.datetime.strptime(obj["createdAt"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    skew = abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds())
    assert skew < 120, f"createdAt is {skew:.0f}s away from now: not UTC?"


def test_restart_keeps_everything(tmp_path):
    srv = start_server(tmpdir=tmp_path)
    api = srv.api()
    made = api.create(conn_body("bigQuery", description={"keep": True}))
    gone = api.create(conn_body("mysql"))
    api.delete(f"{C}/{gone['connectionId']}")
    stop_and_check(srv)
    again = start_server(tmpdir=tmp_path)
    try:
        api2 = again.api()
        got = api2.get_conn(made["connectionId"])
        for k in ("name", "createdAt", "updatedAt", "version", "details", "description"):
            assert got[k] == made[k], k
        if "secrets" in made:
            assert got["secrets"] == made["secrets"], "secrets lost across a restart"
        assert api2.get_conn(gone["connectionId"])["isArchived"] is True
    finally:
        stop_and_check(again)


def test_acknowledged_write_survives_kill_9(tmp_path):
    srv = start_server(tmpdir=tmp_path)
    api = srv.api()
    ids = [api.create(conn_body())["connectionId"] for _ in range(5)]
    cid = ids[-1]
    r = api.put(f"{C}/{cid}", conn_body(name="after-put"))
    assert r.status_code == 200
    srv.proc.kill()
    srv.proc.wait(5)
    again = start_server(tmpdir=tmp_path)
    try:
        api2 = again.api()
        for i in ids:
            assert api2.get(f"{C}/{i}").status_code == 200, "an acknowledged create was lost by kill -9"
        assert api2.get_conn(cid)["name"] == "after-put", "an acknowledged update was lost by kill -9"
    finally:
        stop_and_check(again)


def test_migrate_is_idempotent(server):
    r = server.cli("migrate", check=False)
    assert r.returncode == 0, r.stderr
    assert server.api().get(C).status_code == 200


@pytest.mark.sqlite_only
def test_secrets_at_rest(api, server):
    marker = {"password": "PwAtRest-" + uuid.uuid4().hex,
              "token": "dapiAtRest" + uuid.uuid4().hex,
              "serviceAccount": "SaAtRest-" + uuid.uuid4().hex}
    pg = conn_body("postgres")
    pg["details"]["password"] = marker["password"]
    db = conn_body("databricks")
    db["details"]["token"] = marker["token"]
    bq = conn_body("bigQuery")
    bq["details"]["serviceAccount"] = json.dumps({"type": "service_account", "private_key": marker["serviceAccount"]})
    for body in (pg, db, bq):
        api.create(body)
    api.secret_values.update(marker.values())
    for f in server.tmp.iterdir():
        if f.is_file():
            data = f.read_bytes()
            for name, value in marker.items():
                assert value.encode() not in data, f"the {name} is in clear in {f.name}"
    out = server.output()
    for name, value in marker.items():
        assert value not in out, f"the {name} appears in the server's output"


def test_logs_never_carry_bodies(api, server):
    marker = "BodyMarker" + uuid.uuid4().hex
    api.create(conn_body(description={"note": marker}))
    api.post(C, {"name": marker, "bogus": marker})
    ev = server.wait_for_log(lambda e: e.get("method") == "POST" and e.get("status") == 400, timeout=8)
    assert ev is not None, "no access log line for a request"
    assert marker not in server.output(), "a request body reached the log"


def test_access_log_fields(api, server):
    rid = "fields-" + uuid.uuid4().hex[:8]
    api.get(f"{C}/{uuid.uuid4()}", headers={"X-Request-Id": rid})
    ev = server.wait_for_log(lambda e: e.get("requestId") == rid, timeout=8)
    assert ev is not None
    for f in ("time", "requestId", "method", "route", "status", "memberId"):
        assert f in ev, f"access log line lacks {f}: {ev}"
    assert any(k in ev for k in ("duration", "durationMs")), ev
    assert ev["status"] == 404


@pytest.mark.sqlite_only
def test_key_rotate_while_serving(tmp_path):
    srv = start_server(tmpdir=tmp_path)
    try:
        api = srv.api()
        body = conn_body("postgres")
        made = api.create(body)
        old_key = (tmp_path / "master.key").read_bytes()
        r = srv.cli("key", "rotate", "--settle", "1", check=False, timeout=60)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "master.key").read_bytes() != old_key, "key rotate left the key file unchanged"
        assert stat.S_IMODE(os.stat(tmp_path / "master.key").st_mode) == 0o600
        got = api.get_conn(made["connectionId"])
        if "secrets" in made:
            assert got["secrets"]["password"]["isSet"] is True
        # The server keeps working with secrets after the rotation: a new one, and an update that
        # keeps the stored one.
        api.create(conn_body("postgres"))
        r = api.put(f"{C}/{made['connectionId']}", {"name": made["name"], "details": made["details"]})
        assert r.status_code == 200, r.text
        r = api.post(f"{C}/{made['connectionId']}/test", timeout=70)
        assert r.status_code == 200, r.text
    finally:
        stop_and_check(srv)
    again = start_server(tmpdir=tmp_path)
    try:
        assert again.api().get_conn(made["connectionId"])["name"] == made["name"]
        r = again.api().post(f"{C}/{made['connectionId']}/test", timeout=70)
        assert r.status_code == 200, r.text
    finally:
        stop_and_check(again)


# --------------------------------------------------------------------------------------------
# Races


def test_if_match_race_has_one_winner(api):
    created = api.create(conn_body())
    cid = created["connectionId"]
    tag = api.get(f"{C}/{cid}").headers["ETag"]
    barrier = threading.Barrier(8)

    def one(i):
        s = requests.Session()
        barrier.wait()
        return api.request("PUT", f"{C}/{cid}", json_body=conn_body(name=f"racer-{i}"),
                           headers={"If-Match": tag}, session=s).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, range(8)))
    assert codes.count(200) == 1, f"If-Match must let exactly one writer win: {codes}"
    assert codes.count(412) == 7, codes
    assert api.get_conn(cid)["version"] == created["version"] + 1


def test_version_counts_every_concurrent_change(api):
    created = api.create(conn_body())
    cid = created["connectionId"]

    def one(i):
        return api.request("PATCH", f"{C}/{cid}", json_body={"name": f"p-{i}"}, session=requests.Session()).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(one, range(12)))
    assert codes == [200] * 12, codes
    assert api.get_conn(cid)["version"] == created["version"] + 12, "lost update: versions were skipped"


def test_idempotency_race_creates_one(api):
    key = "race-" + uuid.uuid4().hex
    body = conn_body("mysql")
    before = api.list(limit=1)["total"]
    barrier = threading.Barrier(8)

    def one(_):
        s = requests.Session()
        barrier.wait()
        r = api.request("POST", C, json_body=body, headers={"Idempotency-Key": key}, session=s)
        return r.status_code, (r.json().get("connectionId") if r.status_code == 201 else None)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    ids = {cid for code, cid in results if code == 201}
    assert len(ids) == 1, f"concurrent repeats of one Idempotency-Key created {len(ids)} connections: {results}"
    assert all(code in (201, 409) for code, _ in results), results
    assert api.list(limit=1)["total"] == before + 1


def test_refresh_token_race(server):
    b = server.bootstrap
    first = requests.post(server.url("/v2/auth/token"), timeout=10, data={
        "grant_type": "client_credentials", "client_id": b["clientId"], "client_secret": b["clientSecret"]}).json()
    barrier = threading.Barrier(6)

    def one(_):
        barrier.wait()
        return requests.post(server.url("/v2/auth/token"), timeout=10, data={
            "grant_type": "refresh_token", "refresh_token": first["refresh_token"]}).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(one, range(6)))
    assert codes.count(200) == 1, f"one refresh token was used {codes.count(200)} times: {codes}"


def test_parallel_creates_all_land(api):
    before = api.list(limit=1)["total"]

    def one(i):
        return api.request("POST", C, json_body=conn_body(name=f"par-{i}"), session=requests.Session()).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, range(64)))
    assert codes == [201] * 64, codes
    assert api.list(limit=1)["total"] == before + 64


def test_cli_errors_exit_1(server):
    r = server.cli("member", "create", "--org", "no-such-org", "--email", "a@b.c", "--account-type", "admin",
                   check=False)
    assert r.returncode == 1 and r.stderr.strip() and not r.stdout.strip(), (r.returncode, r.stdout, r.stderr)
    r = server.cli("member", "create", "--org", server.bootstrap["organizationId"], "--email", "a@b.c",
                   "--account-type", "superuser", check=False)
    assert r.returncode == 1 and r.stderr.strip() and not r.stdout.strip()
    r = server.cli("client", "create", "--member", "no-such-member", check=False)
    assert r.returncode == 1 and r.stderr.strip() and not r.stdout.strip()
    r = server.cli("client", "revoke", "--client", "no-such-client", check=False)
    assert r.returncode == 1 and r.stderr.strip()
    r = server.cli("team", "add-member", "--team", "no-such-team", "--member", server.bootstrap["memberId"],
                   check=False)
    assert r.returncode == 1 and r.stderr.strip()


@pytest.mark.sqlite_only
def test_client_secret_stored_only_as_hash(server, api):
    c = server.new_member_client(api.organization_id, "viewer")
    assert len(c.client_secret) >= 43, "the client secret must carry at least 256 bits"
    assert c.fetch_token()["access_token"]
    for f in server.tmp.iterdir():
        if f.is_file() and f.name.startswith("connreg.db"):
            data = f.read_bytes()
            assert c.client_secret.encode() not in data, f"a client secret is in clear in {f.name}"
            assert server.bootstrap["clientSecret"].encode() not in data, f"the bootstrap secret is in clear in {f.name}"


def test_two_servers_start_together_on_an_empty_store(tmp_path):
    """Migrations and the first-start bootstrap run once, under a lock (contract 11)."""
    from conftest import Server
    a = Server(tmpdir=tmp_path)
    b = Server(tmpdir=tmp_path)
    results = {}

    def start(s, key):
        try:
            s.start()
            results[key] = None
        except BaseException as e:  # reported below
            results[key] = e

    ta = threading.Thread(target=start, args=(a, "a"))
    tb = threading.Thread(target=start, args=(b, "b"))
    ta.start(); tb.start(); ta.join(30); tb.join(30)
    try:
        assert results.get("a") is None and results.get("b") is None, results
        creds = json.loads((tmp_path / "bootstrap-credentials.json").read_text())
        printed = [s for s in (a, b) if creds["clientSecret"] in s.output()]
        assert len(printed) == 1, "the bootstrap ran on both servers (or on neither)"
        for s in (a, b):
            api = Api(s, creds["clientId"], creds["clientSecret"])
            api.organization_id = creds["organizationId"]
            assert api.get(C).status_code == 200
        made = Api(a, creds["clientId"], creds["clientSecret"]).create(conn_body())
        assert Api(b, creds["clientId"], creds["clientSecret"]).get(f"{C}/{made['connectionId']}").status_code == 200
    finally:
        for key, s in (("a", a), ("b", b)):
            if s.proc is not None:
                code = s.stop()
                if results.get(key) is None:  # a server that failed to start is reported above
                    assert code == 0


def test_secret_updated_at_moves_only_with_the_secret(api):
    body = conn_body("postgres")
    created = api.create(body)
    assert "secrets" in created, created
    cid = created["connectionId"]
    first = created["secrets"]["password"]["updatedAt"]
    kept = api.put(f"{C}/{cid}", {"name": body["name"], "details": created["details"]}).json()
    assert kept["secrets"]["password"]["updatedAt"] == first
    import time as _t
    _t.sleep(0.005)
    changed = api.put(f"{C}/{cid}", {"name": body["name"],
                                     "details": dict(created["details"], password="pw-" + uuid.uuid4().hex)}).json()
    assert changed["secrets"]["password"]["updatedAt"] > first
