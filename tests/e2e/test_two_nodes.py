"""Issue 6: several stateless connreg nodes over one PostgreSQL database, and PostgreSQL going
away under load. A real PostgreSQL server (tests/e2e/pg_support.py) and two real connreg
processes, each on port 0."""
import base64
import concurrent.futures
import os
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import Api, Server, check_error, conn_body, postgres_server, stop_and_check, uniq
from pg_support import PgServer

C = "/v2/connections"


def start_node(tmp: Path, database: str, key: str) -> Server:
    return Server(tmpdir=tmp, database=database, env={"CONNREG_MASTER_KEY": key}).start()


@pytest.fixture(scope="module")
def nodes():
    pg = postgres_server()
    database = pg.new_database()
    key = base64.b64encode(os.urandom(32)).decode()
    tmp = Path(tempfile.mkdtemp(prefix="connreg-e2e-nodes-"))
    a = start_node(tmp, database, key)
    b = start_node(tmp, database, key)  # the store is not empty: B does not bootstrap again
    yield a, b
    stop_and_check(a)
    stop_and_check(b)


def bearer(token):
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def test_token_from_one_node_works_on_the_other(nodes):
    a, b = nodes
    api_a = a.api()
    r = requests.get(b.url(C), headers=bearer(api_a.token), timeout=30)
    assert r.status_code == 200, r.text


def test_connection_lifecycle_across_nodes(nodes):
    a, b = nodes
    token = a.api().token
    created = requests.post(a.url(C), headers=bearer(token), json=conn_body(), timeout=30)
    assert created.status_code == 201, created.text
    cid = created.json()["connectionId"]
    got = requests.get(b.url(f"{C}/{cid}"), headers=bearer(token), timeout=30)
    assert got.status_code == 200 and got.json()["name"] == created.json()["name"]
    body = conn_body(name=uniq("renamed"))
    put = requests.put(b.url(f"{C}/{cid}"), headers=bearer(token), json=body, timeout=30)
    assert put.status_code == 200 and put.json()["version"] == 2
    assert requests.get(a.url(f"{C}/{cid}"), headers=bearer(token),
                        timeout=30).json()["name"] == body["name"]
    assert requests.delete(b.url(f"{C}/{cid}"), headers=bearer(token), timeout=30).status_code == 200
    assert requests.get(a.url(f"{C}/{cid}"), headers=bearer(token),
                        timeout=30).json()["isArchived"] is True


def test_revocation_on_one_node_is_refused_by_the_other_at_once(nodes):
    a, b = nodes
    api = a.new_org_admin()
    assert requests.get(b.url(C), headers=bearer(api.token), timeout=30).status_code == 200
    a.cli_json("client", "revoke", "--client", api.client_id)
    r = requests.get(b.url(C), headers=bearer(api.token), timeout=30)
    check_error(r, 401, "unauthorized")


def test_concurrent_if_match_puts_over_both_nodes_let_exactly_one_win(nodes):
    a, b = nodes
    token = a.api().token
    cid = requests.post(a.url(C), headers=bearer(token), json=conn_body(),
                        timeout=30).json()["connectionId"]
    etag = requests.get(a.url(f"{C}/{cid}"), headers=bearer(token), timeout=30).headers["ETag"]

    def put(i):
        node = (a, b)[i % 2]
        h = bearer(token) | {"If-Match": etag}
        return requests.put(node.url(f"{C}/{cid}"), headers=h, json=conn_body(name=f"n{i}"),
                            timeout=60).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(put, range(50)))
    assert statuses.count(200) == 1, statuses
    assert statuses.count(412) == 49, statuses
    final = requests.get(b.url(f"{C}/{cid}"), headers=bearer(token), timeout=30).json()
    assert final["version"] == 2


def test_paging_alternating_between_nodes_neither_skips_nor_repeats(nodes):
    a, b = nodes
    api = a.new_org_admin()
    token = api.token
    names = [uniq("page") for _ in range(120)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: requests.post(a.url(C), headers=bearer(token),
                                              json=conn_body(name=n), timeout=30), names))
    seen, page, turn = [], None, 0
    while True:
        node = (a, b)[turn % 2]
        turn += 1
        params = {"limit": 7} | ({"page": page} if page else {})
        body = requests.get(node.url(C), headers=bearer(token), params=params, timeout=30).json()
        assert body["total"] == 120
        seen += [e["connectionId"] for e in body["entries"]]
        if not body["hasMore"]:
            break
        page = body["nextPage"]
    assert len(seen) == 120 == len(set(seen))
    assert turn > 10


