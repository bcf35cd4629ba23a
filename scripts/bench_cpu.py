#!/usr/bin/env python3
"""CPU per process for scripts/bench-ab.sh: `snap CLUSTER_JSON` prints utime+stime (seconds)
per role from /proc (PostgreSQL: the postmaster, its live backends and its reaped children);
`table DIR LABEL SIDES...` reads the runs' loadtest JSON and CPU snapshots and prints one
Markdown table with per-side medians and the B/A ratio; `capacity DIR` prints the table of
scripts/capacity.sh (CPU per publish, per delivery and per durable send, per run label)."""

import json
import os
import statistics
import subprocess
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
        if role == "redis" and p.get("port"):
            for k, v in redis_counters(p["port"]).items():
                cpu[k] = cpu.get(k, 0) + v
    json.dump(cpu, sys.stdout)


def redis_counters(port):
    """Publish calls and the time spent in them (PUBLISH and SPUBLISH, from INFO commandstats),
    and the reads and writes the node made on its connections (INFO stats)."""
    try:
        text = subprocess.run(
            ["redis-cli", "-p", str(port), "info", "all"],
            capture_output=True, text=True, timeout=5,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key in ("cmdstat_publish", "cmdstat_spublish"):
            fields = dict(f.split("=", 1) for f in value.split(",") if "=" in f)
            out["redis_publish_calls"] = out.get("redis_publish_calls", 0) + int(fields["calls"])
            out["redis_publish_usec"] = out.get("redis_publish_usec", 0) + int(fields["usec"])
        elif key in ("total_reads_processed", "total_writes_processed"):
            out["redis_io"] = out.get("redis_io", 0) + int(value)
    return out


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


def capacity(out):
    """One row per `<mode>-e<edges>` of scripts/capacity.sh: at the highest rate run, CPU per
    operation (Redis per publish: every message is published once; edges per delivery;
    PostgreSQL per acked send), and where a lower rate was run too, the marginal cost between
    the two rates (CPU/s difference over messages/s difference), which leaves out what the
    processes spend with no traffic (presence heartbeats, timers, the cluster bus)."""
    runs = {}
    for n in sorted(os.listdir(out)):
        if not n.endswith(".json"):
            continue
        name = n[: -len(".json")]
        label, rate = name.rsplit("-", 1)[0].rsplit("-r", 1)
        r = load(os.path.join(out, n))
        c0 = load(os.path.join(out, name + ".cpu0")) or {}
        c1 = load(os.path.join(out, name + ".cpu1")) or {}
        secs = pick(r, "duration_secs")
        sent = pick(r, "sends", "acked") or 0
        got = pick(r, "deliveries", "received") or 0
        if not sent or not got or not secs:
            continue
        dd = r.get("deliveries", {})
        keys = ("redis", "edge", "postgres", "redis_publish_calls", "redis_publish_usec", "redis_io")
        per_s = {k: (c1.get(k, 0) - c0.get(k, 0)) / secs for k in keys}
        runs.setdefault(label, {}).setdefault(float(rate), []).append(
            (
                sent / secs,
                got / secs,
                per_s,
                pick(r, "latency", "p99_ms"),
                dd.get("lost", 0) + dd.get("duplicated", 0) + dd.get("out_of_order", 0),
            )
        )
    print(
        "| mode, edges | msgs/s | deliveries/msg | redis us/publish | edge us/delivery "
        "| postgres us/send | redis marginal us/publish | edge marginal us/delivery "
        "| postgres marginal us/send | redis in PUBLISH us/call | redis reads+writes/publish "
        "| p99 ms | lost+dup+ooo |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")

    def order(label):
        mode, edges = label.rsplit("-e", 1)
        return (mode, int(edges) if edges.isdigit() else 0)

    def median_run(rows):
        m = lambda f: statistics.median(f(x) for x in rows)
        cpu = {k: m(lambda x: x[2][k]) for k in rows[0][2]}
        return m(lambda x: x[0]), m(lambda x: x[1]), cpu, m(lambda x: x[3] or 0)

    for label in sorted(runs, key=order):
        by_rate = runs[label]
        hi = median_run(by_rate[max(by_rate)])
        msgs, dels, cpu, p99 = hi
        cells = [cpu["redis"] * 1e6 / msgs, cpu["edge"] * 1e6 / dels, cpu["postgres"] * 1e6 / msgs]
        marg = ["", "", ""]
        if len(by_rate) > 1:
            lo = median_run(by_rate[min(by_rate)])
            dm, dd_ = msgs - lo[0], dels - lo[1]
            marg = [
                f"{(cpu['redis'] - lo[2]['redis']) * 1e6 / dm:.1f}",
                f"{(cpu['edge'] - lo[2]['edge']) * 1e6 / dd_:.1f}",
                f"{(cpu['postgres'] - lo[2]['postgres']) * 1e6 / dm:.1f}",
            ]
        bad = sum(x[4] for rows in by_rate.values() for x in rows)
        calls = cpu["redis_publish_calls"]
        in_cmd = f"{cpu['redis_publish_usec'] / calls:.2f}" if calls else ""
        io = f"{cpu['redis_io'] / msgs:.2f}" if calls else ""
        print(
            f"| {label.replace('-e', ', ')} | {fmt(msgs)} | {dels / msgs:.1f} | {cells[0]:.1f} "
            f"| {cells[1]:.1f} | {cells[2]:.1f} | {marg[0]} | {marg[1]} | {marg[2]} "
            f"| {in_cmd} | {io} | {fmt(p99)} | {bad} |"
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
    elif len(sys.argv) == 3 and sys.argv[1] == "capacity":
        capacity(sys.argv[2])
    elif len(sys.argv) >= 4 and sys.argv[1] == "table":
        table(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
