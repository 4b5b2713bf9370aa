#!/usr/bin/env python3
"""Watchdog for the client backends of one database while another program (sqlsmith, pgbench)
sends the queries (issue 8). Runs until SIGTERM/SIGINT.

Every --interval seconds it reads pg_stat_activity for the database's client backends and:
  HANG    a query active for longer than --timeout + --slack seconds: pg_cancel_backend, then
          pg_terminate_backend, then (local server, as root, without --no-kill) SIGKILL if the
          backend survives both.
  MEMORY  a backend whose resident memory passes --mem-cap-mb (stopped the same way).
Each finding is one JSON line in --findings (kind, pid, seconds, query, actions). With --rss-log,
every --rss-every seconds one JSON line per backend: {"t", "pid", "rss", "anon", "app", "state"}
(resident and private anonymous memory, bytes). With --log-contexts-every, every so many seconds
pg_log_backend_memory_contexts() of each backend (its "Grand total" goes to the server log).
"""
import argparse
import json
import os
import signal
import sys
import threading
import time

import psycopg

ACTIVITY = """
SELECT pid, extract(epoch FROM clock_timestamp() - query_start)::float8, state, query, application_name,
       extract(epoch FROM query_start)::float8
FROM pg_stat_activity
WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()
"""


def rss_bytes(pid):
    try:
        with open("/proc/%d/statm" % pid) as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def status_kb(pid, *keys):
    """Fields of /proc/PID/status in kB (VmRSS, RssAnon...), None when unreadable."""
    out = dict.fromkeys(keys)
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in out:
                    out[k] = int(v.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


class Watch:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.handled = set()          # (pid, query_start) already escalated
        self.out = open(a.findings, "a") if a.findings else None
        self.rss = open(a.rss_log, "a") if a.rss_log else None
        self.stop = threading.Event()
        self.conn = None

    def connect(self):
        while not self.stop.is_set():
            try:
                self.conn = psycopg.connect(self.a.dsn, autocommit=True, connect_timeout=5)
                return True
            except psycopg.OperationalError:
                time.sleep(0.5)
        return False

    def q(self, sql, *args):
        """A query on a connection of its own (the escalation threads run next to the loop)."""
        try:
            with psycopg.connect(self.a.dsn, autocommit=True, connect_timeout=5) as c:
                return c.execute(sql, args).fetchone()
        except psycopg.Error:
            return None

    def emit(self, rec):
        line = json.dumps(rec)
        with self.lock:
            if self.out:
                self.out.write(line + "\n")
                self.out.flush()
            print("pgwatch: %s pid %s after %.1f s: %s | %s" % (rec["kind"], rec["pid"], rec["seconds"],
                  "; ".join(rec["actions"]), rec["query"][:300].replace("\n", " ")), file=sys.stderr, flush=True)

    def still_running(self, pid, started):
        """True while `pid` is alive and still on the query that started `started` seconds ago."""
        if not pid_alive(pid):
            return False
        r = self.q("SELECT state = 'active' AND extract(epoch FROM clock_timestamp() - query_start) >= %s - 0.5 "
                   "FROM pg_stat_activity WHERE pid = %s", started, pid)
        return bool(r and r[0])

    def escalate(self, kind, pid, seconds, query, why):
        t0 = time.monotonic()
        actions = [why, "pg_cancel_backend"]
        self.q("SELECT pg_cancel_backend(%s)", pid)
        stopped = False
        for _ in range(20):
            time.sleep(0.1)
            if not self.still_running(pid, seconds + (time.monotonic() - t0)):
                stopped = True
                actions.append("stopped by pg_cancel_backend after %.1f s" % (time.monotonic() - t0))
                break
        if not stopped:
            actions.append("pg_terminate_backend")
            self.q("SELECT pg_terminate_backend(%s)", pid)
            for _ in range(30):
                time.sleep(0.1)
                if not pid_alive(pid):
                    stopped = True
                    actions.append("stopped by pg_terminate_backend after %.1f s" % (time.monotonic() - t0))
                    break
        if not stopped:
            actions.append("backend survived pg_cancel_backend and pg_terminate_backend")
            if not self.a.no_kill:
                try:
                    os.kill(pid, signal.SIGKILL)
                    actions.append("killed with SIGKILL (the postmaster restarts every connection)")
                except OSError as e:
                    actions.append("SIGKILL failed: %s" % e)
        self.emit({"kind": kind, "pid": pid, "seconds": round(seconds, 1), "query": query, "actions": actions,
                   "killed": any(a.startswith("killed") for a in actions)})

    def run(self):
        if not self.connect():
            return
        last_rss = last_ctx = 0.0
        deadline = self.a.timeout + self.a.slack
        cap = self.a.mem_cap_mb * 1024 * 1024 if self.a.mem_cap_mb else None
        while not self.stop.is_set():
            try:
                rows = self.conn.execute(ACTIVITY, (self.a.datname,)).fetchall()
            except psycopg.Error:
                if not self.connect():
                    break
                continue
            now = time.time()
            for pid, secs, state, query, app, qstart in rows:
                rss = rss_bytes(pid)
                key = (pid, qstart)
                if state == "active" and secs is not None and key not in self.handled:
                    kind = why = None
                    if secs > deadline:
                        kind, why = "HANG", "active %.1f s, statement_timeout %.1f s" % (secs, self.a.timeout)
                    elif cap and rss and rss > cap:
                        kind, why = "MEMORY", "resident memory %d MB > %d MB" % (rss >> 20, cap >> 20)
                    if kind:
                        self.handled.add(key)
                        threading.Thread(target=self.escalate, args=(kind, pid, secs, query or "", why),
                                         daemon=True).start()
                if self.rss and now - last_rss >= self.a.rss_every and rss:
                    anon = status_kb(pid, "RssAnon")["RssAnon"]
                    self.rss.write(json.dumps({"t": round(now, 2), "pid": pid, "rss": rss,
                                               "anon": anon * 1024 if anon is not None else None,
                                               "app": app, "state": state}) + "\n")
                if self.a.log_contexts_every and now - last_ctx >= self.a.log_contexts_every:
                    try:
                        self.conn.execute("SELECT pg_log_backend_memory_contexts(%s)", (pid,))
                    except psycopg.Error:
                        pass
            if self.rss and now - last_rss >= self.a.rss_every:
                self.rss.flush()
                last_rss = now
            if self.a.log_contexts_every and now - last_ctx >= self.a.log_contexts_every:
                last_ctx = now
            # forget the queries that are over
            self.handled &= {(r[0], r[5]) for r in rows}
            self.stop.wait(self.a.interval)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dsn", default="")
    p.add_argument("--datname", required=True)
    p.add_argument("--timeout", type=float, default=1.0, help="the sessions' statement_timeout, seconds")
    p.add_argument("--slack", type=float, default=1.0)
    p.add_argument("--mem-cap-mb", type=int, default=1024)
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--no-kill", action="store_true")
    p.add_argument("--findings")
    p.add_argument("--rss-log")
    p.add_argument("--rss-every", type=float, default=1.0)
    p.add_argument("--log-contexts-every", type=float, default=0)
    a = p.parse_args()
    w = Watch(a)
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: w.stop.set())
    w.run()


if __name__ == "__main__":
    main()
