#!/usr/bin/python3
"""Does blocking work stall other requests? Measures the p99 latency of GET one connection
(wrk, 4 connections) on an idle server, then while other clients keep the server busy with
  - writes:  16 connections POSTing (each commit is an fsync on the blocking pool),
  - lists:   8 connections listing 1000 connections a page,
  - tests:   64 connection tests hanging on a local listener that accepts and never answers
             (the probe engine's threads wait; each test has a 20 s deadline),
and prints each p99 with its ratio to the idle one, measured in this one run. Idle and tests
alternate ROUNDS times (default 3) and the ratio uses the median p99 of each: a single p99 of a
few hundred microseconds moves by 2x with one scheduling hiccup on a shared machine.

    CONNREG_BIN=$PWD/build/connreg DURATION=8 /usr/bin/python3 bench/isolation.py

Loopback only; every load is bounded in time and stops by itself."""
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BIN = os.environ.get("CONNREG_BIN", "build/connreg")
DURATION = int(os.environ.get("DURATION", "8"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
HERE = os.path.dirname(os.path.abspath(__file__))


def http(method, url, token=None, body=None, timeout=60):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, json.loads(r.read() or b"{}")


def wrk(url, token, connections, seconds, script="get.lua"):
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-H", f"Authorization: Bearer {token}", "-s", os.path.join(HERE, "wrk", script), url],
        capture_output=True, text=True, timeout=seconds + 60)
    line = next(l for l in out.stdout.splitlines() if l.startswith("BENCH_RESULT "))
    return json.loads(line[len("BENCH_RESULT "):])


def main():
    tmp = tempfile.mkdtemp(prefix="connreg-isolation-")
    # The hanging tests' listener is on loopback, which tests may reach only when allowed.
    proc = subprocess.Popen([BIN, "serve", "--database", f"sqlite:{tmp}/connreg.db",
                             "--listen", "127.0.0.1:0", "--egress-allow-loopback", "true"],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=tmp)
    port = None
    for line in proc.stdout:
        m = re.search(r'"event":"listening".*"port":(\d+)', line)
        if m:
            port = int(m.group(1))
            break
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    creds = json.load(open(f"{tmp}/bootstrap-credentials.json"))
    form = (f"grant_type=client_credentials&client_id={creds['clientId']}"
            f"&client_secret={creds['clientSecret']}").encode()
    token = json.loads(urllib.request.urlopen(urllib.request.Request(
        base + "/v2/auth/token", data=form), timeout=30).read())["access_token"]

    def body(name, **details):
        d = {"type": "postgres", "host": "db.example.com", "database": "a", "user": "u",
             "password": "s3cret"}
        d.update(details)
        return {"name": name, "details": d}

    for i in range(2000):
        status, created = http("POST", base + "/v2/connections", token, body(f"seed-{i:05d}"))
    one = f"{base}/v2/connections/{created['connectionId']}"
    results = {}

    def measure(name, background=None):
        stop = threading.Event()
        bg = []
        if background:
            bg = background(stop)
            time.sleep(1.0)
        r = wrk(one, token, 4, DURATION)
        stop.set()
        for t in bg:
            t.join()
        assert r["non2xx"] == 0 and not any(r["errors"].values()), r
        results.setdefault(name, []).append(r)
        print(f"{name:8s} GET one p50 {r['latency_ms']['p50']:8.3f} ms  p99 "
              f"{r['latency_ms']['p99']:8.3f} ms  {r['rps']:9.0f} req/s", flush=True)

    def wrk_load(url, connections, script):
        def start(stop):
            t = threading.Thread(target=wrk, args=(url, token, connections, DURATION + 2, script))
            t.start()
            return [t]
        return start

    def hanging_tests(stop):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(256)
        accepted = []
        threading.Thread(target=lambda: [accepted.append(listener.accept()) for _ in iter(int, 1)],
                         daemon=True).start()
        _, hang = http("POST", base + "/v2/connections", token,
                       {**body("black-hole", host="127.0.0.1", port=listener.getsockname()[1]),
                        "timeoutSecs": 20})
        answers = []

        def one_test():
            answers.append(http("GET", f"{base}/v2/connections/{hang['connectionId']}/test",
                                token, timeout=60))

        threads = [threading.Thread(target=one_test) for _ in range(64)]
        for t in threads:
            t.start()

        def closer():
            for t in threads:
                t.join()
            listener.close()
            steps = {s["code"] for _, r in answers for s in r["steps"] if s.get("code")}
            print(f"         the 64 hanging tests answered: {len(answers)}, codes {sorted(steps)}")
        c = threading.Thread(target=closer)
        c.start()
        return [c]

    measure("idle")
    measure("writes", wrk_load(base + "/v2/connections", 16, "post.lua"))
    measure("lists", wrk_load(base + "/v2/connections?limit=1000", 8, "get.lua"))
    measure("tests", hanging_tests)
    for _ in range(ROUNDS - 1):
        measure("idle")
        measure("tests", hanging_tests)

    def median_p99(name):
        return statistics.median(r["latency_ms"]["p99"] for r in results[name])

    idle = median_p99("idle")
    print("\nGET one p99 (median over rounds) relative to idle (same run):")
    for name in results:
        print(f"  {name:8s} {median_p99(name):8.3f} ms {median_p99(name) / idle:6.2f}x"
              f"  ({len(results[name])} round(s))")
    proc.terminate()
    proc.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
