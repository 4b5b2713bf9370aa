#!/usr/bin/env python3
"""A binary-protocol client reads and writes every clv_ext type (issue 8, item 5), with psycopg 3.

For each base type of the extension (rfm_summary and every model type, found in the catalog) and a
few values of it (normal, fitted, extreme, NULL):
  1. SELECT it in binary format (cursor(binary=True)): the bytes of the type's send function;
  2. send those bytes back as a binary parameter of the type's oid (a psycopg Dumper with
     format BINARY, so the server runs the receive function), both in a query and in an INSERT,
     and compare the value's text output with the original's; the stored value's binary form
     must be the same bytes again;
  3. call a function of the type (p_alive, expected_spend, kmeans_assign, frequency...) on the
     binary parameter and on the original value: same result;
  4. COPY ... TO STDOUT (FORMAT binary) of a table holding all the values, COPY ... FROM STDIN
     (FORMAT binary) of those bytes into a second table: same text forms, row by row.
The wire format is whatever each send function emits; only round trips are compared.
Before send/receive existed, step 1 fails with 42883 "no binary output function available".
Exit status 0 when every check passed, 1 otherwise.
"""
import argparse
import sys

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

TYPES_SQL = """
SELECT t.oid, t.typname, t.typsend::text, t.typreceive::text
FROM pg_type t
JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = %s
WHERE t.typtype = 'b' ORDER BY t.typname
"""

SIM = ("FROM simulate_customers(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44), "
       "500, 39, 0, 1)")
VALUES = {
    "rfm_summary": [
        "(SELECT rfm(ts, amount, date '1997-09-30', 'week') FROM (VALUES (timestamp '1997-01-01', 29.33::float8), "
        "('1997-01-18', 29.73), ('1997-08-02', 14.96)) t(ts, amount))",
        "(SELECT rfm(ts, amount, date '2024-06-30') FROM (VALUES (date '2024-01-02', 10::numeric)) t(ts, amount))",
        "(SELECT rfm_holdout(ts, amount, date '2015-02-01', date '2015-02-07', 'day') FROM (VALUES "
        "(timestamp '2015-01-16', 6::float8), ('2015-02-02', 3), ('2015-02-05', 3), ('2015-02-05', 6)) t(ts, amount))",
        "(SELECT rfm(timestamp '2024-01-01' + g * interval '1 day', (g % 50)::float8, date '2026-12-31', 'day') "
        "FROM generate_series(1, 1000) g)",
        "(SELECT rfm(ts, amount, date '2024-06-30') FROM (VALUES (timestamptz '0001-01-01 00:00+00', 1e300::float8), "
        "('2024-06-30', -1e300)) t(ts, amount))",
    ],
    "bgnbd_model": ["bgnbd_model(0.243, 4.414, 0.793, 2.426)", "bgnbd_model(1e-4, 1e4, 1e4, 1e-4)",
                    "(SELECT bgnbd_fit(frequency, recency, tenure) %s)" % SIM],
    "pareto_nbd_model": ["pareto_nbd_model(0.553, 10.578, 0.606, 11.669)", "pareto_nbd_model(1e4, 1e-4, 1e-4, 1e4)",
                         "(SELECT pareto_nbd_fit(frequency, recency, tenure) %s)" % SIM],
    "mbgnbd_model": ["mbgnbd_model(0.525, 6.183, 0.891, 1.614)", "mbgnbd_model(1e-4, 1e4, 1e4, 1e-4)",
                     "(SELECT mbgnbd_fit(frequency, recency, tenure) %s)" % SIM],
    "bgbb_model": ["bgbb_model(1.204, 0.750, 0.657, 2.783)", "bgbb_model(1e4, 1e-4, 1e-4, 1e4)",
                   "(SELECT bgbb_fit(x, tx, 6, 1, 0.001) FROM (SELECT least(g % 7, 6)::float8 AS x, CASE WHEN g % 7 = 0 "
                   "THEN 0 ELSE least(6, g % 7 + (g / 7) % 3) END::float8 AS tx FROM generate_series(1, 400) g) d)"],
    "gamma_gamma_model": ["gamma_gamma_model(6.25, 3.74, 15.44)", "gamma_gamma_model(6.25, 0.79, 15.44)",
                          "(SELECT gamma_gamma_fit(frequency, monetary_value) %s WHERE frequency > 0)" % SIM],
    "kmeans_model": ["(SELECT kmeans_fit(ARRAY[x, x * 2]::float8[], 2) FROM generate_series(1, 10) x)",
                     "(SELECT kmeans_fit(ARRAY[x % 7, x % 3]::float8[], 3, 7) FROM generate_series(1, 200) x)"],
    "ml_model": ["(SELECT ml_regression_fit(ARRAY[x, x % 7]::float8[], x * 2.0 + x % 7, 'linear') FROM generate_series(1, 50) x)",
                 "(SELECT ml_classifier_fit(ARRAY[x, x % 7]::float8[], x % 3 = 0, 'gradient_boosting', '{\"n_trees\": 5}') FROM generate_series(1, 50) x)"],
    "cluster_model": ["(SELECT dbscan_fit(ARRAY[x % 7, x % 3]::float8[], 0.5, 3) FROM generate_series(1, 60) x)",
                      "(SELECT hierarchical_fit(ARRAY[x % 7, x % 3]::float8[], 3, 'average') FROM generate_series(1, 60) x)"],
    "pca_model": ["(SELECT pca_fit(ARRAY[x, x % 7]::float8[], 2) FROM generate_series(1, 50) x)"],
}
# A function of the type, %s being the value: the same result from the binary parameter.
USE = {
    "rfm_summary": "SELECT frequency(%s), recency(%s), monetary_value(%s), transactions(%s)",
    "bgnbd_model": "SELECT p_alive(%s, 2, 30.43, 38.86), expected_purchases(%s, 39, 2, 30.43, 38.86)",
    "pareto_nbd_model": "SELECT p_alive(%s, 2, 30.43, 38.86), expected_purchases(%s, 39, 2, 30.43, 38.86)",
    "mbgnbd_model": "SELECT p_alive(%s, 2, 30.43, 38.86), expected_purchases(%s, 39, 2, 30.43, 38.86)",
    "bgbb_model": "SELECT p_alive(%s, 2, 4, 6), expected_purchases(%s, 10, 2, 4, 6)",
    "gamma_gamma_model": "SELECT expected_spend(%s, 2, 22.35)",
    "kmeans_model": "SELECT kmeans_assign(%s, '{1,2}'::float8[])",
    "ml_model": "SELECT ml_predict(%s, '{1,2}'::float8[])",
    "cluster_model": "SELECT cluster_assign(%s, '{1,2}'::float8[])",
    "pca_model": "SELECT pca_project(%s, '{1,2}'::float8[])",
}


