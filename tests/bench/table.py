#!/usr/bin/env python3
"""table.py - the markdown table of one benchmark run (bench.py's JSON lines).

Medians over the repetitions; every row carries the dsc/etcd ratio and,
where issue 6 sets one, the target and whether this run met it.

Usage: table.py RESULTS.jsonl [OUT.md]   (also prints the table)
"""

import json
import statistics
import sys

# (dsc row, etcd row, what is compared)
PAIRS = [
    ("reg-agent", "reg-etcd",
     "register: agent `PUT /v1/catalog/register` vs etcd `put`"),
    ("reg-rpc", "reg-etcd",
     "register: leader JSON-RPC `catalog.register` vs etcd `put`"),
    ("get-agent", "get-etcd",
     "lookup: agent `/v1/health/service/web` vs etcd range, linearizable"),
    ("get-agent-stale", "get-etcd-serializable",
     "lookup: agent `?stale` vs etcd range, serializable"),
    ("get-rpc", "get-etcd",
     "lookup: leader JSON-RPC `health.service` vs etcd range, "
     "linearizable"),
    ("get-rpc-stale", "get-etcd-serializable",
     "lookup: leader JSON-RPC, stale vs etcd range, serializable"),
]


def target(row, clients):
    """(minimum throughput ratio, p99 must be no worse) or None."""
    if row == "reg-agent":
        return (2.0 if clients == 1 else 3.0 if clients >= 64 else None,
                True)
    if row in ("get-agent", "get-agent-stale"):
        return (5.0, False)
    return None


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if abs(v) >= 100:
        return "%.0f" % v
    return "%.*f" % (digits, v)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def summarize(points):
    """Medians of one (row, clients) cell."""
    ok = [p for p in points if p.get("errors", -1) >= 0 and "secs" in p]
    if not ok:
        return None
    per_s = [p["secs"] for p in ok]
    return {
        "ops": med([p["ops_per_s"] for p in ok]),
        "p50": med([p["p50_ms"] for p in ok]),
        "p99": med([p["p99_ms"] for p in ok]),
        "errors": sum(p["errors"] for p in ok),
        "srv_cpu": med([p["cpu_servers_s"] / s for p, s in zip(ok, per_s)
                        if s > 0]),
        "gen_cpu": med([p["cpu_load_s"] / s for p, s in zip(ok, per_s)
                        if s > 0]),
        "reps": len(ok),
    }


def verdict(ok):
    return "met" if ok else "**missed**"


def throughput_table(lines, out):
    cells = {}
    for r in lines:
        if r.get("phase") in ("lookup", "register"):
            cells.setdefault((r["row"], r["clients"]), []).append(r)
    clients = sorted({c for _, c in cells})
    out.append("| work | clients | dsc ops/s | etcd ops/s | dsc/etcd | "
               "dsc p50 ms | etcd p50 ms | dsc p99 ms | etcd p99 ms | "
               "p99 dsc/etcd | errors dsc/etcd | server CPU dsc/etcd "
               "(cores) | loader CPU dsc/etcd (cores) | target |")
    out.append("|" + " --- |" * 14)
    for drow, erow, what in PAIRS:
        for c in clients:
            d = summarize(cells.get((drow, c), []))
            e = summarize(cells.get((erow, c), []))
            if d is None or e is None:
                continue
            tr = ratio(d["ops"], e["ops"])
            pr = ratio(d["p99"], e["p99"])
            t = target(drow, c)
            tgt = "-"
            if t is not None and t[0] is not None:
                good = tr is not None and tr >= t[0]
                txt = ">= %gx" % t[0]
                if t[1]:
                    good = good and pr is not None and pr <= 1.0
                    txt += ", p99 no worse"
                tgt = "%s: %s" % (txt, verdict(good))
            out.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |"
                       " %d/%d | %s/%s | %s/%s | %s |" % (
                           what, c, fmt(d["ops"]), fmt(e["ops"]),
                           fmt(tr, 2) + "x" if tr else "-",
                           fmt(d["p50"], 2), fmt(e["p50"], 2),
                           fmt(d["p99"], 2), fmt(e["p99"], 2),
                           fmt(pr, 2) if pr else "-",
                           d["errors"], e["errors"],
                           fmt(d["srv_cpu"], 2), fmt(e["srv_cpu"], 2),
                           fmt(d["gen_cpu"], 2), fmt(e["gen_cpu"], 2), tgt))


