#!/usr/bin/env python3
"""CPU per process for scripts/bench-ab.sh: `snap CLUSTER_JSON` prints utime+stime (seconds)
per role from /proc (PostgreSQL: the postmaster, its live backends and its reaped children);
`table DIR LABEL SIDES...` reads the runs' loadtest JSON and CPU snapshots and prints one
Markdown table with per-side medians and the B/A ratio."""

import json
import os
import statistics
import sys

TICK = os.sysconf("SC_CLK_TCK")


def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    # The command may hold spaces: fields start after the last ')'.
    rest = text[text.rindex(")") + 2 :].split()
    ppid = int(rest[1])
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    return ppid, utime + stime, cutime + cstime


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if stat(int(d))[0] == pid:
                    out.append(int(d))
            except (OSError, ValueError):
                pass
    return out


def snap(cluster_json):
    with open(cluster_json) as f:
        doc = json.load(f)
    cpu = {}
    for p in doc["processes"]:
        role = p["role"]
        try:
            _, own, reaped = stat(p["pid"])
        except OSError:
            continue
        ticks = own
        if role == "postgres":
            ticks += reaped
            for c in children(p["pid"]):
                try:
                    ticks += stat(c)[1]
                except OSError:
                    pass
        cpu[role] = cpu.get(role, 0) + ticks / TICK
    json.dump(cpu, sys.stdout)


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def pick(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def table(out, label, sides):
    rows = []
    names = sorted(n[: -len(".json")] for n in os.listdir(out) if n.endswith(".json"))
    roles = ["edge", "haproxy", "postgres", "redis", "api"]
    head = "| run | ops/s | p50 ms | p99 ms | lost/dup/ooo | " + " | ".join(
        f"{r} us/op" for r in roles
    ) + " |"
    print(head)
    print("|" + "---|" * (5 + len(roles)))
    per_side = {s: [] for s in sides}
    for n in names:
        if not n.startswith(label + "-"):
            continue
        side = n[len(label) + 1]
        r = load(os.path.join(out, n + ".json"))
        c0 = load(os.path.join(out, n + ".cpu0")) or {}
        c1 = load(os.path.join(out, n + ".cpu1")) or {}
        if r is None:
            print(f"| {n} | failed | | | | " + " | ".join("" for _ in roles) + " |")
            continue
        durable = pick(r, "scenario") == "durable"
        if durable:
            ops = pick(r, "sends", "acked") or 0
            rate = pick(r, "sends", "acked_per_sec")
            lat = pick(r, "ack_latency") or {}
        else:
            ops = pick(r, "deliveries", "received") or 0
            rate = pick(r, "deliveries_per_sec")
            lat = pick(r, "latency") or {}
        p50 = lat.get("p50_ms") if isinstance(lat, dict) else None
        p99 = lat.get("p99_ms") if isinstance(lat, dict) else None
        d = r.get("deliveries", {})
        bad = f"{d.get('lost')}/{d.get('duplicated')}/{d.get('out_of_order')}"
        us = {}
        for role in roles:
            if role in c1 and ops:
                us[role] = (c1[role] - c0.get(role, 0)) * 1e6 / ops
        per_side.setdefault(side, []).append((rate, p50, p99, us))
        cells = " | ".join(f"{us[r]:.2f}" if r in us else "" for r in roles)
        print(f"| {n} | {fmt(rate)} | {fmt(p50)} | {fmt(p99)} | {bad} | {cells} |")
    med = {}
    for s, runs in per_side.items():
        if not runs:
            continue

        def m(vals):
            vals = [v for v in vals if v is not None]
            return statistics.median(vals) if vals else None

        med[s] = (
            m(r[0] for r in runs),
            m(r[1] for r in runs),
            m(r[2] for r in runs),
            {role: m(r[3].get(role) for r in runs) for role in roles},
        )
        cells = " | ".join(fmt(med[s][3][r], 2) for r in roles)
        print(
            f"| **median {s}** | **{fmt(med[s][0])}** | {fmt(med[s][1])} | {fmt(med[s][2])} | | {cells} |"
        )
    if "A" in med and "B" in med:
        a, b = med["A"], med["B"]
        ratio = lambda x, y: f"{y / x:.2f}" if x and y is not None else ""
        cells = " | ".join(ratio(a[3][r], b[3][r]) for r in roles)
        print(
            f"| **B/A** | **{ratio(a[0], b[0])}** | {ratio(a[1], b[1])} | {ratio(a[2], b[2])} | | {cells} |"
        )


def fmt(v, digits=1):
    if v is None:
        return ""
    if isinstance(v, (int, float)) and abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "snap":
        snap(sys.argv[2])
    elif len(sys.argv) >= 4 and sys.argv[1] == "table":
        table(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