class Raw:
    """Bytes sent as they are, in binary format, as the parameter type of the dumper's oid."""
    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


def raw_dumper(oid):
    return type("RawDumper%d" % oid, (Dumper,), {"oid": oid, "format": Format.BINARY,
                                                 "dump": lambda self, obj: obj.data})


class Check:
    def __init__(self, verbose):
        self.passed = self.failed = 0
        self.verbose = verbose
        self.failures = []

    def ok(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            if self.verbose:
                print("  ok   %s" % what)
        else:
            self.failed += 1
            self.failures.append("%s %s" % (what, detail))
            print("  FAIL %s %s" % (what, detail))
        return cond


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dsn", default="")
    p.add_argument("--extension", default="clv_ext")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args()
    ck = Check(a.verbose)
    conn = psycopg.connect(a.dsn, autocommit=True)
    conn.execute("SET statement_timeout = '30s'")
    conn.execute("SET extra_float_digits = 3")
    types = conn.execute(TYPES_SQL, (a.extension,)).fetchall()
    if not types:
        print("binary_client.py: extension %s has no base type (CREATE EXTENSION first)" % a.extension)
        return 2
    print("psycopg %s (libpq %s), server %s; types: %s" % (
        psycopg.__version__, psycopg.pq.version(), conn.info.server_version,
        ", ".join("%s (send %s, receive %s)" % (n, s, r) for _, n, s, r in types)))

    for oid, tname, send, recv in types:
        print("%s:" % tname)
        conn.adapters.register_dumper(Raw, raw_dumper(oid))   # Raw goes out as this type
        exprs = VALUES.get(tname, []) + ["NULL::%s" % tname]
        # a table pair per type: psycopg prepares a statement run five times, and a prepared
        # statement may not see its table's column change type
        src_t, dst_t = "clv_bin_src_" + tname, "clv_bin_dst_" + tname
        conn.execute("DROP TABLE IF EXISTS %s, %s" % (src_t, dst_t))
        conn.execute("CREATE TEMP TABLE %s(id int, v %s)" % (src_t, tname))
        conn.execute("CREATE TEMP TABLE %s(id int, v %s)" % (dst_t, tname))
        made = 0
        for i, e in enumerate(exprs):
            label = "%s value %d" % (tname, i + 1)
            try:
                text = conn.execute("SELECT (%s)::text" % e).fetchone()[0]
                conn.execute("INSERT INTO %s VALUES (%s, %s)" % (src_t, i, e))
                made += 1
            except psycopg.Error as err:
                ck.ok(False, label, "could not be made: %s" % err.diag.message_primary)
                continue
            # 1. read in binary
            try:
                with conn.cursor(binary=True) as cur:
                    cur.execute("SELECT (%s)" % e)
                    data = cur.fetchone()[0]
                    fmt = cur.pgresult.fformat(0)
            except psycopg.Error as err:
                ck.ok(False, "%s: binary read" % label, "%s %s" % (err.sqlstate, err.diag.message_primary))
                continue
            if text is None:
                ck.ok(data is None, "%s: NULL reads as NULL in binary" % label)
                continue
            data = bytes(data)
            ck.ok(fmt == 1 and len(data) > 0, "%s: binary read (%d bytes)" % (label, len(data)))
            # 2. write back as a binary parameter: in a query, and stored by an INSERT
            try:
                back = conn.execute("SELECT (%b)::text", [Raw(data)]).fetchone()[0]
                ck.ok(back == text, "%s: binary parameter -> same text form" % label,
                      "\n    sent %r\n    got  %r" % (text[:300], (back or "")[:300]))
                conn.execute("INSERT INTO %s VALUES (%%s, %%b)" % dst_t, [1000 + i, Raw(data)])
                stored = conn.execute("SELECT v::text FROM %s WHERE id = %%s" % dst_t, [1000 + i]).fetchone()[0]
                ck.ok(stored == text, "%s: INSERT of the binary parameter -> same text form" % label)
                with conn.cursor(binary=True) as cur:
                    cur.execute("SELECT v FROM %s WHERE id = %%s" % dst_t, [1000 + i])
                    again = bytes(cur.fetchone()[0])
                ck.ok(again == data, "%s: the stored value sends the same bytes" % label)
                # 3. the same result from a function of the received value
                if tname in USE:
                    q = USE[tname]
                    n = q.count("%s")
                    want = conn.execute(q % tuple(["(%s)" % e] * n)).fetchone()
                    got = conn.execute(q.replace("%s", "%b"), [Raw(data)] * n).fetchone()
                    ck.ok(want == got, "%s: %s on the binary parameter" % (label, q.split("(")[0][7:]),
                          "%r != %r" % (got, want))
                # binary results of the whole row through psycopg's binary loaders too
                with conn.cursor(binary=True) as cur:
                    cur.execute("SELECT %s, (%%b)::text" % i, [Raw(data)])
                    r = cur.fetchone()
                    ck.ok(r == (i, text), "%s: binary result row (int4 and text)" % label)
            except psycopg.Error as err:
                ck.ok(False, "%s: binary write" % label, "%s %s" % (err.sqlstate, err.diag.message_primary))
        conn.execute("DELETE FROM %s" % dst_t)
        # 4. COPY (FORMAT binary) out of one table and into another
        try:
            buf = bytearray()
            with conn.cursor() as cur:
                with cur.copy("COPY (SELECT id, v FROM %s ORDER BY id) TO STDOUT (FORMAT binary)" % src_t) as cp:
                    for chunk in cp:
                        buf += chunk
                with cur.copy("COPY %s (id, v) FROM STDIN (FORMAT binary)" % dst_t) as cp:
                    cp.write(bytes(buf))
            src = conn.execute("SELECT id, v::text FROM %s ORDER BY id" % src_t).fetchall()
            dst = conn.execute("SELECT id, v::text FROM %s ORDER BY id" % dst_t).fetchall()
            ck.ok(src == dst and len(src) == made,
                  "%s: COPY (FORMAT binary) out and back in, %d rows (%d bytes)" % (tname, len(src), len(buf)),
                  "" if src == dst else "rows differ: %r" % [(x, y) for x, y in zip(src, dst) if x != y][:2])
            # and row by row with psycopg's binary COPY API (the values as bytes)
            rows = []
            with conn.cursor() as cur:
                with cur.copy("COPY (SELECT id, v FROM %s ORDER BY id) TO STDOUT (FORMAT binary)" % src_t) as cp:
                    cp.set_types(["int4", "bytea"])   # bytea's loader: the value's bytes as they are
                    rows = [(r[0], bytes(r[1]) if r[1] is not None else None) for r in cp.rows()]
                conn.execute("DELETE FROM %s" % dst_t)
                with cur.copy("COPY %s (id, v) FROM STDIN (FORMAT binary)" % dst_t) as cp:
                    cp.set_types(["int4", oid])
                    for rid, data in rows:
                        cp.write_row((rid, Raw(data) if data is not None else None))
            dst = conn.execute("SELECT id, v::text FROM %s ORDER BY id" % dst_t).fetchall()
            ck.ok(src == dst, "%s: COPY (FORMAT binary) row by row (write_row of the received bytes)" % tname)
        except psycopg.Error as err:
            ck.ok(False, "%s: COPY (FORMAT binary)" % tname, "%s %s" % (err.sqlstate, err.diag.message_primary))
        except Exception as err:   # psycopg's copy API raises plain errors for protocol misuse
            ck.ok(False, "%s: COPY (FORMAT binary)" % tname, repr(err))

    print("\nclv_ext binary client: %d passed, %d failed" % (ck.passed, ck.failed))
    for f in ck.failures:
        print("  failed: %s" % f.splitlines()[0])
    return 1 if ck.failed else 0


if __name__ == "__main__":
    sys.exit(main())
