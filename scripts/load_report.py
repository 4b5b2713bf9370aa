#!/usr/bin/env python3
"""Figures of one scripts/load.sh run: pgbench's tps, errors, and each backend's memory at the
start (after a warm-up) and at the end, from pgwatch.py's samples (/proc: resident and private
anonymous memory) and from pg_log_backend_memory_contexts()' "Grand total" lines in the server log.
Exit status 1 on any failed or missing transaction, or a backend whose private memory or memory
contexts grew by more than the bounds."""
import argparse
import collections
import json
import re
import sys

GRAND = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] \S* ?LOG:\s+Grand total: (\d+) bytes")


def mb(b):
    return "%.1f" % (b / 1048576.0) if b is not None else "-"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pgbench", required=True)
    p.add_argument("--rss-log", required=True)
    p.add_argument("--server-log", required=True)
    p.add_argument("--expected-tx", type=int, required=True)
    p.add_argument("--calls-per-tx", type=int, default=3)
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of a backend's life before its start figure")
    p.add_argument("--max-anon-growth-mb", type=float, default=4.0)
    p.add_argument("--max-context-growth-kb", type=float, default=512.0)
    p.add_argument("--json")
    a = p.parse_args()

    text = open(a.pgbench, encoding="utf-8", errors="replace").read()

    def grab(pattern, cast=float, default=None):
        m = re.search(pattern, text, re.M)
        return cast(m.group(1)) if m else default

    processed = grab(r"number of transactions actually processed: (\d+)", int, 0)
    failed = grab(r"number of failed transactions: (\d+)", int, 0)
    tps = grab(r"^tps = ([\d.]+)")
    latency = grab(r"latency average = ([\d.]+) ms")

    samples = collections.defaultdict(list)
    for line in open(a.rss_log):
        r = json.loads(line)
        if r.get("app") == "pgbench":
            samples[r["pid"]].append(r)
    ctx = collections.defaultdict(list)
    for line in open(a.server_log, encoding="utf-8", errors="replace"):
        m = GRAND.match(line)
        if m:
            ctx[int(m.group(1))].append(int(m.group(2)))

    rows = []
    for pid, ss in sorted(samples.items()):
        ss.sort(key=lambda r: r["t"])
        t0, t1 = ss[0]["t"], ss[-1]["t"]
        # A figure taken while a query runs includes that query's transient memory: the start is
        # the smallest figure of the first half of the backend's life (after the warm-up), the end
        # the smallest of its last third; memory that leaks raises both minima.
        warm = min(a.warmup, 0.3 * (t1 - t0))
        early = [r for r in ss if t0 + warm <= r["t"] <= t0 + warm + (t1 - t0 - warm) / 2] or ss[:1]
        late = [r for r in ss if r["t"] >= t1 - (t1 - t0) / 3] or ss[-1:]
        cs = ctx.get(pid, [])
        ce, cl = cs[1:1 + max(1, (len(cs) - 1) // 2)], cs[-max(1, len(cs) // 3):]

        def low(rs, k):
            vals = [r.get(k) for r in rs if r.get(k) is not None]
            return min(vals) if vals else None
        rows.append({"pid": pid, "samples": len(ss), "seconds": round(t1 - t0, 1),
                     "rss_start": low(early, "rss"), "rss_end": low(late, "rss"),
                     "anon_start": low(early, "anon"), "anon_end": low(late, "anon"),
                     "ctx_start": min(ce) if ce else None, "ctx_end": min(cl) if cl else None, "ctx_logs": len(cs)})

    print("\n================ load summary ================")
    print("pgbench: %d/%d transactions (%d scoring calls), failed %d, tps %s, latency %s ms"
          % (processed, a.expected_tx, processed * a.calls_per_tx, failed, tps, latency))
    print("backend memory, MB (start: least of the first half after %.1f s of warm-up; end: least of the last third;"
          " memory contexts in kB):" % a.warmup)
    print("  %7s %7s %6s  %9s %9s  %10s %10s  %9s %9s" % ("pid", "samples", "secs", "rss start", "rss end",
                                                           "anon start", "anon end", "ctx start", "ctx end"))
    for r in rows:
        print("  %7d %7d %6.1f  %9s %9s  %10s %10s  %9s %9s" % (
            r["pid"], r["samples"], r["seconds"], mb(r["rss_start"]), mb(r["rss_end"]), mb(r["anon_start"]),
            mb(r["anon_end"]), "%d" % (r["ctx_start"] / 1024) if r["ctx_start"] else "-",
            "%d" % (r["ctx_end"] / 1024) if r["ctx_end"] else "-"))
    def growth(k):
        return max([r[k + "_end"] - r[k + "_start"] for r in rows
                    if r[k + "_start"] is not None and r[k + "_end"] is not None] or [0])
    anon_growth, rss_growth, ctx_growth = growth("anon"), growth("rss"), growth("ctx")
    print("largest growth of one backend: private (anonymous) memory %s MB, resident %s MB, memory contexts %.0f kB"
          % (mb(anon_growth), mb(rss_growth), ctx_growth / 1024.0))
    problems = []
    if processed != a.expected_tx:
        problems.append("%d of %d transactions processed" % (processed, a.expected_tx))
    if failed:
        problems.append("%d failed transactions" % failed)
    if len(rows) == 0:
        problems.append("no backend memory sample")
    if anon_growth > a.max_anon_growth_mb * 1048576:
        problems.append("private memory of a backend grew by %s MB (bound %.1f MB)" % (mb(anon_growth), a.max_anon_growth_mb))
    if ctx_growth > a.max_context_growth_kb * 1024:
        problems.append("memory contexts of a backend grew by %.0f kB (bound %.0f kB)" % (ctx_growth / 1024.0, a.max_context_growth_kb))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"processed": processed, "expected": a.expected_tx, "failed": failed, "tps": tps,
                       "latency_ms": latency, "calls": processed * a.calls_per_tx, "backends": rows,
                       "max_anon_growth": anon_growth, "max_rss_growth": rss_growth, "max_ctx_growth": ctx_growth,
                       "problems": problems}, f, indent=1)
    if problems:
        print("clv_ext load: FAILED: " + "; ".join(problems))
        return 1
    print("clv_ext load: OK (no error, no memory growth beyond the bounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
