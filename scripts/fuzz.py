#!/usr/bin/env python3
"""Catalog-driven edge-value fuzzer for clv_ext (issue 8, item 8).

Every SQL function of the extension (pg_proc joined to pg_depend deptype 'e' on clv_ext; no
aggregate support functions, nothing taking or returning internal/cstring, no type in/out/send/recv)
is called with combinations of edge values per argument type: NULL, 0, -0, negatives, NaN,
+/-Infinity, 1e-300, 1e300, huge integers, empty, malformed and odd text ('fortnight'),
timestamps +/-infinity, arrays (empty, with NULLs, huge), and model / rfm_summary values (normal
ones, fitted ones, extreme parameter mixes; the constructors and the aggregates that make them are
found in the catalog). Set-returning functions run as `SELECT * FROM f(...) LIMIT 1000`, aggregates
over small VALUES sets, window functions OVER (). Two more targets per type: text input of malformed
and mutated text forms (`'...'::type`), and, when the type has a receive function, binary input of
mutated send() bytes.

Calls are sampled deterministically (--seed) and round-robin over the functions, so a short
budget (--calls) covers every function and a longer one goes deeper. Each call runs in its own
transaction (rolled back) under statement_timeout, watched from a second connection:

  HANG     the call outlived statement_timeout by more than --slack seconds: it is then cancelled
           (pg_cancel_backend), terminated (pg_terminate_backend) and, if the backend survives
           both, killed with SIGKILL (local server, as root; --no-kill to only report it).
  MEMORY   the backend's resident memory passed --mem-cap-mb during the call (stopped the same way).
  CRASH    the connection was lost without the watchdog killing the backend (the server log is
           searched for "terminated by signal", TRAP and PANIC lines).
  XX000    an internal error.
  NONFINITE a NaN or infinity in a float column, a float8[] or the JSON of a returned value.
Other SQLSTATE classes than 22, 42, 0A000, 57014, 53 and 54 are listed as unexpected.

Exit status: 0 when no HANG, MEMORY, CRASH, XX000 or NONFINITE was found, 1 otherwise, 2 on a
usage or connection error. See docs/reliability.md.
"""
import argparse
import collections
import json
import math
import os
import random
import re
import signal
import sys
import threading
import time

import psycopg
from psycopg import sql as _sql  # noqa: F401  (kept for users extending the fuzzer)
from psycopg.adapt import Dumper
from psycopg.types.string import TextLoader

ALLOWED_CLASSES = ("22", "42", "53", "54")
ALLOWED_CODES = ("0A000", "57014")
FAIL_KINDS = ("HANG", "MEMORY", "CRASH", "XX000", "NONFINITE")


# --------------------------------------------------------------------------------------------
# Running one call under the watchdog
# --------------------------------------------------------------------------------------------

class Outcome:
    __slots__ = ("sql", "target", "ok", "sqlstate", "message", "elapsed", "rows", "findings", "notes")

    def __init__(self, sql, target):
        self.sql, self.target = sql, target
        self.ok, self.sqlstate, self.message = False, None, None
        self.elapsed, self.rows = 0.0, None
        self.findings, self.notes = [], []


def rss_bytes(pid):
    try:
        with open("/proc/%d/statm" % pid) as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


