"""Issue 4: credentials at rest. Secrets of every warehouse type never reach the database files
or the log in clear (nor in base64); a wrong master key is a clear start-up error; a ciphertext
moved to another row does not open; `connreg key rotate` works while the server serves, and
resumes after being killed half way. Real binary on port 0, real SQLite files."""
import base64
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
import uuid

import pytest
import requests

from conftest import (BIN, TYPES, conn_body, fill_secrets, start_server, stop_and_check, uniq,
                      valid_details)

# Every test here reads the SQLite files or the key file beside them.
pytestmark = pytest.mark.sqlite_only

C = "/v2/connections"


def secret_forms(value: str) -> list[bytes]:
    raw = value.encode()
    forms = [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw).rstrip(b"=")]
    # Base64 of the value at any alignment inside a longer blob shares this middle part.
    for shift in range(3):
        b = base64.b64encode(b"x" * shift + raw)[4:-4]
        if len(b) >= 12:
            forms.append(b)
    return forms


def store_files(srv) -> list:
    return [p for p in srv.tmp.iterdir()
            if p.name.startswith("connreg.db")]


def scan(paths, values) -> list[str]:
    found = []
    for p in paths:
        data = p.read_bytes() if hasattr(p, "read_bytes") else p
        for v in values:
            for form in secret_forms(v):
                if form in data:
                    found.append(f"{getattr(p, 'name', 'log')}: {v!r} as {form[:20]!r}")
    return found


def test_no_secret_in_database_files_or_logs():
    srv = start_server()
    try:
        api = srv.api()
        secrets = []

        def unique(tag):
            v = f"S3cr3t-{tag}-{uuid.uuid4().hex}"
            secrets.append(v)
            return v

        created = []
        for kind in TYPES:
            d = fill_secrets(valid_details(kind), lambda _: unique(kind))
            created.append(api.create({"name": uniq(kind), "details": d}))
        key_pair = {"type": "snowflake", "account": "acme", "user": "U",
                    "privateKey": unique("pk"), "privateKeyPassphrase": unique("pass")}
        created.append(api.create({"name": uniq("kp"), "details": key_pair}))
        plain_object = valid_details("postgres", password={"type": "plain", "value": unique("obj")})
        created.append(api.create({"name": uniq("obj"), "details": plain_object}))

        # Update some (new secrets, and PUT without the secret keeps it), archive others.
        for c in created[:4]:
            d = dict(c["details"])
            if "password" in c.get("secrets", {}):
                d["password"] = unique("updated")
            r = api.put(f"{C}/{c['connectionId']}", {"name": c["name"], "details": d})
            assert r.status_code == 200, r.text
        for c in created[4:7]:
            assert api.delete(f"{C}/{c['connectionId']}").status_code == 200
        # Responses never carry them either.
        listing = json.dumps(api.list(includeArchived="true"))
        assert not [s for s in secrets if s in listing]
        # And tests of them (messages are scrubbed).
        for c in created[:3]:
            requests.get(srv.url(f"{C}/{c['connectionId']}/test"), timeout=60,
                         headers={"Authorization": f"Bearer {api.token}"})
        time.sleep(1.5)  # the access log is flushed once a second
        files = store_files(srv)
        assert any(p.name == "connreg.db" for p in files)
        found = scan(files, secrets)
        found += scan([srv.output().encode()], secrets)
        assert not found, found
        # The values are there, sealed: one row per secret field of every live connection.
        db = sqlite3.connect(f"file:{srv.db_path}?mode=ro", uri=True)
        rows = db.execute("SELECT connection_id, field, key_id FROM connection_secrets").fetchall()
        db.close()
        assert len(rows) >= len(TYPES)
        assert len({r[2] for r in rows}) == 1
    finally:
        stop_and_check(srv)
    # After a clean stop (WAL checkpointed into the main file) still nothing.
    assert not scan(store_files(srv), secrets)


