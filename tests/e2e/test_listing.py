"""Listing (contract section 6): order, keyset paging, limits, numeric pages, tamper-evident page
tokens, stability under concurrent writes, search / type / includeArchived filters.

One module-scoped server is seeded with 2,500 connections whose names share prefixes (so the
order by name bytes, then createdAt, then connectionId really matters).
"""

from __future__ import annotations

import base64
import os
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import check_error, check_page, conn_body, schemas, valid_details

C = "/v2/connections"
N = 2500
PREFIXES = ["alpha", "Alpha", "alpha-", "ALPHA_", "beta", "b", "conn", "Zulu", "_under", "a", "A b",
            "ünïcode", "日本", "9lives", "alpha beta", "zz%top"]
DUPLICATES = ["same name", "Same Name", "alpha"]


def sort_key(e: dict):
    return (e["name"].encode("utf-8"), e["createdAt"], e["connectionId"])


def make_names(n: int, rng: random.Random) -> list[str]:
    names = []
    for i in range(n):
        r = rng.random()
        if r < 0.08:
            names.append(rng.choice(DUPLICATES))  # exact duplicates: the tie-breakers decide
        else:
            suffix = "".join(rng.choice("abcXYZ019-_ ") for _ in range(rng.randint(0, 6)))
            names.append(rng.choice(PREFIXES) + suffix)
    return names


def make_kind(rng: random.Random) -> str:
    r = rng.random()
    return "postgres" if r < 0.6 else "mysql" if r < 0.85 else "snowflake"


def seed(api, names: list[str], kinds: list[str], workers: int = 8) -> list[dict]:
    results: list[dict | None] = [None] * len(names)
    local = threading.local()

    def one(i: int) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        body = {"name": names[i], "details": valid_details(kinds[i])}
        r = api.request("POST", C, json_body=body, session=local.session)
        assert r.status_code == 201, r.text
        results[i] = r.json()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(len(names))))
    return [r for r in results if r is not None]


def walk(api, limit, session=None, max_seconds=None, **params):
    """Every page of a walk: (entries, pages)."""
    entries, pages = [], []
    token = None
    t0 = time.monotonic()
    while True:
        q = dict(params, limit=limit)
        if token is not None:
            q["page"] = token
        r = api.request("GET", C, params=q, session=session)
        assert r.status_code == 200, r.text
        page = r.json()
        pages.append(page)
        entries.extend(page["entries"])
        if not page["hasMore"]:
            return entries, pages, True
        token = page["nextPage"]
        if max_seconds is not None and time.monotonic() - t0 > max_seconds:
            return entries, pages, False


@pytest.fixture(scope="module")
def seeded(api):
    rng = random.Random(20240611)
    names = make_names(N, rng)
    kinds = [make_kind(rng) for _ in range(N)]
    t0 = time.monotonic()
    created = seed(api, names, kinds)
    print(f"\nseeded {N} connections in {time.monotonic() - t0:.1f}s")
    assert len(created) == N
    expected = sorted(created, key=sort_key)
    return {"created": created, "expected": expected, "kinds": dict(zip([c["connectionId"] for c in created], kinds))}


def ids(entries):
    return [e["connectionId"] for e in entries]


def check_walk(entries, pages, expected, limit):
    got = ids(entries)
    assert len(got) == len(set(got)), "a walk repeated an entry"
    missing = set(ids(expected)) - set(got)
    assert not missing, f"a walk skipped {len(missing)} entries"
    assert got == ids(expected), "the walk is not in (name bytes, createdAt, connectionId) order"
    served = min(limit, 1000)
    for p in pages[:-1]:
        assert len(p["entries"]) == served, f"a middle page has {len(p['entries'])} entries, limit {limit}"
        assert p["hasMore"] is True and isinstance(p["nextPage"], str)
        assert p["total"] == len(expected)
    last = pages[-1]
    assert last["hasMore"] is False and last["nextPage"] is None
    assert last["total"] == len(expected)
    assert 0 < len(last["entries"]) <= served


def test_full_walk_limit_1000(api, seeded):
    entries, pages, done = walk(api, 1000)
    assert done
    for p in pages:
        check_page(p)
    check_walk(entries, pages, seeded["expected"], 1000)
    assert len(pages) == 3


def test_full_walk_limit_5000_served_as_1000(api, seeded):
    entries, pages, done = walk(api, 5000)
    assert done
    assert [len(p["entries"]) for p in pages] == [1000, 1000, 500]
    check_walk(entries, pages, seeded["expected"], 5000)


