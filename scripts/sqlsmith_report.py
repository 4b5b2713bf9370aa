#!/usr/bin/env python3
"""Summary of one scripts/sqlsmith.sh run; exit status 1 when it found a crash, an XX000 raised by
clv_ext, a hang or a memory finding.

Reads sqlsmith's stderr (--verbose: its closing report), the queries it generated
(--dump-all-queries), the server log of the run (log_line_prefix '%m [%p] %e ',
log_error_verbosity = verbose) and pgwatch.py's findings.
An XX000 counts as clv_ext's when its LOCATION is Rust source (*.rs, pgrx and the extension);
XX000 raised by PostgreSQL's own C code (sqlsmith calling e.g. float8_covar_pop on a bad array) are
listed apart and do not fail the run.
"""
import argparse
import collections
import json
import re
import sys

ENTRY = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ \S+ \[(\d+)\] (\S*) ?(ERROR|LOG|FATAL|PANIC|WARNING|DETAIL|HINT|"
                   r"LOCATION|STATEMENT|CONTEXT|NOTICE|INFO|DEBUG\d?|TRAP):\s+(.*)$")


def entries(path):
    cur = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = ENTRY.match(line)
            if m:
                if cur:
                    yield cur
                cur = {"pid": int(m.group(1)), "code": m.group(2), "level": m.group(3), "text": m.group(4)}
            elif line.startswith("TRAP:"):
                if cur:
                    yield cur
                cur = {"pid": 0, "code": "", "level": "TRAP", "text": line}
            elif cur is not None:
                cur["text"] += "\n" + line
    if cur:
        yield cur


def shorten(s, n=1500):
    s = re.sub(r"\s+", " ", s).strip()
    return s if len(s) <= n else s[:n] + "... (%d chars)" % len(s)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--err", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--server-log", required=True)
    p.add_argument("--watch", required=True)
    p.add_argument("--functions", required=True, help="regex alternation of clv_ext function names")
    p.add_argument("--seconds", type=float, default=0)
    p.add_argument("--status", type=int, default=0)
    p.add_argument("--json")
    a = p.parse_args()

    # server log: errors by SQLSTATE; XX000 with location and statement; crashes with query
    by_state = collections.Counter()
    xx_clv, xx_pg, crashes = [], [], []
    killed = set()
    watch = []
    try:
        with open(a.watch) as f:
            watch = [json.loads(line) for line in f if line.strip()]
    except OSError:
        pass
    killed = {w["pid"] for w in watch if w.get("killed")}
    es = list(entries(a.server_log))
    for i, e in enumerate(es):
        if e["level"] == "ERROR":
            by_state[e["code"] or "?"] += 1
            if e["code"] == "XX000":
                loc = stmt = ""
                for nxt in es[i + 1:i + 8]:
                    if nxt["pid"] != e["pid"]:
                        continue
                    if nxt["level"] == "LOCATION":
                        loc = nxt["text"]
                    elif nxt["level"] == "STATEMENT":
                        stmt = nxt["text"]
                        break
                    elif nxt["level"] in ("ERROR", "LOG", "FATAL"):
                        break
                rec = (e["text"].split("\n")[0], loc, stmt)
                (xx_clv if re.search(r"\.rs:\d+", loc) or not re.search(r"\.c:\d+", loc) else xx_pg).append(rec)
        text = e["text"]
        if e["level"] in ("PANIC", "TRAP") or re.search(r"terminated by signal|memory allocation of \d+ bytes failed", text):
            m = re.search(r"PID (\d+)\) was terminated by signal (\d+)", text)
            if m and int(m.group(1)) in killed and m.group(2) == "9":
                continue
            query = ""
            for nxt in es[i + 1:i + 3]:
                if nxt["level"] == "DETAIL" and "Failed process was running" in nxt["text"]:
                    query = nxt["text"].split("Failed process was running:", 1)[1]
            crashes.append((text.split("\n")[0], query))

    # sqlsmith: queries, its error histogram, broken connections
    queries = 0
    hist = collections.Counter()
    broken = 0
    with open(a.err, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"^queries: (\d+)", line)
            if m:
                queries = int(m.group(1))
            m = re.match(r"^(\d+)\t(.*)$", line)
            if m:
                hist[m.group(2).strip()] = int(m.group(1))  # the last report wins (cumulative)
            if re.fullmatch(r"[.eStC]+\n?", line):
                broken += line.count("C")
    with open(a.queries, encoding="utf-8", errors="replace") as f:
        dump = f.read()
    fre = re.compile(r"\b(?:public\.)?(?:%s)\(" % a.functions)
    qs = [q for q in dump.split(";\n") if q.strip()]
    with_clv = sum(1 for q in qs if fre.search(q))
    called = collections.Counter(m.group(0).replace("public.", "").rstrip("(") for q in qs for m in fre.finditer(q))

    hangs = [w for w in watch if w["kind"] == "HANG"]
    memory = [w for w in watch if w["kind"] == "MEMORY"]
    out = print
    out("\n================ sqlsmith summary ================")
    out("queries: %d in %.0f s (sqlsmith exit status %d); %d of them call a clv_ext function (%d calls of %d "
        "different functions)" % (queries, a.seconds, a.status, with_clv, sum(called.values()), len(called)))
    out("most called: " + ", ".join("%s %d" % kv for kv in called.most_common(12)))
    out("errors by SQLSTATE (server log): " + ", ".join("%s %d" % kv for kv in by_state.most_common(14)))
    out("errors by message (sqlsmith, top 10):")
    for msg, n in hist.most_common(10):
        out("  %6d  %s" % (n, msg[:150]))
    out("broken connections seen by sqlsmith: %d" % broken)
    out("hangs: %d, memory: %d, crashes: %d, XX000 (clv_ext): %d; XX000 raised by PostgreSQL's own C code: %d"
        % (len(hangs), len(memory), len(crashes), len(xx_clv), len(xx_pg)))
    for title, items in (("CRASH", crashes),):
        if items:
            out("\n%s (%d):" % (title, len(items)))
            for line, q in items:
                out("  %s\n      -- query: %s" % (line, shorten(q)))
    if xx_clv:
        out("\nXX000 from clv_ext (%d):" % len(xx_clv))
        for msg, loc, stmt in xx_clv:
            out("  %s [%s]\n      -- %s" % (msg, loc, shorten(stmt)))
    if xx_pg:
        out("\nXX000 from PostgreSQL itself (listed, not failing):")
        for msg, n in collections.Counter(m for m, _, _ in xx_pg).most_common(5):
            out("  %dx %s" % (n, msg))
    for w in hangs + memory:
        out("\n%s pid %d after %.1f s: %s\n      -- %s" % (w["kind"], w["pid"], w["seconds"], "; ".join(w["actions"]),
                                                       shorten(w["query"])))
    fail = len(hangs) + len(memory) + len(crashes) + len(xx_clv)
    if queries == 0:
        out("sqlsmith ran no query (exit status %d): see %s" % (a.status, a.err))
        fail += 1
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"queries": queries, "seconds": a.seconds, "clv_queries": with_clv, "hangs": len(hangs),
                       "memory": len(memory), "crashes": len(crashes), "xx000_clv": len(xx_clv),
                       "xx000_postgres": len(xx_pg), "broken": broken, "by_sqlstate": dict(by_state)}, f, indent=1)
    out("\nclv_ext sqlsmith: %s" % ("FAILED: %d findings" % fail if fail else "OK, nothing found"))
    return 1 if fail else 0


if __name__ == "__main__":
    sys.exit(main())