class Runner:
    """A worker connection whose every call is watched from an admin connection."""

    def __init__(self, dsn, timeout, slack, mem_cap_mb, server_log, kill, library, log):
        self.dsn, self.timeout, self.slack = dsn, timeout, slack
        self.mem_cap = mem_cap_mb * 1024 * 1024 if mem_cap_mb else None
        self.server_log, self.kill, self.library, self.log = server_log, kill, library, log
        self.conn = self.admin = None
        self.pid = None
        self.log_offset = self._log_size()
        self.lib_mtime = self._lib_mtime()
        self.restarts = 0
        self.connect()

    # -- connections -------------------------------------------------------------------------
    def _log_size(self):
        try:
            return os.path.getsize(self.server_log) if self.server_log else 0
        except OSError:
            return 0

    def _lib_mtime(self):
        try:
            return os.stat(self.library).st_mtime if self.library else None
        except OSError:
            return None

    def _open(self, autocommit):
        conn = psycopg.connect(self.dsn, autocommit=autocommit, connect_timeout=10)
        # Values the fuzzer only checks as text: infinite dates and timestamps, numeric NaN.
        for t in ("date", "timestamp", "timestamptz", "time", "timetz", "interval", "numeric",
                  "json", "jsonb"):
            conn.adapters.register_loader(t, TextLoader)
        return conn

    def connect(self, wait=60.0):
        deadline = time.monotonic() + wait
        while True:
            try:
                if self.conn is not None:
                    try:
                        self.conn.close()
                    except Exception:
                        pass
                self.conn = self._open(autocommit=False)
                with self.conn.cursor() as cur:
                    cur.execute("SET statement_timeout = %d" % int(self.timeout * 1000))
                    cur.execute("SET extra_float_digits = 3")
                    # PostgreSQL's JIT compiles a costly plan without looking at statement_timeout
                    cur.execute("SET jit = off")
                    cur.execute("SELECT pg_backend_pid()")
                    self.pid = cur.fetchone()[0]
                self.conn.commit()
                self._admin(reconnect=True)
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _admin(self, reconnect=False):
        if reconnect or self.admin is None or self.admin.closed or self.admin.broken:
            try:
                if self.admin is not None:
                    self.admin.close()
            except Exception:
                pass
            self.admin = self._open(autocommit=True)
        return self.admin

    def admin_call(self, q, *args):
        for attempt in (0, 1):
            try:
                with self._admin(reconnect=attempt > 0).cursor() as cur:
                    cur.execute(q, args)
                    return cur.fetchone()
            except psycopg.OperationalError:
                time.sleep(0.2)
        return None

    # -- watchdog ----------------------------------------------------------------------------
    def _watch(self, pid, start, done, st):
        deadline = start + self.timeout + self.slack

        def wait(seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                if done.wait(0.05):
                    return True
                r = rss_bytes(pid)
                if r:
                    st["peak_rss"] = max(st["peak_rss"], r)
            return done.is_set()

        def escalate(why):
            t = lambda: time.monotonic() - start  # noqa: E731
            st["actions"].append("%s at %.1f s; pg_cancel_backend" % (why, t()))
            self.admin_call("SELECT pg_cancel_backend(%s)", pid)
            if wait(2.0):
                st["actions"].append("stopped by pg_cancel_backend at %.1f s" % t())
                return
            st["actions"].append("still running at %.1f s; pg_terminate_backend" % t())
            st["terminated"] = True
            self.admin_call("SELECT pg_terminate_backend(%s)", pid)
            if wait(3.0) or not pid_alive(pid):
                st["actions"].append("stopped by pg_terminate_backend at %.1f s" % t())
                return
            st["actions"].append("backend %d survived pg_cancel_backend and pg_terminate_backend" % pid)
            if self.kill:
                try:
                    os.kill(pid, signal.SIGKILL)
                    st["killed"] = True
                    st["actions"].append("killed with SIGKILL at %.1f s (the postmaster restarts "
                                         "every connection)" % t())
                except OSError as e:
                    st["actions"].append("SIGKILL failed: %s" % e)
            wait(30.0)

        while not done.is_set():
            if done.wait(0.05):
                break
            r = rss_bytes(pid)
            if r:
                st["peak_rss"] = max(st["peak_rss"], r)
            if self.mem_cap and r and r > self.mem_cap and not st["mem"]:
                st["mem"] = r
                escalate("resident memory %d MB > cap %d MB" % (r >> 20, self.mem_cap >> 20))
            elif time.monotonic() > deadline and not st["hang"]:
                st["hang"] = time.monotonic() - start
                escalate("still running %.1f s after statement_timeout (%.1f s)"
                         % (st["hang"] - self.timeout, self.timeout))

    # -- one call ----------------------------------------------------------------------------
    def run(self, sql, target, params=None, result_types=None):
        o = Outcome(sql, target)
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.connect()
        pid = self.pid
        done = threading.Event()
        st = {"hang": None, "mem": None, "actions": [], "killed": False, "terminated": False, "peak_rss": 0}
        start = time.monotonic()
        wd = threading.Thread(target=self._watch, args=(pid, start, done, st), daemon=True)
        wd.start()
        err = None
        desc = None
        try:
            for p in params or ():
                if isinstance(p, _RawBase):   # before the cursor, which copies the adapters
                    self.conn.adapters.register_dumper(type(p), type(p).dumper)
            with self.conn.cursor() as cur:
                if params is None:
                    cur.execute(sql)
                else:
                    cur.execute(sql, params)
                desc = cur.description
                o.rows = cur.fetchall() if desc is not None else []
        except psycopg.Error as e:
            err = e
        finally:
            o.elapsed = time.monotonic() - start
            done.set()
            wd.join()
        lost = self.conn.closed or self.conn.broken
        if not lost:
            try:
                self.conn.rollback()
            except psycopg.Error:
                lost = True
        if err is not None:
            o.sqlstate = getattr(err, "sqlstate", None) or ("connection lost" if lost else "client error")
            o.message = (str(err).strip().splitlines() or [""])[0][:300]
        else:
            o.ok = True

        if st["hang"]:
            o.findings.append(("HANG", "; ".join(st["actions"])))
        if st["mem"]:
            o.findings.append(("MEMORY", "peak RSS %d MB; %s" % (st["peak_rss"] >> 20, "; ".join(st["actions"]))))
        if lost:
            self.restarts += 1
            crash_lines = self._new_crash_lines(pid if st["killed"] else None)
            if not (st["killed"] or st["terminated"]):
                note = "; ".join(crash_lines) or "connection lost (no crash line in the server log)"
                mt = self._lib_mtime()
                if mt is not None and self.lib_mtime is not None and mt != self.lib_mtime:
                    note += " [the library %s was replaced during the run: the crash may come from " \
                            "the reinstall]" % self.library
                    self.lib_mtime = mt
                o.findings.append(("CRASH", note))
            elif crash_lines:
                o.notes.append("; ".join(crash_lines))
            self.connect()
        else:
            self._new_crash_lines(None)   # keep the offset current
        if o.sqlstate == "XX000":
            o.findings.append(("XX000", o.message))
        if o.ok and o.rows:
            bad = nonfinite_in_rows(o.rows, desc, result_types)
            if bad:
                o.findings.append(("NONFINITE", bad))
        return o

    def _new_crash_lines(self, own_kill_pid):
        if not self.server_log:
            return []
        try:
            with open(self.server_log, "rb") as f:
                f.seek(self.log_offset)
                data = f.read()
                self.log_offset = f.tell()
        except OSError:
            return []
        out = []
        for line in data.decode("utf-8", "replace").splitlines():
            if re.search(r"terminated by signal|TRAP:|PANIC:|was terminated by exception|"
                         r"memory allocation of \d+ bytes failed", line):
                if own_kill_pid and ("PID %d)" % own_kill_pid) in line and "signal 9" in line:
                    continue
                out.append(re.sub(r"^\d{4}-\d\d-\d\d [\d:.]+ \S+ ", "", line.strip())[:300])
        return out


# --------------------------------------------------------------------------------------------
# Non-finite detection
# --------------------------------------------------------------------------------------------

def _json_bad(text):
    found = []

    def const(tok):
        found.append(tok)
        return float("nan")

    try:
        obj = json.loads(text, parse_constant=const)
    except (ValueError, RecursionError):
        return None
    if found:
        return "JSON token %s" % found[0]
    return _py_bad(obj)


def _py_bad(v):
    if isinstance(v, float):
        return None if math.isfinite(v) else repr(v)
    if isinstance(v, (list, tuple)):
        for x in v:
            b = _py_bad(x)
            if b:
                return b
    if isinstance(v, dict):
        for k, x in v.items():
            b = _py_bad(x)
            if b:
                return "%s: %s" % (k, b)
    return None


NUMERIC_OIDS = {1700}
JSON_OIDS = {114, 3802}


def nonfinite_in_rows(rows, desc, ext_type_oids):
    for row in rows:
        for col, v in zip(desc, row):
            if v is None:
                continue
            bad = None
            if col.type_code in NUMERIC_OIDS and isinstance(v, str):
                bad = v if v.lower() in ("nan", "infinity", "-infinity") else None
            elif isinstance(v, str) and (col.type_code in JSON_OIDS or (ext_type_oids and col.type_code in ext_type_oids)):
                bad = _json_bad(v)
            else:
                bad = _py_bad(v)
            if bad:
                return "column %s = %s" % (col.name, bad)
    return None


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------

HUGE = "huge"  # marker: a value too large to multiply rows with


class V:
    """An SQL expression for a value, with a flag for the big ones."""
    __slots__ = ("expr", "huge")

    def __init__(self, expr, huge=False):
        self.expr, self.huge = expr, huge

    def __repr__(self):
        return self.expr


def lit(s):
    return "'" + s.replace("'", "''") + "'"


EDGES = {
    "double precision": ["NULL", "0", "'-0'", "1", "-1", "-38.86", "0.5", "'NaN'", "'Infinity'",
                         "'-Infinity'", "1e-300", "-1e-300", "5e-324", "1e300", "-1e300",
                         "1.7976931348623157e308", "1e6", "1e9", "1e15", "2147483648"],
    "real": ["NULL", "0", "'NaN'", "'Infinity'", "'-Infinity'", "1e-38", "3e38", "-1"],
    "integer": ["NULL", "0", "1", "-1", "2", "100000", "2147483647", "-2147483648", "1000000"],
    "smallint": ["NULL", "0", "-1", "32767", "-32768"],
    "bigint": ["NULL", "0", "1", "-1", "1000000000", "4294967296", "9223372036854775807",
               "-9223372036854775808"],
    "numeric": ["NULL", "0", "-0", "-5", "'NaN'", "'Infinity'", "'-Infinity'", "1e-300", "1e300",
                "99999999999999999999999999999999999999", "0.000000000000000000001"],
    "boolean": ["NULL", "true", "false"],
    "text": ["NULL", "''", "' '", "'fortnight'", "'WEEK'", "'Week'", "'weeks'", "'days'", "'quarter'",
             "'hour'", "'year'", "'month'", "'day'", "'week'", "'x'", "'null'", "'💥'",
             "'''; DROP TABLE fuzz_tx; --'", "'\"quoted\"'", "'a\\b'", "E'\\t'",
             V("repeat('x', 100000)", True)],
    "name": ["NULL", "''", "'fuzz_out'", "'pg_catalog'", "'public'", "'information_schema'",
             "'\"; DROP SCHEMA public; --'", "repeat('n', 100)"],
    "date": ["NULL", "'infinity'", "'-infinity'", "'1997-09-30'", "'2024-06-30'", "'1997-01-01'",
             "'4713-01-01 BC'", "'5874897-12-31'", "'2000-02-29'", "'1970-01-01'", "'0001-01-01'"],
    "timestamp without time zone": ["NULL", "'infinity'", "'-infinity'", "'1997-01-01'",
                                    "'2024-01-02 12:34:56.789'", "'294276-12-31 23:59:59'",
                                    "'4713-01-01 00:00 BC'", "'1997-09-30 23:59:59.999999'"],
    "timestamp with time zone": ["NULL", "'infinity'", "'-infinity'", "'1997-01-01 00:00+14'",
                                 "'294276-12-30 23:59:59+00'", "'4713-01-02 00:00+00 BC'",
                                 "'1997-09-30 23:59:59.999999-12'"],
    "double precision[]": ["NULL", "'{}'", "'{NULL}'", "'{1,NULL}'", "'{1,2}'", "'{NaN,1}'",
                           "'{Infinity,1}'", "'{-Infinity,0}'", "'{1e300,-1e300}'", "'{1e-300,5e-324}'",
                           "'{{1,2},{3,4}}'", "'{0}'", "'{0,0,0}'", "'{1,2,3,4,5,6,7,8,9,10}'",
                           "'{-1,-2}'", "'[5:6]={1,2}'",
                           V("(SELECT array_agg(g::float8) FROM generate_series(1, 100000) g)", True)],
    "text[]": ["NULL", "'{}'", "'{NULL}'", "'{a}'", "'{low,medium,high}'", "'{\"\",\"\"}'",
               "'{a,a,a}'", "'{{a,b},{c,d}}'",
               V("(SELECT array_agg('x' || g) FROM generate_series(1, 100000) g)", True)],
    "regclass": ["NULL", "'fuzz_tx'", "'fuzz_empty'", "'fuzz_edge'", "'fuzz_numeric'", "'pg_class'",
                 "'pg_stat_activity'", "0"],
    "jsonb": ["NULL", "'{}'", "'[]'", "'null'", "'1e1000'", "'{\"k\": null}'", "'[{\"k\": -1}]'",
              "'{\"version\": 1, \"rows\": [{\"k\": 2147483648, \"inertia\": 1e400}]}'"],
    "bytea": ["NULL", "''", "'\\x00'", "'\\xdeadbeef'"],
}

# Normal values by argument name: row j of a consistent set uses index j of every list.
NORMAL = {
    "frequency": ["2", "0", "1", "5", "3"],
    "recency": ["30.43", "0", "10", "35", "20"],
    "tenure": ["38.86", "38.86", "20", "40", "39"],
    "monetary_value": ["22.35", "0", "15.5", "100", "40"],
    "weight": ["1", "1", "2", "0.5", "3"],
    "penalizer": ["0", "0.1", "0.01", "0", "1"],
    "t": ["39", "10", "52", "1", "100"],
    "t_future": ["10", "1", "52", "39", "5"],
    "n": ["2", "0", "1", "5", "3"],
    "months": ["12", "1", "6", "24", "12"],
    "horizon_months": ["12", "1", "6", "24", "12"],
    "discount_rate": ["0.01", "0", "0.1", "0.05", "0.01"],
    "time_unit": ["'week'", "'day'", "'month'", "'week'", "'day'"],
    "unit": ["'week'", "'day'", "'month'", "'week'", "'day'"],
    "customers": ["10", "1", "100", "5", "3"],
    "horizon": ["38.86", "10", "52", "1", "5"],
    "acquisition": ["0", "1", "10", "0", "5"],
    "seed": ["1", "2", "42", "7", "0"],
    "ts": ["'1997-01-01'", "'1997-01-18'", "'1997-08-02'", "'1997-03-05'", "'1997-09-30'"],
    "amount": ["29.33", "29.73", "14.96", "10", "5"],
    "observation_end": ["'1997-09-30'"] * 5,
    "calibration_end": ["'1997-06-30'"] * 5,
    "features": ["'{1,2}'", "'{3,4}'", "'{5,6}'", "'{1,1}'", "'{10,0}'"],
    "k": ["2", "1", "3", "2", "2"],
    "k_min": ["1", "2", "1", "1", "2"],
    "k_max": ["3", "4", "2", "5", "3"],
    "value_feature": ["1", "2", "1", "1", "2"],
    "predicted": ["1", "2", "0.5", "3", "0"],
    "actual": ["1", "3", "0", "2", "0"],
    "value": ["100", "10", "1000", "50", "0"],
    "shares": ["'{0.2,0.3,0.5}'"] * 5,
    "thresholds": ["'{100,1000}'"] * 5,
    "labels": ["'{low,medium,high}'"] * 5,
    "higher_is_better": ["true", "false", "true", "true", "false"],
    "bins": ["5", "3", "10", "4", "2"],
    "r": ["5", "1", "3", "4", "2"], "f": ["5", "1", "3", "4", "2"], "m": ["5", "1", "3", "4", "2"],
    "share": ["0.8", "0.5", "0.2", "1", "0"],
    "p_alive": ["0.9", "0.1", "0.5", "0.7", "0.3"],
    "source": ["'fuzz_tx'"] * 5,
    "customer_column": ["'customer_id'"] * 5,
    "time_column": ["'ts'"] * 5,
    "amount_column": ["'amount'"] * 5,
    "target_schema": ["'fuzz_out'"] * 5,
    "model_name": ["'bgnbd'", "'pareto_nbd'", "'mbgnbd'", "'bgnbd'", "'bgnbd'"],
    "clusters": ["4", "2", "3", "1", "4"],
    "max_frequency": ["6", "3", "1", "10", "6"],
    "max_recency": ["38.86", "10", "52", "1", "5"],
    "recency_steps": ["10", "5", "1", "20", "3"],
    "col": ["'amount'", "'ts'", "'customer_id'", "'amount'", "'ts'"],
    "allowed": ["'{numeric,\"double precision\"}'"] * 5,
    "what": ["'amount'"] * 5,
}
SOURCE_NORMAL = {"observation_end": ["'2024-12-31'", "'2024-10-31'", "'2025-06-30'", "'2024-12-31'", "'2024-12-31'"],
                 "calibration_end": ["'2024-09-30'", "'2024-06-30'", "'2024-12-31'", "'2024-09-30'", "'2024-09-30'"]}
# Arguments of an aggregate that are meant to be the same on every row (their normal value is).
CONSTANT_ARGS = {"observation_end", "calibration_end", "unit", "time_unit", "k", "k_min", "k_max", "seed",
                 "value_feature", "penalizer", "higher_is_better", "bins", "shares", "thresholds", "labels"}
BGBB_NORMAL = {"frequency": ["2", "0", "1", "5", "3"], "recency": ["4", "0", "2", "6", "5"],
               "tenure": ["6", "6", "4", "10", "6"], "n_periods": ["6", "6", "4", "10", "6"]}
TYPE_NORMAL = {
    "double precision": ["1", "2.5", "10", "0.5", "38.86"],
    "integer": ["1", "2", "5", "3", "10"],
    "bigint": ["1", "2", "5", "3", "10"],
    "numeric": ["29.33", "10", "1", "0.5", "100"],
    "boolean": ["true", "false", "true", "false", "true"],
    "text": ["'week'", "'day'", "'month'", "'c1'", "'c2'"],
    "name": ["'fuzz_out'"] * 5,
    "date": ["'1997-01-01'", "'1997-01-18'", "'1997-08-02'", "'1997-03-05'", "'1997-09-30'"],
    "timestamp without time zone": ["'1997-01-01 10:00'", "'1997-01-18'", "'1997-08-02'", "'1997-03-05'", "'1997-09-30'"],
    "timestamp with time zone": ["'1997-01-01 10:00+00'", "'1997-01-18+00'", "'1997-08-02+00'", "'1997-03-05+00'", "'1997-09-30+00'"],
    "double precision[]": ["'{1,2}'", "'{3,4}'", "'{5,6}'", "'{1,1}'", "'{10,0}'"],
    "text[]": ["'{low,medium,high}'"] * 5,
    "regclass": ["'fuzz_tx'"] * 5,
    "jsonb": ["'{}'"] * 5,
}

# Model parameters (from issue 8 and the docs): normal ones first.
NORMAL_PARAMS = {
    "bgnbd_model": [(0.243, 4.414, 0.793, 2.426)],
    "pareto_nbd_model": [(0.553, 10.578, 0.606, 11.669)],
    "mbgnbd_model": [(0.525, 6.183, 0.891, 1.614)],
    "bgbb_model": [(1.204, 0.750, 0.657, 2.783)],
    "gamma_gamma_model": [(6.25, 3.74, 15.44), (6.25, 0.79, 15.44)],
}


def extreme_params(n):
    out = []
    for bits in range(2 ** n):
        out.append(tuple(1e-4 if bits >> i & 1 else 1e4 for i in range(n)))
    for x in (1e-8, 1e8, 1e-300, 1e300, 0.5, 1.0, 1e-4, 1e4):
        out.append((x,) * n)
    out.append(tuple([1e-300] + [1.0] * (n - 1)))
    out.append(tuple([1e300] + [1.0] * (n - 1)))
    out.append(tuple([0.0] + [1.0] * (n - 1)))
    out.append(tuple([-1.0] + [1.0] * (n - 1)))
    return out


def fmt_num(x):
    r = repr(float(x))
    return r[:-2] if r.endswith(".0") else r


# Small transaction lists for rfm summaries (ts, amount), observation end, unit.
RFM_LISTS = [
    ("CDNOW customer", [("1997-01-01", "29.33"), ("1997-01-18", "29.73"), ("1997-08-02", "14.96")], "1997-09-30", "week"),
    ("one purchase", [("2024-01-02", "10")], "2024-06-30", "week"),
    ("purchase on the end date", [("2024-06-30", "10")], "2024-06-30", "day"),
    ("same-day purchases", [("2024-01-02", "10"), ("2024-01-02 18:00", "5"), ("2024-01-02 23:59", "1")], "2024-06-30", "day"),
    ("zero and negative amounts", [("2024-01-02", "0"), ("2024-02-02", "-5"), ("2024-03-02", "-1e300")], "2024-06-30", "month"),
    ("huge amounts", [("2024-01-02", "1e300"), ("2024-02-02", "1e300"), ("2024-03-02", "1e-300")], "2024-06-30", "week"),
    ("very old first purchase", [("0001-01-01", "1"), ("2024-01-01", "2")], "2024-06-30", "day"),
    ("far future end", [("2024-01-01", "1"), ("2024-01-08", "2")], "5874897-12-31", "year"),
    ("many purchases", None, "2024-12-31", "week"),
]


# --------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------

CATALOG_SQL = """
SELECT p.oid, p.proname, p.prokind, p.proretset, p.pronargs, p.pronargdefaults,
       p.prorettype, format_type(p.prorettype, NULL) AS rettype,
       ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, i) ORDER BY i) AS argtypes,
       p.proargnames, p.proargmodes::text[] AS argmodes,
       p.oid::regprocedure::text AS signature
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = %s
WHERE NOT EXISTS (SELECT 1 FROM pg_type t
                  WHERE p.oid IN (t.typinput, t.typoutput, t.typsend, t.typreceive))
  AND NOT EXISTS (SELECT 1 FROM pg_aggregate a
                  WHERE p.oid IN (a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn,
                                  a.aggdeserialfn))
  AND p.proname !~ '_(in|out|send|recv)$'
ORDER BY p.oid::regprocedure::text
"""

TYPES_SQL = """
SELECT t.oid, t.typname, format_type(t.oid, NULL), t.typsend <> 0 AND t.typreceive <> 0
FROM pg_type t
JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = %s
WHERE t.typtype = 'b' ORDER BY t.typname
"""

SETUP_SQL = """
DROP TABLE IF EXISTS fuzz_tx, fuzz_empty, fuzz_edge, fuzz_numeric;
DROP SCHEMA IF EXISTS fuzz_out CASCADE;
CREATE TABLE fuzz_tx(customer_id text, ts timestamp, amount float8);
INSERT INTO fuzz_tx
SELECT 'c' || c, timestamp '2024-01-01' + ((c * 37 + i * 11) % 300) * interval '1 day', 5 + (c * i) % 40
FROM generate_series(1, 30) c, generate_series(1, 1 + c % 6) i;
CREATE TABLE fuzz_empty(customer_id text, ts timestamp, amount float8);
CREATE TABLE fuzz_edge(customer_id text, ts timestamp, amount float8);
INSERT INTO fuzz_edge VALUES (NULL, '2024-01-01', 1), ('a', NULL, 1), ('a', '2024-02-01', NULL),
  ('b', 'infinity', 1), ('b', '-infinity', 2), ('c', '2024-01-01', 'NaN'), ('c', '2024-03-01', 'Infinity'),
  ('d', '2024-01-01', -5), ('e', '294276-12-31', 1e300), ('', '2024-01-01', 0);
CREATE TABLE fuzz_numeric(customer_id bigint, ts date, amount numeric);
INSERT INTO fuzz_numeric VALUES (1, '2024-01-01', 10), (1, '2024-02-01', 'NaN'), (2, '2024-01-05', 1e300),
  (2, '2024-03-05', 0), (9223372036854775807, '2024-04-01', -1);
"""


class Func:
    def __init__(self, row):
        (self.oid, self.name, self.kind, self.retset, self.nargs, self.ndefaults, self.rettype_oid,
         self.rettype, self.argtypes, names, modes, self.signature) = row
        self.argtypes = list(self.argtypes)
        if names and modes:
            names = [n for n, m in zip(names, modes) if m in ("i", "b", "v")]
        self.argnames = list(names or [])[:self.nargs]
        self.argnames += [""] * (self.nargs - len(self.argnames))


def qident(name):
    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------------------------
# The fuzzer
# --------------------------------------------------------------------------------------------

class Fuzzer:
    def __init__(self, args, runner):
        self.a, self.r = args, runner
        self.ext_types = {}      # name -> (oid, has_binary)
        self.pools = {}          # type -> list of V (normal first)
        self.normal_of_type = {}
        self.funcs = []
        self.outcomes = []
        self.errors = collections.Counter()
        self.per_target = collections.Counter()
        self.findings = []
        self.unexpected = []
        self.skipped = collections.Counter()
        self.calls = 0

    def say(self, *a):
        print(*a, flush=True)

    # -- bookkeeping -------------------------------------------------------------------------
    def record(self, o, count=True):
        if count:
            self.calls += 1
            self.per_target[o.target] += 1
        if o.ok:
            self.errors["ok"] += 1
        else:
            st = o.sqlstate
            self.errors[st] += 1
            if st not in ("XX000", "connection lost") and not (st[:2] in ALLOWED_CLASSES or st in ALLOWED_CODES):
                self.unexpected.append((st, o.message, o.sql))
        for kind, detail in o.findings:
            self.findings.append((kind, o.target, o.sql, detail, o.elapsed))
            self.say("  !! %s (%.1f s) %s\n     %s\n     %s" % (kind, o.elapsed, o.target, shorten(o.sql), detail))
        if self.a.verbose:
            self.say("%6.3f %s %s" % (o.elapsed, "ok" if o.ok else o.sqlstate, shorten(o.sql)))

    def setup_call(self, sql):
        """A call made to build the pools: watched like any other and counted."""
        o = self.r.run(sql, "setup", result_types=self.ext_oids())
        self.record(o)
        return o

    def ext_oids(self):
        return {oid for oid, _ in self.ext_types.values()}

    # -- discovery ---------------------------------------------------------------------------
    def discover(self):
        conn = self.r.admin
        with conn.cursor() as cur:
            cur.execute(TYPES_SQL, (self.a.extension,))
            for oid, name, fmt, binary in cur.fetchall():
                self.ext_types[fmt] = (oid, binary)
            cur.execute(CATALOG_SQL, (self.a.extension,))
            funcs = [Func(r) for r in cur.fetchall()]
        for f in funcs:
            if "internal" in f.argtypes or "cstring" in f.argtypes or f.rettype in ("internal", "cstring"):
                self.skipped["internal/cstring"] += 1
                continue
            if "any" in " ".join(f.argtypes) or "anyelement" in f.argtypes:
                self.skipped["polymorphic"] += 1
                continue
            self.funcs.append(f)
        kinds = collections.Counter({"a": "aggregate", "w": "window", "f": "function", "p": "procedure"}[f.kind]
                                    + (" (set-returning)" if f.retset else "") for f in self.funcs)
        self.say("catalog: %d functions of %s to call (%s); %d extension types: %s" % (
            len(self.funcs), self.a.extension, ", ".join("%d %s" % (n, k) for k, n in sorted(kinds.items())),
            len(self.ext_types), ", ".join(sorted(self.ext_types))))

    def setup_tables(self):
        with self.r.admin.cursor() as cur:
            cur.execute("SET client_min_messages = warning")
            cur.execute(SETUP_SQL)

    def build_pools(self):
        for t, vals in EDGES.items():
            self.pools[t] = [v if isinstance(v, V) else V(v) for v in vals]
        constructors = [f for f in self.funcs if f.kind == "f" and not f.retset and f.rettype in self.ext_types
                        and f.argtypes and all(a == "double precision" for a in f.argtypes)]
        for tname in sorted(self.ext_types):
            pool = []
            cons = [f for f in constructors if f.rettype == tname]
            for f in cons:
                params = NORMAL_PARAMS.get(tname, [(1.0,) * f.nargs])
                params = [p for p in params if len(p) == f.nargs] + extreme_params(f.nargs)
                for p in params:
                    e = "%s(%s)" % (qident(f.name), ", ".join(fmt_num(x) for x in p))
                    o = self.setup_call("SELECT " + e)
                    if o.ok and not o.findings:
                        pool.append(V(e))
            self.pools[tname] = pool
        self.add_rfm_pool()
        self.add_fitted_pools()
        for tname in self.ext_types:
            pool = self.pools.get(tname) or []
            self.pools[tname] = [V("NULL::" + tname)] + pool
            self.normal_of_type[tname] = [v.expr for v in pool[:1]] * 5 if pool else ["NULL"] * 5
        # a k-sweep result for kmeans_k_sweep_rows
        if any(f.name == "kmeans_k_sweep" for f in self.funcs):
            o = self.setup_call("SELECT kmeans_k_sweep(ARRAY[x, x % 7]::float8[], 1, 4)::text "
                                "FROM generate_series(1, 60) x")
            if o.ok and o.rows and o.rows[0][0]:
                self.pools["jsonb"].insert(1, V(lit(o.rows[0][0])))
                self.normal_of_type["jsonb"] = [lit(o.rows[0][0])] * 5
        self.say("pools: " + ", ".join("%s %d" % (t, len(p)) for t, p in sorted(self.pools.items())))

    def add_rfm_pool(self):
        if "rfm_summary" not in self.ext_types:
            return
        pool = []
        for label, txs, end, unit in RFM_LISTS:
            if txs is None:
                src = ("(SELECT timestamp '2024-01-01' + (g * 3) * interval '1 day' AS ts, (g %% 50)::float8 AS amount "
                       "FROM generate_series(1, 100) g)")
            else:
                src = "(VALUES %s)" % ", ".join("(timestamp %s, %s::float8)" % (lit(ts), a) for ts, a in txs)
            q = "SELECT rfm(ts, amount, date %s, %s)::text FROM %s t(ts, amount)" % (lit(end), lit(unit), src)
            if txs is None:
                q = q.replace("%%", "%")
            o = self.setup_call(q)
            if o.ok and o.rows and o.rows[0][0]:
                pool.append(V("%s::rfm_summary" % lit(o.rows[0][0])))
        # with a holdout period, and a rolled-up one
        for q in ("SELECT rfm_holdout(ts, amount, date '1997-06-30', date '1997-09-30', 'week')::text FROM (VALUES "
                  "(timestamp '1997-01-01', 29.33::float8), ('1997-01-18', 29.73), ('1997-08-02', 14.96), "
                  "('1997-08-02', 3), ('1997-09-01', 6)) t(ts, amount)",
                  "SELECT rollup(s)::text FROM (SELECT rfm(ts, amount, date '2024-06-30', 'day') s FROM (VALUES "
                  "(1, timestamp '2024-01-02', 10::float8), (1, '2024-03-02', 5), (2, '2024-02-02', 7)) "
                  "t(c, ts, amount) GROUP BY c) q"):
            o = self.setup_call(q)
            if o.ok and o.rows and o.rows[0][0]:
                pool.append(V("%s::rfm_summary" % lit(o.rows[0][0])))
        self.pools["rfm_summary"] = pool

    def add_fitted_pools(self):
        sim = ("FROM simulate_customers(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44), "
               "500, 39, 0, 1)")
        bgbb = ("FROM (SELECT least(g % 7, 6)::float8 AS x, CASE WHEN g % 7 = 0 THEN 0 ELSE least(6, g % 7 + (g / 7) % 3) "
                "END::float8 AS tx, 6::float8 AS n FROM generate_series(1, 400) g) d")
        fits = {
            "bgnbd_model": "SELECT bgnbd_fit(frequency, recency, tenure)::text " + sim,
            "pareto_nbd_model": "SELECT pareto_nbd_fit(frequency, recency, tenure)::text " + sim,
            "mbgnbd_model": "SELECT mbgnbd_fit(frequency, recency, tenure)::text " + sim,
            "bgbb_model": "SELECT bgbb_fit(x, tx, n, 1, 0.001)::text " + bgbb,
            "gamma_gamma_model": "SELECT gamma_gamma_fit(frequency, monetary_value)::text " + sim + " WHERE frequency > 0",
            "kmeans_model": None,
            "ml_model": "SELECT ml_regression_fit(ARRAY[x, x % 7]::float8[], x % 5, 'decision_tree')::text FROM generate_series(1, 60) x",
            "cluster_model": "SELECT dbscan_fit(ARRAY[x % 7, x % 3]::float8[], 0.5, 3)::text FROM generate_series(1, 60) x",
            "pca_model": "SELECT pca_fit(ARRAY[x, x % 7]::float8[], 2)::text FROM generate_series(1, 50) x",
        }
        for tname, q in fits.items():
            if tname not in self.ext_types:
                continue
            qs = [q] if q else [
                "SELECT kmeans_fit(ARRAY[x, x * 2]::float8[], 2)::text FROM generate_series(1, 10) x",
                "SELECT kmeans_fit(ARRAY[x % 7, x % 3, x]::float8[], 3, 7)::text FROM generate_series(1, 200) x",
                "SELECT kmeans_fit(ARRAY[1, 1]::float8[], 1)::text FROM generate_series(1, 5) x",
                "SELECT kmeans_fit(ARRAY[x]::float8[], 1)::text FROM generate_series(1, 1) x",
                "SELECT kmeans_fit(ARRAY[x * 1e150, -x * 1e150]::float8[], 2)::text FROM generate_series(1, 20) x",
            ]
            for one in qs:
                o = self.setup_call(one)
                if o.ok and o.rows and o.rows[0][0]:
                    self.pools.setdefault(tname, []).append(V("%s::%s" % (lit(o.rows[0][0]), tname)))

    # -- targets: generators of calls --------------------------------------------------------
    def values_for(self, f, i):
        """(normal expressions [5], edge values [V]) for argument i of f."""
        t, name = f.argtypes[i], f.argnames[i]
        if name == "model" and t in ("text",):
            name = "model_name"
        normal = None
        if f.argtypes and f.argtypes[0] == "bgbb_model" or "n_periods" in f.argnames:
            normal = BGBB_NORMAL.get(name)
        if "source" in f.argnames:      # the table functions read fuzz_tx (2024)
            normal = SOURCE_NORMAL.get(name)
        normal = normal or (NORMAL.get(name) if t not in self.ext_types else None)
        normal = normal or self.normal_of_type.get(t) or TYPE_NORMAL.get(t) or ["NULL"] * 5
        edges = self.pools.get(t) or [V("NULL")]
        return normal, edges

    def call_sql(self, f, args, nargs=None):
        n = len(args) if nargs is None else nargs
        parts = ["(%s)::%s" % (args[i].expr if isinstance(args[i], V) else args[i], f.argtypes[i])
                 for i in range(n)]
        call = "%s(%s)" % (qident(f.name), ", ".join(parts))
        if f.kind == "w":
            return None
        if f.retset:
            return "SELECT * FROM %s LIMIT 1000" % call
        return "SELECT %s" % call

    def rows_sql(self, f, rows, multiply=None):
        cols = ["c%d" % (i + 1) for i in range(f.nargs)]
        vals = []
        for j, row in enumerate(rows):
            cells = []
            for i, v in enumerate(row):
                e = v.expr if isinstance(v, V) else v
                cells.append("(%s)::%s" % (e, f.argtypes[i]))
            vals.append("(%s)" % ", ".join(cells))
        if rows:
            src = "(VALUES %s) t(%s)" % (", ".join(vals), ", ".join(cols))
        else:
            src = "(SELECT %s) t(%s)" % (", ".join("NULL::%s" % t for t in f.argtypes), ", ".join(cols))
        if multiply:
            src += " CROSS JOIN generate_series(1, %d) rep" % multiply
        where = "" if rows else " WHERE false"
        call = "%s(%s)" % (qident(f.name), ", ".join(cols))
        if f.kind == "w":
            return "SELECT %s OVER () FROM %s%s" % (call, src, where)
        return "SELECT %s FROM %s%s" % (call, src, where)

    def gen_function(self, f, rng):
        """Scalar and set-returning functions: the normal call, one argument at a time through
        its edge values, then random mixes (each argument an edge value with probability 0.6)."""
        specs = [self.values_for(f, i) for i in range(f.nargs)]
        seen = set()

        def emit(args):
            nargs = f.nargs
            # sometimes leave trailing defaulted arguments out
            if f.ndefaults and rng.random() < 0.2:
                nargs = f.nargs - rng.randint(1, f.ndefaults)
            q = self.call_sql(f, args, nargs)
            if q in seen:
                return None
            seen.add(q)
            return q

        base = [specs[i][0][0] for i in range(f.nargs)]
        q = emit(base)
        if q:
            yield q
        singles = []
        for i in range(f.nargs):
            for v in specs[i][1]:
                args = list(base)
                args[i] = v
                singles.append(args)
        rng.shuffle(singles)
        for args in singles:
            q = emit(args)
            if q:
                yield q
        misses = 0
        while misses < 200:
            j = rng.randrange(5)
            args = [rng.choice(specs[i][1]) if rng.random() < 0.6 else specs[i][0][j] for i in range(f.nargs)]
            q = emit(args)
            if q:
                misses = 0
                yield q
            else:
                misses += 1

    def gen_aggregate(self, f, rng):
        """Aggregates and window functions: over 0-5 rows of normal and edge values, sometimes
        repeated 1,000 times."""
        specs = [self.values_for(f, i) for i in range(f.nargs)]
        seen = set()

        def emit(rows, multiply=None):
            if multiply and any(isinstance(v, V) and v.huge for r in rows for v in r):
                multiply = None
            q = self.rows_sql(f, rows, multiply)
            if q in seen:
                return None
            seen.add(q)
            return q

        const = [f.argnames[i] in CONSTANT_ARGS for i in range(f.nargs)]
        normal_rows = [[specs[i][0][0 if const[i] else j] for i in range(f.nargs)] for j in range(3)]
        for q in (emit(normal_rows), emit([]), emit(normal_rows, 1000)):
            if q:
                yield q
        singles = []
        for i in range(f.nargs):
            for v in specs[i][1]:
                edge_row = [specs[k][0][0 if const[k] else 3] for k in range(f.nargs)]
                edge_row[i] = v
                singles.append([edge_row])
                singles.append(normal_rows + [edge_row])
        rng.shuffle(singles)
        for rows in singles:
            q = emit(rows)
            if q:
                yield q
        misses = 0
        while misses < 200:
            nrows = rng.choice([1, 1, 2, 3, 5])
            rows = []
            for _ in range(nrows):
                j = rng.randrange(5)
                rows.append([rng.choice(specs[i][1]) if rng.random() < 0.4 else specs[i][0][0 if const[i] else j]
                             for i in range(f.nargs)])
            q = emit(rows, 1000 if rng.random() < 0.05 else None)
            if q:
                misses = 0
                yield q
            else:
                misses += 1

    def sample_texts(self, tname):
        return [v.expr for v in self.pools.get(tname, []) if not v.expr.startswith("NULL")]

    def gen_text_input(self, tname, rng):
        """`'...'::type` for malformed text and mutated valid text forms."""
        fixed = ["", " ", "{", "}", "[]", "null", "true", "0", "\"\"", "{}", "{\"version\":1}",
                 "{\"version\":999}", "{\"version\":-1}", "{\"version\":1e400}", "{\"version\":\"1\"}",
                 "[" * 10000 + "]" * 10000, "{\"a\":" * 5000 + "1" + "}" * 5000, "x" * 100000,
                 "{\"version\":1,\"model\":\"bgnbd\",\"params\":{\"r\":NaN,\"alpha\":1,\"a\":1,\"b\":1}}",
                 "{\"version\":1,\"version\":2}", "\\u0000", "{\"version\":1,\"model\":\"\\u0000\"}"]
        texts = []
        conn = self.r.admin
        for e in self.sample_texts(tname):
            try:
                with conn.cursor() as cur:
                    cur.execute("SET statement_timeout = '5s'")
                    cur.execute("SELECT (%s)::text" % e)
                    texts.append(cur.fetchone()[0])
            except psycopg.Error:
                pass
        seen = set()
        for s in fixed:
            yield "SELECT (%s::%s)::text" % (lit(s), tname)
        if not texts:
            return
        misses = 0
        while misses < 200:
            s = mutate_json(rng.choice(texts), rng)
            if s in seen or "\x00" in s:
                misses += 1
                continue
            seen.add(s)
            misses = 0
            yield "SELECT (%s::%s)::text" % (lit(s), tname)

    def gen_binary_input(self, tname, rng):
        """Binary input (the type's receive function) of mutated send() bytes, as a binary
        parameter of the type's oid."""
        oid, _ = self.ext_types[tname]
        samples = []
        with self.r.admin.cursor(binary=True) as cur:
            for e in self.sample_texts(tname):
                try:
                    cur.execute("SELECT (%s)" % e)
                    samples.append(bytes(cur.fetchone()[0]))
                except psycopg.Error:
                    pass
        fixed = [b"", b"\x00", b"\xff" * 8, b"RFM", b"RFM\x00", b"RFM\xff", b"RFM\x01", b"{}", b"{\"version\":1}",
                 os.urandom(0)]
        seen = set()
        for b in fixed:
            yield (tname, oid, b)
        if not samples:
            return
        misses = 0
        while misses < 200:
            b = mutate_bytes(rng.choice(samples), rng)
            if b in seen:
                misses += 1
                continue
            seen.add(b)
            misses = 0
            yield (tname, oid, b)

    def targets(self):
        out = []
        for f in self.funcs:
            rng = random.Random("%s/%s" % (self.a.seed, f.signature))
            gen = self.gen_aggregate(f, rng) if f.kind in ("a", "w") else self.gen_function(f, rng)
            out.append((f.signature, gen))
        for tname in sorted(self.ext_types):
            rng = random.Random("%s/in/%s" % (self.a.seed, tname))
            out.append(("%s text input" % tname, self.gen_text_input(tname, rng)))
            if self.ext_types[tname][1] and not self.a.no_binary:
                rng = random.Random("%s/recv/%s" % (self.a.seed, tname))
                out.append(("%s binary input" % tname, self.gen_binary_input(tname, rng)))
        if self.a.only:
            out = [t for t in out if re.search(self.a.only, t[0])]
        return out

    # -- main loop ---------------------------------------------------------------------------
    def run(self):
        targets = self.targets()
        self.say("targets: %d; budget %d calls; statement_timeout %.1f s, hang after %.1f s more; memory cap %s MB"
                 % (len(targets), self.a.calls, self.a.timeout, self.a.slack, self.a.mem_cap_mb or "none"))
        bad_in_target = collections.Counter()
        live = list(targets)
        t0 = time.monotonic()
        next_report = t0 + 15
        ext_oids = self.ext_oids()
        while live and self.calls < self.a.calls:
            for tgt in list(live):
                if self.calls >= self.a.calls:
                    break
                name, gen = tgt
                try:
                    item = next(gen)
                except StopIteration:
                    live.remove(tgt)
                    continue
                except psycopg.Error as e:
                    self.say("  target %s: could not prepare (%s)" % (name, str(e).splitlines()[0]))
                    live.remove(tgt)
                    continue
                if isinstance(item, tuple):
                    tname, oid, data = item
                    o = self.r.run("SELECT (%b)::text", name, params=[raw_param(oid, data)],
                                   result_types=ext_oids)
                    o.sql = "binary input of %s: %d bytes \\x%s%s" % (
                        tname, len(data), data[:400].hex(), "..." if len(data) > 400 else "")
                else:
                    o = self.r.run(item, name, result_types=ext_oids)
                self.record(o)
                if any(k in ("HANG", "MEMORY", "CRASH") for k, _ in o.findings):
                    bad_in_target[name] += 1
                    if bad_in_target[name] >= self.a.max_bad_per_target:
                        self.say("  (no more calls of %s after %d hangs/crashes)" % (name, bad_in_target[name]))
                        self.skipped["target stopped after %d hangs/crashes: %s" % (bad_in_target[name], name)] += 1
                        live.remove(tgt)
                if time.monotonic() > next_report:
                    next_report = time.monotonic() + 15
                    self.say("  ... %d calls, %.0f s, %d findings" % (self.calls, time.monotonic() - t0, len(self.findings)))
        self.wall = time.monotonic() - t0
        self.untouched = [t[0] for t in targets if self.per_target[t[0]] == 0]

    # -- report ------------------------------------------------------------------------------
    def report(self):
        kinds = collections.Counter(k for k, *_ in self.findings)
        xx = kinds["XX000"]
        self.say("\n================ clv_ext fuzzer summary ================")
        self.say("calls: %d in %.0f s (%d targets; %d connection restarts); seed %s"
                 % (self.calls, self.wall, len(self.per_target), self.r.restarts, self.a.seed))
        self.say("results: " + ", ".join("%s %d" % (k, n) for k, n in sorted(self.errors.items(), key=lambda kv: -kv[1])))
        for k, n in sorted(self.skipped.items()):
            self.say("skipped: %s (%d)" % (k, n))
        if self.untouched:
            self.say("targets not reached within the budget: %d (%s)" % (len(self.untouched), ", ".join(self.untouched[:10])))
        self.say("hangs: %d, memory: %d, crashes: %d, XX000: %d, non-finite: %d, unexpected SQLSTATE classes: %d"
                 % (kinds["HANG"], kinds["MEMORY"], kinds["CRASH"], xx, kinds["NONFINITE"], len(self.unexpected)))
        for kind in FAIL_KINDS:
            items = [f for f in self.findings if f[0] == kind]
            if not items:
                continue
            self.say("\n%s (%d):" % (kind, len(items)))
            for _, target, sql, detail, elapsed in items:
                self.say("  %s;\n      -- %.1f s: %s" % (shorten(sql, 2000), elapsed, detail))
        if self.unexpected:
            self.say("\nunexpected SQLSTATE classes (listed, not failing):")
            for st, n in collections.Counter(s for s, _, _ in self.unexpected).most_common():
                ex = next(u for u in self.unexpected if u[0] == st)
                self.say("  %s x%d, e.g. %s\n      -- %s" % (st, n, shorten(ex[2], 400), ex[1]))
        failed = sum(kinds[k] for k in FAIL_KINDS)
        self.say("\nclv_ext fuzzer: %s" % ("FAILED: %d findings" % failed if failed else "OK, nothing found"))
        if self.a.report:
            with open(self.a.report, "w") as fh:
                json.dump({"calls": self.calls, "seconds": round(self.wall, 1), "seed": self.a.seed,
                           "results": dict(self.errors), "counts": {k: kinds[k] for k in FAIL_KINDS},
                           "unexpected": len(self.unexpected),
                           "findings": [{"kind": k, "target": t, "sql": s, "detail": d, "seconds": round(e, 2)}
                                        for k, t, s, d, e in self.findings]}, fh, indent=1)
        return 1 if failed else 0


def shorten(s, n=600):
    s = re.sub(r"\s+", " ", s)
    return s if len(s) <= n else s[:n] + "... (%d chars)" % len(s)


# --------------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------------

RAW_TOKENS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "-1", "0", "-0", "1e300",
              "9223372036854775807", "18446744073709551616", "-9223372036854775809", "null", "true",
              "\"\"", "\"x\"", "[]", "{}", "[[]]", "\"infinity\"", "\"-infinity\"", "\"9999-99-99\"",
              "\"294277-01-01 00:00:00\"", "\"fortnight\"", "2.5", "1e-300", "5e-324", "\"NaN\""]


