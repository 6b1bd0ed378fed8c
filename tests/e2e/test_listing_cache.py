"""The listing's cache of rendered connection bodies (ARCHITECTURE.md, point 8): a page served
from it is byte for byte the page rendered afresh, after every kind of change, including a change
made by another server process on the same store (the stamp the page's snapshot reads is what
keeps it exact; no message tells the first server).

The reference for each entry is GET one's body, which is rendered from the row every time.
"""

from __future__ import annotations

import json
import uuid

from conftest import Api, conn_body, start_server, stop_and_check, uniq

C = "/v2/connections"


def expected_page(api: Api, ids: list[str], total: int) -> str:
    bodies = []
    for cid in ids:
        r = api.get(f"{C}/{cid}")
        assert r.status_code == 200, r.text
        bodies.append(r.text)
    return '{"entries":[' + ",".join(bodies) + '],"nextPage":null,"hasMore":false,"total":' + \
        str(total) + "}"


def page_text(api: Api, prefix: str) -> str:
    r = api.get(C, params={"search": prefix, "includeArchived": "true", "limit": 50})
    assert r.status_code == 200, r.text
    return r.text


def test_cached_page_equals_the_fresh_page_after_every_kind_of_change(tmp_path):
    srv = start_server(tmpdir=tmp_path)
    other = None
    try:
        api = srv.api()
        prefix = uniq("cache")
        created = [api.create(conn_body("postgres", name=f"{prefix}-{i}",
                                        details={"type": "postgres", "host": "127.0.0.1", "port": 1,
                                                 "database": "d", "user": "u",
                                                 "password": f"pw-{uuid.uuid4().hex}"}))
                   for i in range(4)]
        ids = [c["connectionId"] for c in created]

        def check(what: str) -> None:
            # Twice: the first may fill the cache, the second is served from it.
            for attempt in ("fill", "cached"):
                got = page_text(api, prefix)
                assert got == expected_page(api, ids, len(ids)), f"{what} ({attempt})"

        check("created")
        assert api.patch(f"{C}/{ids[0]}", {"name": f"{prefix}-0-renamed"}).status_code == 200
        check("updated")
        assert api.patch(f"{C}/{ids[1]}", {"details": {"password": "another"}}).status_code == 200
        check("secret set")
        r = api.put(f"{C}/{ids[1]}", {"name": f"{prefix}-1", "details": {
            "type": "postgres", "host": "elsewhere.example.invalid", "database": "d", "password": None}})
        assert r.status_code == 200, r.text
        assert json.loads(r.text)["secrets"] == {}
        check("secret cleared")
        assert api.delete(f"{C}/{ids[2]}").status_code == 200
        check("archived")
        r = api.get(f"{C}/{ids[3]}/test", timeout=70)
        assert r.status_code == 200, r.text
        assert "lastTest" in api.get_conn(ids[3])
        check("test recorded")
        r = api.get(f"{C}/{ids[3]}/test", timeout=70)
        assert r.status_code == 200, r.text
        check("test recorded again")

        # Another process on the same store changes a row; the first server has cached the page.
        other = start_server(tmpdir=tmp_path)
        other_api = Api(other, api.client_id, api.client_secret)
        r = other_api.patch(f"{C}/{ids[0]}", {"name": f"{prefix}-0-by-another-process"})
        assert r.status_code == 200, r.text
        got = json.loads(page_text(api, prefix))
        assert f"{prefix}-0-by-another-process" in [e["name"] for e in got["entries"]]
        check("changed by another process")
    finally:
        if other is not None:
            stop_and_check(other)
        stop_and_check(srv)
