"""Issue 17: a revocation is exact for every request that starts after the revoking call
returned, on every node, although a node may keep resolved tokens in memory (SQLite: a token
cache checked against the revocation epoch beside the database file; PostgreSQL: GET one checks
its token in the statement that reads the connection). Two real connreg processes on one store
(the same SQLite file, or the same PostgreSQL database), a stream of GET one requests on both,
and the revocation from a third process (the CLI's `client revoke`) or through the API
(a member's deactivation, a refresh token's reuse). Runs on both stores (CONNREG_E2E_BACKEND)."""
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import Server, conn_body, stop_and_check

C = "/v2/connections"
TOKEN = "/v2/auth/token"
STREAMS_PER_NODE = 2


@pytest.fixture(scope="module")
def nodes():
    tmp = Path(tempfile.mkdtemp(prefix="connreg-e2e-revoke-"))
    a = Server(tmpdir=tmp).start()
    b = Server(tmpdir=tmp).start()  # the same store: B does not bootstrap again
    yield a, b
    stop_and_check(a)
    stop_and_check(b)


@pytest.fixture(scope="module")
def connection_id(nodes):
    a, _ = nodes
    r = a.api().request("POST", C, json_body=conn_body())
    assert r.status_code == 201, r.text
    return r.json()["connectionId"]


def token_pair(server, client_id, secret):
    r = requests.post(server.url(TOKEN), timeout=30,
                      data={"grant_type": "client_credentials", "client_id": client_id,
                            "client_secret": secret})
    assert r.status_code == 200, r.text
    return r.json()


def run_race(nodes, connection_id, token, revoke, expect_after=401):
    """GETs the connection with `token` from STREAMS_PER_NODE threads per node until well after
    `revoke()` returned; every request that started after that is refused."""
    stop = threading.Event()
    revoked_at = [None]  # monotonic time when revoke() returned
    records = []  # (node, started, status)
    lock = threading.Lock()

    def stream(node):
        s = requests.Session()
        headers = {"Authorization": f"Bearer {token}"}
        while not stop.is_set():
            started = time.monotonic()
            status = s.get(node.url(f"{C}/{connection_id}"), headers=headers, timeout=30).status_code
            with lock:
                records.append((node.port, started, status))

    threads = [threading.Thread(target=stream, args=(n,)) for n in nodes for _ in range(STREAMS_PER_NODE)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 20
        while True:  # both nodes served the token (and cached it, where they cache)
            with lock:
                ok = {port for port, _, status in records if status == 200}
            if len(ok) == len(nodes):
                break
            assert time.monotonic() < deadline, f"the nodes did not serve the token: {records[-5:]}"
            time.sleep(0.02)
        revoke()
        revoked_at[0] = time.monotonic()
        time.sleep(0.7)
    finally:
        stop.set()
        for t in threads:
            t.join()
    after = [(port, status) for port, started, status in records if started > revoked_at[0]]
    served = [r for r in after if 200 <= r[1] < 300]
    assert not served, f"{len(served)} of {len(after)} requests started after the revocation returned were served"
    for n in nodes:  # every node was asked after the revocation, and refused
        statuses = {status for port, status in after if port == n.port}
        assert statuses == {expect_after}, (n.port, statuses)
    before = [r for r in records if r[1] <= revoked_at[0] and r[2] == 200]
    assert before, "no request was served before the revocation"


def test_cli_client_revoke_from_another_process(nodes, connection_id):
    a, _ = nodes
    api = a.new_member_client(a.api().organization_id)
    run_race(nodes, connection_id, api.token,
             lambda: a.cli_json("client", "revoke", "--client", api.client_id))


def test_member_deactivation_through_the_api(nodes, connection_id):
    a, b = nodes
    api = a.new_member_client(a.api().organization_id)

    def deactivate():
        r = requests.delete(b.url(f"/v2/members/{api.member_id}"), timeout=30,
                            headers={"Authorization": f"Bearer {a.api().token}"})
        assert r.status_code == 200, r.text

    run_race(nodes, connection_id, api.token, deactivate)


def test_refresh_token_reuse(nodes, connection_id):
    a, b = nodes
    api = a.new_member_client(a.api().organization_id)
    first = token_pair(a, api.client_id, api.client_secret)

    def reuse():
        data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
        assert requests.post(b.url(TOKEN), data=data, timeout=30).status_code == 200
        again = requests.post(a.url(TOKEN), data=data, timeout=30)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text

    run_race(nodes, connection_id, first["access_token"], reuse)


def test_a_revoked_token_is_refused_by_every_route_at_once(nodes):
    """The cache serves every authenticated route, not only GET one."""
    a, b = nodes
    api = a.new_member_client(a.api().organization_id)
    for node in nodes:
        r = requests.get(node.url("/v2/whoami"), headers={"Authorization": f"Bearer {api.token}"},
                         timeout=30)
        assert r.status_code == 200, r.text
    a.cli_json("client", "revoke", "--client", api.client_id)
    for node in nodes:
        r = requests.get(node.url("/v2/whoami"), headers={"Authorization": f"Bearer {api.token}"},
                         timeout=30)
        assert r.status_code == 401, r.text
