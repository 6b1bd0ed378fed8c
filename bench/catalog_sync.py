"""The measuring half of bench/catalog_sync.sh (run that): starts connreg on a fresh SQLite
store, syncs the warehouse the script seeded, and prints the figures."""
from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import requests

BIN = os.environ["CONNREG_BIN"]
PG_PORT = int(os.environ["PG_PORT"])
DURATION = int(os.environ.get("DURATION", "10"))  # seconds of GET one, idle
BUSY = int(os.environ.get("BUSY", "2"))  # seconds of GET one during the first sync (it must outlast them)
HERE = Path(__file__).resolve().parent


class Server:
    def __init__(self, tmp: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNREG_")}
        env.update(CONNREG_DATABASE=f"sqlite:{tmp}/connreg.db", CONNREG_EGRESS_ALLOW_LOOPBACK="true",
                   CONNREG_SYNC_TIMEOUT="3600")
        self.proc = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0"], cwd=tmp, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.port = None
        for line in self.proc.stdout:
            m = re.search(r'"event":"listening".*"port":(\d+)', line)
            if m:
                self.port = int(m.group(1))
                break
        assert self.port, "connreg did not start"
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        creds = json.loads((tmp / "data" / "bootstrap-credentials.json").read_text()) \
            if (tmp / "data" / "bootstrap-credentials.json").exists() else \
            json.loads(next(tmp.rglob("bootstrap-credentials.json")).read_text())
        self.base = f"http://127.0.0.1:{self.port}"
        r = requests.post(self.base + "/v2/auth/token", data={
            "grant_type": "client_credentials", "client_id": creds["clientId"],
            "client_secret": creds["clientSecret"]})
        self.headers = {"Authorization": "Bearer " + r.json()["access_token"]}

    def call(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, self.base + path, headers=self.headers, timeout=3600, **kw)

    def connection(self, name: str) -> str:
        r = self.call("POST", "/v2/connections", json={"name": name, "timeoutSecs": 60, "details": {
            "type": "postgres", "host": "127.0.0.1", "port": PG_PORT, "user": "postgres",
            "password": "unused-trust-auth", "database": "wh"}})
        assert r.status_code == 201, r.text
        return r.json()["connectionId"]

    def sync(self, cid: str, path: list[str]) -> tuple[dict, float]:
        started = time.monotonic()
        r = self.call("POST", f"/v2/connections/{cid}/sync", json={"path": path})
        assert r.status_code in (200, 202), r.text
        body = r.json()
        while r.status_code == 202 or body.get("status") == "RUNNING":
            time.sleep(0.5)
            body = self.call("GET", f"/v2/connections/{cid}/sync").json()
            if body["status"] != "RUNNING":
                break
        assert body.get("status", "SUCCESS") == "SUCCESS", body
        return body, time.monotonic() - started

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def wrk(url: str, headers: dict, seconds: int) -> dict:
    args = ["wrk", "-t1", "-c8", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"p50_ms": ms("50"), "p99_ms": ms("99"), "rps": rps}


def store_bytes(tmp: Path) -> int:
    return sum(p.stat().st_size for p in tmp.rglob("connreg.db*"))


def page_latency(srv: Server, path: str, params: dict, n: int = 300) -> float:
    """Median of n sequential requests, in ms."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = srv.call("GET", path, params=params)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
    return sorted(times)[len(times) // 2]


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="connreg-catalog-bench-"))
    srv = Server(tmp)
    try:
        big, small = srv.connection("big"), srv.connection("small")
        one = f"{srv.base}/v2/connections/{big}"
        idle = wrk(one, srv.headers, DURATION)
        before = store_bytes(tmp)
        result: dict = {}
        t = threading.Thread(target=lambda: result.update(first=srv.sync(big, ["big"])))
        t.start()
        time.sleep(0.5)
        busy = wrk(one, srv.headers, BUSY)
        t.join()
        first, first_s = result["first"]
        assert first_s > BUSY + 0.5, f"the sync ({first_s:.1f} s) ended before the busy window; lower BUSY"
        size = store_bytes(tmp) - before
        again, again_s = srv.sync(big, ["big"])
        srv.sync(small, ["small"])

        def pages(cid: str, schema: str) -> tuple[float, float]:
            look = srv.call("POST", f"/v2/connection/{cid}/lookup", json={"path": [schema, "t50"]}).json()
            paths = page_latency(srv, "/v2/connections/paths", {"connectionId": cid, "limit": 50, "page": 2})
            cols = page_latency(srv, f"/v2/connections/tables/{look['inodeId']}/columns", {})
            return paths, cols

        big_paths, big_cols = pages(big, "big")
        small_paths, small_cols = pages(small, "small")
        print(json.dumps({"first_sync": {"seconds": round(first_s, 1), "added": first.get("added")},
                          "store_growth_mib": round(size / 2**20, 1),
                          "resync_unchanged": {"seconds": round(again_s, 1), "changed": again.get("changed"),
                                               "added": again.get("added")},
                          "get_one_idle": idle, "get_one_during_sync": busy,
                          "p99_ratio_busy_over_idle": round(busy["p99_ms"] / idle["p99_ms"], 2),
                          "paths_page_ms": {"big": round(big_paths, 3), "small": round(small_paths, 3),
                                            "ratio": round(big_paths / small_paths, 2)},
                          "columns_page_ms": {"big": round(big_cols, 3), "small": round(small_cols, 3),
                                              "ratio": round(big_cols / small_cols, 2)}}, indent=1))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