def test_wrong_or_missing_master_key_is_a_clear_start_error():
    srv = start_server()
    api = srv.api()
    api.create(conn_body("postgres"))
    stop_and_check(srv)
    key_file = srv.tmp / "master.key"
    original = key_file.read_text()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"

    key_file.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    r = subprocess.run([BIN, "serve", "--database", srv.database, "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=30, cwd=srv.tmp)
    assert r.returncode != 0
    assert "wrong master key" in r.stderr, r.stderr

    key_file.unlink()
    r = subprocess.run([BIN, "serve", "--database", srv.database, "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=30, cwd=srv.tmp)
    assert r.returncode != 0 and "master key file" in r.stderr and "missing" in r.stderr, r.stderr

    r = subprocess.run([BIN, "serve", "--database", srv.database, "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=30, cwd=srv.tmp,
                       env=dict(os.environ, CONNREG_MASTER_KEY="not base64!"))
    assert r.returncode != 0 and "CONNREG_MASTER_KEY" in r.stderr, r.stderr

    key_file.write_text(original)
    again = start_server(tmpdir=srv.tmp)
    try:
        assert again.api().list()["total"] == 1
    finally:
        stop_and_check(again)


def test_ciphertext_moved_between_rows_does_not_open():
    srv = start_server()
    try:
        api = srv.api()
        a = api.create(conn_body("postgres"))
        b = api.create(conn_body("postgres"))
        db = sqlite3.connect(srv.db_path)
        sealed = db.execute("SELECT sealed, key_id FROM connection_secrets WHERE connection_id=? "
                            "AND field='password'", (a["connectionId"],)).fetchone()
        db.execute("UPDATE connection_secrets SET sealed=?, key_id=? WHERE connection_id=? AND "
                   "field='password'", (sealed[0], sealed[1], b["connectionId"]))
        db.commit()
        db.close()
        headers = {"Authorization": f"Bearer {api.token}"}
        r = requests.get(srv.url(f"{C}/{b['connectionId']}/test"), headers=headers, timeout=60)
        assert r.status_code == 500, r.text
        assert r.json()["message"] == "internal error"
        time.sleep(1.2)
        assert "failed authentication" in srv.output()
        # The untouched row still opens: its test runs (and fails only at the network).
        r = requests.get(srv.url(f"{C}/{a['connectionId']}/test"), headers=headers, timeout=60)
        assert r.status_code == 200, r.text
    finally:
        stop_and_check(srv)


def all_secrets_open(srv, api, ids):
    """Every connection's secrets open: its test answers 200 (a secret that fails to open is a
    500). The hosts are closed local ports, so the tests fail fast at the network."""
    headers = {"Authorization": f"Bearer {api.token}"}
    for cid in ids:
        r = requests.get(srv.url(f"{C}/{cid}/test"), headers=headers, timeout=60)
        assert r.status_code == 200, f"{cid}: {r.status_code} {r.text[:200]}"


def seed(api, n):
    ids = []
    for i in range(n):
        d = valid_details("postgres", host="127.0.0.1", port=1)
        ids.append(api.create({"name": uniq("rot"), "details": d})["connectionId"])
    return ids


def key_ids(srv):
    db = sqlite3.connect(f"file:{srv.db_path}?mode=ro", uri=True)
    ids = {r[0] for r in db.execute("SELECT DISTINCT key_id FROM connection_secrets")}
    db.close()
    return ids


def test_key_rotation_under_load():
    srv = start_server()
    try:
        api = srv.api()
        ids = seed(api, 40)
        before = key_ids(srv)
        assert len(before) == 1
        original_key = (srv.tmp / "master.key").read_text()
        stop = time.monotonic() + 60
        errors, done = [], 0

        def load():
            nonlocal done
            s = requests.Session()
            headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}
            i = 0
            while time.monotonic() < stop and not rotated.is_set():
                cid = ids[i % len(ids)]
                i += 1
                r = s.get(srv.url(f"{C}/{cid}"), headers=headers, timeout=30)
                body = {"name": uniq("rot"),
                        "details": valid_details("postgres", host="127.0.0.1", port=1)}
                w = s.put(srv.url(f"{C}/{cid}"), headers=headers, data=json.dumps(body), timeout=30)
                for resp in (r, w):
                    if resp.status_code != 200:
                        errors.append((resp.status_code, resp.text[:200]))
                done += 2

        rotated = threading.Event()
        workers = [threading.Thread(target=load) for _ in range(4)]
        for t in workers:
            t.start()
        r = srv.cli("key", "rotate", "--settle", "2", timeout=120)
        rotated.set()
        for t in workers:
            t.join()
        assert not errors, errors[:5]
        assert done > 20
        out = json.loads(r.stdout.strip().splitlines()[-1])
        assert out["event"] == "key_rotated"
        after = key_ids(srv)
        assert after == {out["keyId"]} and not (after & before)
        assert (srv.tmp / "master.key").read_text() != original_key
        assert len((srv.tmp / "master.key").read_text().split()) == 1, "old key still needed"
        assert srv.wait_for_log(lambda e: e.get("event") == "master_key_reloaded", 5)
        all_secrets_open(srv, api, ids)
    finally:
        stop_and_check(srv)
    # A restart with only the new key opens everything.
    again = start_server(tmpdir=srv.tmp)
    try:
        all_secrets_open(again, again.api(), ids[:5])
    finally:
        stop_and_check(again)


def test_interrupted_rotation_resumes_without_losing_a_secret():
    srv = start_server()
    try:
        api = srv.api()
        ids = seed(api, 30)
        before = key_ids(srv)
        proc = subprocess.Popen([BIN, "key", "rotate", "--settle", "3", "--database", srv.database],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=srv.tmp)
        time.sleep(1.0)  # the key file now holds [new, old]; re-sealing has not finished
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        keys = (srv.tmp / "master.key").read_text().split()
        assert len(keys) == 2, keys
        all_secrets_open(srv, api, ids)  # the server opens old and new alike meanwhile
        r = srv.cli("key", "rotate", "--settle", "1", timeout=120)
        out = json.loads(r.stdout.strip().splitlines()[-1])
        assert key_ids(srv) == {out["keyId"]} and not (key_ids(srv) & before)
        assert len((srv.tmp / "master.key").read_text().split()) == 1
        all_secrets_open(srv, api, ids)
    finally:
        stop_and_check(srv)