def test_full_walk_limit_50(api, seeded):
    entries, pages, done = walk(api, 50)
    assert done
    assert len(pages) == N // 50
    schemas().validate("listConnections", 200, pages[7])
    check_walk(entries, pages, seeded["expected"], 50)


def test_walk_limit_1(api, seeded):
    session = requests.Session()
    entries, pages, done = walk(api, 1, session=session, max_seconds=45)
    expected = seeded["expected"]
    if done:
        check_walk(entries, pages, expected, 1)
    else:
        assert len(entries) >= 200, f"limit=1 paging is too slow: {len(entries)} pages in 45 s"
        assert ids(entries) == ids(expected[:len(entries)])
        for p in pages:
            assert len(p["entries"]) == 1 and p["total"] == N


def test_default_limit_is_50(api, seeded):
    page = api.list()
    assert len(page["entries"]) == 50 and page["hasMore"] is True and page["total"] == N
    assert ids(page["entries"]) == ids(seeded["expected"][:50])


@pytest.mark.parametrize("limit", ["0", "-1", "1.5", "abc", "", "1e2", " 5", "0x10", "99999999999999999999999"])
def test_bad_limit(api, seeded, limit):
    r = api.get(C, params={"limit": limit})
    if limit == "99999999999999999999999":
        # Larger values are served as 1000; a value beyond 64 bits may also be refused.
        assert r.status_code in (200, 400), r.text
        if r.status_code == 200:
            assert len(r.json()["entries"]) == 1000
        return
    body = check_error(r, 400, "bad_request")
    assert "limit" in body["message"]
    assert "entries" not in body