def test_idempotency_key_is_honoured_by_every_node(nodes):
    a, b = nodes
    token = a.api().token
    body = conn_body()
    h = bearer(token) | {"Idempotency-Key": uniq("idem")}
    first = requests.post(a.url(C), headers=h, json=body, timeout=30)
    again = requests.post(b.url(C), headers=h, json=body, timeout=30)
    assert first.status_code == again.status_code == 201
    assert first.json()["connectionId"] == again.json()["connectionId"]


def test_postgres_outage_under_load_answers_503_and_recovers():
    """PostgreSQL stopped under load and started again: the node answers 503 while it is down,
    never crashes, recovers without a restart, and loses no acknowledged write."""
    pg = PgServer().start()
    try:
        key = base64.b64encode(os.urandom(32)).decode()
        tmp = Path(tempfile.mkdtemp(prefix="connreg-e2e-fault-"))
        node = start_node(tmp, pg.new_database(), key)
        try:
            token = node.api().token
            acknowledged, statuses, stop = [], [], threading.Event()

            def writer():
                s = requests.Session()
                while not stop.is_set():
                    name = uniq("fault")
                    try:
                        r = s.post(node.url(C), headers=bearer(token), json=conn_body(name=name),
                                   timeout=30)
                    except requests.RequestException as e:  # the node must keep answering
                        statuses.append(repr(e))
                        continue
                    statuses.append(r.status_code)
                    if r.status_code == 201:
                        acknowledged.append(r.json()["connectionId"])

            threads = [threading.Thread(target=writer) for _ in range(4)]
            for t in threads:
                t.start()
            time.sleep(1.5)
            pg.stop("fast")
            time.sleep(2.0)
            down = requests.get(node.url("/readyz"), timeout=30)
            assert down.status_code == 503, down.text
            pg.start()
            pg.wait_ready()
            deadline = time.monotonic() + 30
            while requests.get(node.url("/readyz"), timeout=30).status_code != 200:
                assert time.monotonic() < deadline, "the node did not recover"
                time.sleep(0.2)
            time.sleep(1.5)
            stop.set()
            for t in threads:
                t.join()
            assert node.alive(), "the node died during the outage"
            assert 503 in statuses, "no 503 while PostgreSQL was down"
            assert all(s in (201, 503) for s in statuses), set(map(str, statuses))
            assert statuses[-1] == 201, "writes did not succeed again after recovery"
            for cid in acknowledged:
                r = requests.get(node.url(f"{C}/{cid}"), headers=bearer(token), timeout=30)
                assert r.status_code == 200, f"acknowledged write {cid} lost"
        finally:
            stop_and_check(node)
    finally:
        pg.destroy()


def test_rate_limit_is_shared_by_the_nodes():
    """With --rate-limit 5 on both nodes, one client alternating between them gets about 5
    requests a second in all, not 5 per node."""
    pg = postgres_server()
    database = pg.new_database()
    key = base64.b64encode(os.urandom(32)).decode()
    tmp = Path(tempfile.mkdtemp(prefix="connreg-e2e-rate-"))
    a = Server("--rate-limit", "5", tmpdir=tmp, database=database,
               env={"CONNREG_MASTER_KEY": key}).start()
    b = Server("--rate-limit", "5", tmpdir=tmp, database=database,
               env={"CONNREG_MASTER_KEY": key}).start()
    try:
        token = a.api().token
        with requests.Session() as s:
            start = time.monotonic()
            statuses = [s.get((a, b)[i % 2].url(C), headers=bearer(token), timeout=30).status_code
                        for i in range(20)]
            elapsed = time.monotonic() - start
        allowed = statuses.count(200)
        assert statuses.count(429) == 20 - allowed, statuses
        # One bucket of 5, refilled at 5/s for the time the 20 requests took.
        assert allowed <= 5 + int(elapsed * 5) + 1, (statuses, elapsed)
        assert allowed < 10 or elapsed > 1.0, (statuses, elapsed)
    finally:
        stop_and_check(a)
        stop_and_check(b)
