#!/usr/bin/env python3
"""Mixed-load generator of bench/soak.sh: N keep-alive clients (threads, one requests.Session
each) cycling reads, lists, creates, replaces (PUT), merges (PATCH) and archives against one
connreg server for a fixed time, sampling the server's RSS from /proc/<pid>/status.

Every answer outside the expected 2xx is an error. Prints one JSON summary line on stdout.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import threading
import time
import uuid

import requests

OPS = ("get", "list", "create", "get", "put", "list_page", "get", "patch", "list_search", "archive")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def body(name: str) -> dict:
    return {"name": name, "description": {"team": "soak"},
            "details": {"type": "postgres", "host": "db.example.invalid", "database": "analytics",
                        "user": "reader", "password": "pw-" + uuid.uuid4().hex}}


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.errors = 0
        self.by_op = collections.Counter()
        self.error_samples: list[str] = []
        self.latency_max = 0.0

    def record(self, op: str, ok: bool, detail: str, seconds: float) -> None:
        with self.lock:
            self.requests += 1
            self.by_op[op] += 1
            self.latency_max = max(self.latency_max, seconds)
            if not ok:
                self.errors += 1
                if len(self.error_samples) < 20:
                    self.error_samples.append(f"{op}: {detail}")


def client(base: str, token: str, deadline: float, stats: Stats, idx: int) -> None:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    mine: list[str] = []       # live connections this client created
    next_page = None
    i = idx  # stagger the op cycle across clients
    # One connection of its own to start with.
    r = s.post(base + "/v2/connections", json=body(f"soak-{idx}-seed"), timeout=30)
    stats.record("create", r.status_code == 201, f"{r.status_code} {r.text[:200]}", 0)
    if r.status_code == 201:
        mine.append(r.json()["connectionId"])
    while time.monotonic() < deadline:
        op = OPS[i % len(OPS)]
        i += 1
        if op in ("get", "put", "patch", "archive") and not mine:
            op = "create"
        if op == "archive" and len(mine) < 2:
            op = "get"
        t0 = time.monotonic()
        try:
            if op == "get":
                r = s.get(f"{base}/v2/connections/{mine[i % len(mine)]}", timeout=30)
                ok = r.status_code == 200
            elif op == "list":
                r = s.get(base + "/v2/connections", params={"limit": 50}, timeout=30)
                ok = r.status_code == 200
                if ok:
                    next_page = r.json().get("nextPage")
            elif op == "list_page":
                params = {"limit": 50}
                if next_page:
                    params["page"] = next_page
                r = s.get(base + "/v2/connections", params=params, timeout=30)
                ok = r.status_code == 200
            elif op == "list_search":
                r = s.get(base + "/v2/connections", params={"limit": 20, "search": f"soak-{idx}-"},
                          timeout=30)
                ok = r.status_code == 200
            elif op == "create":
                r = s.post(base + "/v2/connections", json=body(f"soak-{idx}-{uuid.uuid4().hex[:8]}"),
                           timeout=30)
                ok = r.status_code == 201
                if ok:
                    mine.append(r.json()["connectionId"])
            elif op == "put":
                cid = mine[-1]
                r = s.put(f"{base}/v2/connections/{cid}", json=body(f"soak-{idx}-{uuid.uuid4().hex[:8]}"),
                          timeout=30)
                ok = r.status_code == 200
            elif op == "patch":
                cid = mine[0]
                r = s.patch(f"{base}/v2/connections/{cid}", json={"description": {"n": i}}, timeout=30)
                ok = r.status_code == 200
            else:  # archive the oldest one
                cid = mine.pop(0)
                r = s.delete(f"{base}/v2/connections/{cid}", timeout=30)
                ok = r.status_code in (200, 204)
            stats.record(op, ok, f"{r.status_code} {r.text[:200]}", time.monotonic() - t0)
        except requests.RequestException as e:
            stats.record(op, False, repr(e), time.monotonic() - t0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--duration", type=float, default=180)
    ap.add_argument("--warmup", type=float, default=20)
    ap.add_argument("--clients", type=int, default=64)
    a = ap.parse_args()

    stats = Stats()
    start = time.monotonic()
    deadline = start + a.duration
    threads = [threading.Thread(target=client, args=(a.base, a.token, deadline, stats, i), daemon=True)
               for i in range(a.clients)]
    for t in threads:
        t.start()
    samples = []
    rss_start = None
    next_report = start + 10
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        now = time.monotonic()
        if rss_start is None and now - start >= a.warmup:
            rss_start = rss_kib(a.pid)
            req_at_warmup = stats.requests
        if now >= next_report and now < deadline:
            samples.append((round(now - start), rss_kib(a.pid), stats.requests))
            print(f"[soak] t={now - start:5.0f}s requests={stats.requests} errors={stats.errors} "
                  f"rss={samples[-1][1]} KiB", file=sys.stderr, flush=True)
            next_report += 10
    for t in threads:
        t.join()
    rss_end = rss_kib(a.pid)
    elapsed = time.monotonic() - start
    if rss_start is None:
        rss_start, req_at_warmup = samples[0][1] if samples else rss_end, 0
    out = {
        "duration_s": round(elapsed, 1),
        "clients": a.clients,
        "requests": stats.requests,
        "errors": stats.errors,
        "rps": round(stats.requests / elapsed, 1),
        "by_op": dict(stats.by_op),
        "latency_max_s": round(stats.latency_max, 3),
        "rss_start_kib": rss_start,
        "rss_end_kib": rss_end,
        "rss_max_kib": max([rss_end] + [s[1] for s in samples]),
        "rss_growth_pct": round(100.0 * (rss_end - rss_start) / rss_start, 2),
        "requests_after_warmup": stats.requests - req_at_warmup,
        "samples": samples,
        "error_samples": stats.error_samples,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