def mutate_json(text, rng):
    try:
        obj = json.loads(text)
    except ValueError:
        return text[:rng.randrange(len(text) + 1)]
    raws = {}

    def raw(tok):
        key = "__RAW_%d__" % len(raws)
        raws[key] = tok
        return key

    paths = []

    def walk(o, path):
        paths.append(path)
        if isinstance(o, dict):
            for k, v in o.items():
                walk(v, path + [k])
        elif isinstance(o, list):
            for i, v in enumerate(o[:20]):
                walk(v, path + [i])

    walk(obj, [])
    nmut = rng.choice([1, 1, 1, 2, 3])
    for _ in range(nmut):
        path = rng.choice(paths[1:] or paths)
        parent = obj
        for p in path[:-1]:
            try:
                parent = parent[p]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        if not isinstance(parent, (dict, list)) or not path:
            continue
        key = path[-1]
        try:
            cur = parent[key]
        except (KeyError, IndexError, TypeError):
            continue
        op = rng.random()
        if op < 0.55:
            parent[key] = raw(rng.choice(RAW_TOKENS))
        elif op < 0.7 and isinstance(parent, dict):
            del parent[key]
        elif op < 0.8 and isinstance(cur, list) and cur:
            parent[key] = cur * rng.choice([2, 100, 10000])
        elif op < 0.9 and isinstance(parent, dict):
            parent[key + "_extra" if isinstance(key, str) else key] = raw(rng.choice(RAW_TOKENS))
        elif isinstance(cur, (int, float)) and not isinstance(cur, bool):
            parent[key] = raw(repr(cur * rng.choice([-1, 1e10, 1e-10, 1e300])))
        else:
            parent[key] = raw(rng.choice(RAW_TOKENS))
    out = json.dumps(obj)
    for k, tok in raws.items():
        out = out.replace('"%s"' % k, tok)
    if rng.random() < 0.05:
        out = out[:rng.randrange(len(out) + 1)]
    return out