def test_numeric_page(api, seeded):
    expected = seeded["expected"]
    page = api.list(page="3", limit=50)
    assert ids(page["entries"]) == ids(expected[100:150])
    assert page["total"] == N and page["hasMore"] is True
    page1 = api.list(page="1", limit=50)
    assert ids(page1["entries"]) == ids(expected[:50])
    last = api.list(page=str(N // 7 + 1), limit=7)
    assert ids(last["entries"]) == ids(expected[(N // 7) * 7:])
    assert last["hasMore"] is False and last["nextPage"] is None
    # The nextPage of a numeric page continues where it ended.
    nxt = api.list(page=page["nextPage"], limit=50)
    assert ids(nxt["entries"]) == ids(expected[150:200])


def test_numeric_page_zero_or_negative(api, seeded):
    for p in ("0", "-3"):
        r = api.get(C, params={"page": p, "limit": 10})
        assert r.status_code in (200, 400), r.text
        if r.status_code == 400:
            check_error(r, 400, "bad_request")


def _flip(token: str, at: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    c = token[at]
    repl = alphabet[(alphabet.index(c) + 1) % len(alphabet)] if c in alphabet else "A"
    return token[:at] + repl + token[at + 1:]


def test_forged_page_tokens(api, other_api, seeded):
    first = api.list(limit=50)
    token = first["nextPage"]
    assert isinstance(token, str) and token
    other_api.create(conn_body("postgres", name="other-org-a"))
    other_api.create(conn_body("postgres", name="other-org-b"))
    other_token = other_api.list(limit=1)["nextPage"]
    assert other_token
    forged = {
        "flip-middle": _flip(token, len(token) // 2),
        "flip-first": _flip(token, 0),
        "flip-last": _flip(token, len(token) - 1),
        "truncated": token[: len(token) // 2],
        "truncated-by-one": token[:-1],
        "extended": token + "AAAA",
        "random-b64": base64.urlsafe_b64encode(os.urandom(max(24, len(token) * 3 // 4))).decode().rstrip("="),
        "random-std-b64": base64.b64encode(os.urandom(48)).decode(),
        "seed-style-json": '{"name":"c_conn0005","lastCreatedAt":1655460205324}',
        "other-org": other_token,
        "spaces": "   ",
        "non-ascii": "ünïcode-token",
    }
    for label, bad in forged.items():
        if bad == token:
            continue
        r = api.get(C, params={"page": bad, "limit": 50})
        assert r.status_code != 500, f"{label}: 500"
        body = check_error(r, 400, "bad_request")
        assert "entries" not in body, label
    # The genuine token still works.
    good = api.list(page=token, limit=50)
    assert ids(good["entries"]) == ids(seeded["expected"][50:100])


def test_page_token_bound_to_its_query(api, seeded):
    """A token from one walk used with other filters must not return another walk's rows blindly:
    it is either refused (400) or yields entries that all match the new filter."""
    token = api.list(limit=50)["nextPage"]
    r = api.get(C, params={"page": token, "limit": 50, "type": "mysql"})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        for e in r.json()["entries"]:
            assert e["type"] == "mysql"


def test_search_case_insensitive(api, seeded):
    created = seeded["created"]
    for needle in ("ALPHA", "alpha", "aLpHa-", "same NAME", "xyz", "_", "%", " b", "日本"):
        expected = sorted([c for c in created if needle.lower() in c["name"].lower()], key=sort_key)
        entries, pages, done = walk(api, 1000, search=needle)
        assert done
        assert pages[0]["total"] == len(expected), f"search {needle!r}: total {pages[0]['total']} != {len(expected)}"
        assert ids(entries) == ids(expected), f"search {needle!r}"
    nothing = api.list(search="no-such-name-" + uuid.uuid4().hex)
    assert nothing["entries"] == [] and nothing["total"] == 0 and nothing["hasMore"] is False


def test_type_filter(api, seeded):
    created = seeded["created"]
    for kind in ("mysql", "snowflake", "postgres"):
        expected = sorted([c for c in created if c["type"] == kind], key=sort_key)
        entries, pages, done = walk(api, 1000, type=kind)
        assert done
        assert pages[0]["total"] == len(expected) > 0
        assert ids(entries) == ids(expected)
    both = sorted([c for c in created if c["type"] == "mysql" and "beta" in c["name"].lower()], key=sort_key)
    entries, pages, _ = walk(api, 100, type="mysql", search="BETA")
    assert ids(entries) == ids(both) and pages[0]["total"] == len(both)
    r = api.get(C, params={"type": "bigQuery"})
    assert r.status_code == 200 and r.json()["total"] == 0


def test_type_filter_is_exact(api, seeded):
    r = api.get(C, params={"type": "MYSQL"})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert r.json()["total"] == 0 and r.json()["entries"] == []


def test_walk_with_inserts_in_the_middle(fresh_server):
    """Contract 6: a page written while paging does not make the walk skip or repeat an entry
    that existed before the walk began."""
    api = fresh_server.api()
    rng = random.Random(7)
    names = make_names(200, rng)
    before = seed(api, names, ["postgres"] * len(names), workers=4)
    before_ids = set(ids(before))
    seen: list[dict] = []
    token = None
    inserted = 0
    pages = 0
    while True:
        q = {"limit": 20}
        if token:
            q["page"] = token
        page = api.list(**q)
        pages += 1
        seen.extend(page["entries"])
        if pages in (2, 5, 8):
            # New connections both before and after the current position.
            extra = make_names(15, rng) + [seen[-1]["name"]] * 3 + [seen[0]["name"], "A", "zzzz", "\u00ff"]
            seed(api, extra, ["mysql"] * len(extra), workers=4)
            inserted += len(extra)
        if not page["hasMore"]:
            break
        token = page["nextPage"]
    got = ids(seen)
    assert len(got) == len(set(got)), "the walk repeated an entry"
    missed = before_ids - set(got)
    assert not missed, f"the walk skipped {len(missed)} entries that existed before it began"
    keys = [sort_key(e) for e in seen]
    assert keys == sorted(keys), "the walk is out of order"
    assert api.list(limit=1)["total"] == len(before) + inserted


def test_include_archived(fresh_server):
    api = fresh_server.api()
    made = [api.create(conn_body("postgres", name=f"arch-{i:02d}")) for i in range(12)]
    archived = {m["connectionId"] for m in made[::3]}
    for cid in archived:
        assert api.delete(f"{C}/{cid}").status_code == 200
    active = api.list(limit=100)
    assert active["total"] == 12 - len(archived)
    assert not archived & set(ids(active["entries"]))
    assert all(e["isArchived"] is False for e in active["entries"])
    explicit_false = api.list(limit=100, includeArchived="false")
    assert ids(explicit_false["entries"]) == ids(active["entries"])
    everything = api.list(limit=100, includeArchived="true")
    assert everything["total"] == 12
    assert set(ids(everything["entries"])) == {m["connectionId"] for m in made}
    for e in everything["entries"]:
        assert e["isArchived"] is (e["connectionId"] in archived)
    assert ids(everything["entries"]) == ids(sorted(made, key=sort_key))
    # Paging through archived ones too.
    entries, pages, done = walk(api, 5, includeArchived="true")
    assert done and ids(entries) == ids(everything["entries"])
    assert api.list(limit=100, search="ARCH-0", includeArchived="true")["total"] == 10
    r = api.get(C, params={"includeArchived": "maybe"})
    check_error(r, 400, "bad_request")
