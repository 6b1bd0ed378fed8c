"""Connection tests through the HTTP API against the real PostgreSQL and MariaDB servers that
scripts/test-databases.sh starts (ctest's test_databases fixture; their ports and passwords are in
the file $CONNREG_TEST_DB_ENV). The warehouse side does not depend on the store backend, so this
runs in the SQLite suite only; ctest gives it the lock of the servers' shared write schema."""
from __future__ import annotations

import os

import pytest

from conftest import check_error, probe_db_env as env

C = "/v2/connections"
DATABASE, WRITE_SCHEMA, WRITER, READER = "connreg_probe", "probe_w", "connreg_writer", "connreg_reader"

pytestmark = pytest.mark.sqlite_only


def run_test(api, kind: str, user: str, password: str, **extra) -> dict:
    e = env()
    port = int(e["CONNREG_TEST_PG_PORT" if kind == "postgres" else "CONNREG_TEST_MYSQL_PORT"])
    details = {"type": kind, "host": "127.0.0.1", "port": port, "user": user, "password": password,
               "database": DATABASE, "writeAccess": {"writeSchema": WRITE_SCHEMA}, **extra}
    cid = api.create({"name": f"real-{kind}-{user}", "details": details, "timeoutSecs": 10})["connectionId"]
    r = api.get(f"{C}/{cid}/test", timeout=30)
    assert r.status_code == 200, r.text
    assert password not in r.text
    return r.json()


def code_of(result: dict, step: str) -> str | None:
    return next((s.get("code") for s in result["steps"] if s["name"] == step), None)


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_writer_reads_and_writes(api, kind):
    pw = env()["CONNREG_TEST_PG_WRITER_PASSWORD" if kind == "postgres" else "CONNREG_TEST_MYSQL_WRITER_PASSWORD"]
    result = run_test(api, kind, WRITER, pw)
    assert (result["read"], result["write"]) == ("SUCCESS", "SUCCESS"), result


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_reader_reads_but_may_not_write(api, kind):
    pw = env()["CONNREG_TEST_PG_READER_PASSWORD" if kind == "postgres" else "CONNREG_TEST_MYSQL_READER_PASSWORD"]
    result = run_test(api, kind, READER, pw)
    assert (result["read"], result["write"]) == ("SUCCESS", "FAILED"), result
    assert code_of(result, "write") == "permission_denied", result


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_wrong_password_is_auth_failed(api, kind):
    result = run_test(api, kind, WRITER, "not-the-password-4711")
    assert result["read"] == "FAILED", result
    assert code_of(result, "authenticate") == "auth_failed", result


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_unknown_database_is_not_found(api, kind):
    # MariaDB tells "unknown" from "denied" (1049 against 1044) only to a user with global
    # privileges: the reader has global SELECT.
    pw = env()["CONNREG_TEST_PG_WRITER_PASSWORD" if kind == "postgres" else "CONNREG_TEST_MYSQL_READER_PASSWORD"]
    user = WRITER if kind == "postgres" else READER
    result = run_test(api, kind, user, pw, database="no_such_database")
    assert result["read"] == "FAILED", result
    assert "not_found" in {s.get("code") for s in result["steps"]}, result


def tls_run(api, kind: str, host: str, ca_file: str | None, mode: str | None) -> dict:
    """A test of the TLS server pair (a certificate for `localhost`, signed by DIR/tls/ca.pem)
    through the API, with the connection's own tlsMode and tlsCaCert."""
    e = env()
    port = int(e["CONNREG_TEST_PG_TLS_PORT" if kind == "postgres" else "CONNREG_TEST_MYSQL_TLS_PORT"])
    pw = e["CONNREG_TEST_PG_WRITER_PASSWORD" if kind == "postgres" else "CONNREG_TEST_MYSQL_WRITER_PASSWORD"]
    details = {"type": kind, "host": host, "port": port, "user": WRITER, "password": pw,
               "database": DATABASE, "useTls": True}
    if mode is not None:
        details["tlsMode"] = mode
    if ca_file is not None:
        details["tlsCaCert"] = open(os.path.join(e["CONNREG_TEST_TLS_DIR"], ca_file)).read()
    created = api.create({"name": f"tls-{kind}", "details": details, "timeoutSecs": 10})
    r = api.get(f"{C}/{created['connectionId']}/test", timeout=30)
    assert r.status_code == 200, r.text
    assert pw not in r.text
    return {"created": created, "result": r.json()}


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_tls_verify_full_by_default_passes_with_the_servers_ca_and_name(api, kind):
    run = tls_run(api, kind, "localhost", "ca.pem", None)
    assert run["created"]["details"]["tlsMode"] == "verify-full", run["created"]["details"]
    assert run["result"]["read"] == "SUCCESS", run["result"]
    assert [s["status"] for s in run["result"]["steps"] if s["name"] == "tls"] == ["SUCCESS"]


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
@pytest.mark.parametrize("host,ca,mode", [("localhost", "wrong-ca.pem", "verify-full"),
                                          ("127.0.0.1", "ca.pem", "verify-full"),
                                          ("localhost", "wrong-ca.pem", "verify-ca")])
def test_tls_verification_failure_stops_before_authentication(api, kind, host, ca, mode):
    # The certificate names `localhost`, not 127.0.0.1; the wrong CA signed nothing of the server's.
    result = tls_run(api, kind, host, ca, mode)["result"]
    assert result["read"] == "FAILED", result
    failed = [s for s in result["steps"] if s["status"] == "FAILED"]
    assert failed and failed[0]["code"] == "tls_failure", result
    assert failed[0]["name"] in ("connect", "tls"), result
    auth = [s for s in result["steps"] if s["name"] == "authenticate"]
    assert auth and auth[0]["status"] == "SKIPPED", result


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_tls_require_encrypts_without_a_ca(api, kind):
    result = tls_run(api, kind, "127.0.0.1", None, "require")["result"]
    assert result["read"] == "SUCCESS", result