def mutate_bytes(b, rng):
    b = bytearray(b)
    op = rng.random()
    if op < 0.3 and b:
        for _ in range(rng.choice([1, 1, 2, 8])):
            i = rng.randrange(len(b))
            b[i] = rng.randrange(256)
    elif op < 0.45:
        b = b[:rng.randrange(len(b) + 1)]
    elif op < 0.55:
        b += bytes(rng.randrange(256) for _ in range(rng.choice([1, 8, 64])))
    elif op < 0.65 and len(b) > 4:
        i = rng.randrange(4, len(b))
        b[i:i] = bytes([rng.choice([0, 0xff, 0x7f, 0x80])]) * rng.choice([1, 4, 8])
    elif op < 0.75:
        b = bytearray(rng.randrange(256) for _ in range(rng.choice([1, 4, 16, 100])))
    else:
        try:
            t = b.decode("utf-8")
            if t.lstrip().startswith("{"):
                return mutate_json(t, rng).encode("utf-8")
        except UnicodeDecodeError:
            pass
        if b:
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


_raw_classes = {}


class _RawBase:
    """Bytes to send as they are; the connection needs the class's dumper (see Runner.run)."""
    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


def raw_param(oid, data):
    """A parameter sent in binary format as type `oid`, its bytes given as they are."""
    cls = _raw_classes.get(oid)
    if cls is None:
        cls = type("Raw%d" % oid, (_RawBase,), {"__slots__": ()})
        dumper = type("RawDumper%d" % oid, (Dumper,), {
            "oid": oid, "format": psycopg.pq.Format.BINARY,
            "dump": lambda self, obj: obj.data})
        cls.dumper = dumper
        _raw_classes[oid] = cls
    return cls(data)


