#!/usr/bin/env python3
"""Prints the soak summary (bench/soak.sh) from load.py's JSON line; exit 1 when the soak failed."""
import json
import sys

r = json.loads(sys.stdin.read())
limit = float(sys.argv[1])
stop_rc = int(sys.argv[2])
print(f"duration        {r['duration_s']} s, {r['clients']} clients")
print(f"requests        {r['requests']} ({r['rps']}/s)  by op: {r['by_op']}")
print(f"errors          {r['errors']}")
print(f"max latency     {r['latency_max_s']} s")
print(f"RSS start       {r['rss_start_kib']} KiB (after warm-up)")
print(f"RSS end         {r['rss_end_kib']} KiB (max {r['rss_max_kib']} KiB), growth {r['rss_growth_pct']}%")
print("RSS samples     " + " ".join(f"{t}s:{k}" for t, k, _ in r["samples"]))
print(f"server exit     {stop_rc}")
bad = []
if r["errors"]:
    bad.append(f"{r['errors']} errors, e.g. {r['error_samples'][:5]}")
if r["rss_growth_pct"] > limit:
    bad.append(f"RSS grew {r['rss_growth_pct']}% > {limit}%")
if stop_rc:
    bad.append(f"server exit status {stop_rc} after SIGTERM")
if bad:
    print("SOAK FAILED: " + "; ".join(bad))
    sys.exit(1)
print("SOAK OK")