def other_table(lines, out):
    by = {}
    for r in lines:
        by.setdefault(r.get("phase"), []).append(r)
    out.append("| measure | dsc | etcd | dsc/etcd | target |")
    out.append("| --- | --- | --- | --- | --- |")
    for phase, what, goal in (("rss-idle", "server RSS, idle", 0.2),
                              ("rss-full", "server RSS, full", 0.25)):
        for r in by.get(phase, []):
            d, e = r["rss_kb"]["dsc"] / 1024, r["rss_kb"]["etcd"] / 1024
            if phase == "rss-full":
                what = "server RSS after %d / %d registrations" % (
                    r["acked"]["dsc"], r["acked"]["etcd"])
            q = ratio(d, e)
            out.append("| %s (MB, 3 servers) | %s | %s | %s | <= 1/%g: %s |"
                       % (what, fmt(d), fmt(e), fmt(q, 2), 1 / goal,
                          verdict(q is not None and q <= goal)))
            if "dsc_agent" in r["rss_kb"]:
                out.append("| agent RSS, %s (MB) | %s | - | - | - |" % (
                    phase[4:], fmt(r["rss_kb"]["dsc_agent"] / 1024)))
            idle = by.get("rss-idle", [])
            if phase == "rss-full" and idle and \
                    r["acked"]["dsc"] != r["acked"]["etcd"]:
                # The sweeps register more in the faster system; compare
                # what each instance costs, the growth over idle.
                i = idle[-1]["rss_kb"]
                gd = (r["rss_kb"]["dsc"] - i["dsc"]) / max(
                    r["acked"]["dsc"], 1)
                ge = (r["rss_kb"]["etcd"] - i["etcd"]) / max(
                    r["acked"]["etcd"], 1)
                q = ratio(gd, ge)
                out.append("| server RSS growth per instance, (full - idle)"
                           " / instances (KB, 3 servers) | %s | %s | %s |"
                           " <= 1/%g: %s |"
                           % (fmt(gd), fmt(ge), fmt(q, 2), 1 / goal,
                              verdict(q is not None and q <= goal)))
    fo = {}
    for r in by.get("failover", []):
        fo.setdefault(r["system"], []).append(r.get("failover_ms", -1))
    e = [x for x in fo.get("etcd", []) if x >= 0]
    for name in ("dsc", "dsc-agent"):
        if name not in fo:
            continue
        d = [x for x in fo[name] if x >= 0]
        q = ratio(med(d), med(e))
        label = ("through the agent" if name == "dsc-agent"
                 else "client on the servers' JSON-RPC")
        out.append("| failover: kill -9 leader to next acked write, median "
                   "ms (min-max, %d/%d reps), %s | %s (%s-%s) | %s (%s-%s) "
                   "| %s | <= 1/3: %s |" % (
                       len(d), len(e), label, fmt(med(d)),
                       fmt(min(d) if d else None), fmt(max(d) if d else None),
                       fmt(med(e)), fmt(min(e) if e else None),
                       fmt(max(e) if e else None), fmt(q, 2),
                       verdict(q is not None and q <= 1 / 3)))
    cli = {r["system"]: r for r in by.get("cli", [])}
    if "dsc" in cli and "etcd" in cli:
        d, e = cli["dsc"], cli["etcd"]
        q = ratio(d["p50_ms"], e["p50_ms"])
        out.append("| whole-process CLI, median ms of %d runs: `%s` vs `%s`"
                   " (errors %d/%d) | %s | %s | %s | <= 1/5: %s |" % (
                       d["runs"], d["command"], e["command"], d["errors"],
                       e["errors"], fmt(d["p50_ms"], 2), fmt(e["p50_ms"], 2),
                       fmt(q, 2), verdict(q is not None and q <= 0.2)))
    for r in by.get("fsync", []):
        out.append("| fdatasync floor on the data dirs' filesystem, %d x %d"
                   " B: append p50/p99 ms, overwrite p50/p99 ms | %s/%s, "
                   "%s/%s | (same disk) | - | - |" % (
                       r["count"], r["size"], fmt(r["append_p50_ms"], 2),
                       fmt(r["append_p99_ms"], 2),
                       fmt(r["overwrite_p50_ms"], 2),
                       fmt(r["overwrite_p99_ms"], 2)))
    for r in by.get("note", []):
        out.append("")
        out.append("Note: " + r["note"])


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: table.py RESULTS.jsonl [OUT.md]")
    with open(sys.argv[1]) as f:
        lines = [json.loads(x) for x in f if x.strip()]
    out = []
    setup = [r for r in lines if r.get("phase") == "setup"]
    if setup:
        out.append("Run of %s; dsc agent %s. Medians of the repetitions; "
                   "CPU in cores (CPU-seconds per second)." %
                   (setup[0]["time"], "included" if setup[0]["agent"]
                    else "not built yet: agent rows absent"))
        out.append("")
    throughput_table(lines, out)
    out.append("")
    other_table(lines, out)
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if len(sys.argv) == 3:
        with open(sys.argv[2], "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