# --------------------------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dsn", default="", help="libpq connection string (default: the PG* environment)")
    p.add_argument("--extension", default="clv_ext")
    p.add_argument("--calls", type=int, default=20000, help="budget: number of calls (default 20,000, under a minute)")
    p.add_argument("--long", action="store_true", help="the long run: 200,000 calls unless --calls is given")
    p.add_argument("--seed", default="1")
    p.add_argument("--timeout", type=float, default=2.0, help="statement_timeout in seconds (default 2)")
    p.add_argument("--slack", type=float, default=1.0, help="a call longer than timeout + slack is a HANG")
    p.add_argument("--mem-cap-mb", type=int, default=1024, help="backend RSS that counts as MEMORY (0: none)")
    p.add_argument("--server-log", default=os.environ.get("SERVER_LOG"), help="the server's log, to tell crashes")
    p.add_argument("--library", default=None, help="the extension's .so, to notice a reinstall during the run")
    p.add_argument("--no-kill", action="store_true", help="never SIGKILL a backend that survives terminate")
    p.add_argument("--no-binary", action="store_true", help="skip the binary-input targets")
    p.add_argument("--max-bad-per-target", type=int, default=3,
                   help="stop calling a function after this many hangs/memory/crash findings")
    p.add_argument("--only", help="regular expression: only the targets whose signature matches")
    p.add_argument("--report", help="write a JSON report here")
    p.add_argument("--no-setup", action="store_true", help="do not (re)create the fuzz_* tables")
    p.add_argument("-v", "--verbose", action="store_true", help="print every call")
    a = p.parse_args(argv)
    if a.long and "--calls" not in " ".join(argv or sys.argv):
        a.calls = 200000
    try:
        runner = Runner(a.dsn, a.timeout, a.slack, a.mem_cap_mb, a.server_log, not a.no_kill, a.library, print)
    except psycopg.Error as e:
        print("fuzz.py: cannot connect: %s" % e, file=sys.stderr)
        return 2
    fz = Fuzzer(a, runner)
    fz.discover()
    if not fz.funcs:
        print("fuzz.py: no function of extension %s found (CREATE EXTENSION first)" % a.extension, file=sys.stderr)
        return 2
    if not a.no_setup:
        fz.setup_tables()
    t0 = time.monotonic()
    fz.build_pools()
    fz.say("pools built in %.1f s (%d calls)" % (time.monotonic() - t0, fz.calls))
    fz.run()
    return fz.report()


if __name__ == "__main__":
    sys.exit(main())
