#!/usr/bin/env python3
"""Print the CREATE statements of the named objects from `cargo pgrx schema` output (stdin), exactly
as a fresh install creates them - the upgrade scripts' CREATE FUNCTION text must be identical to a
fresh install's for the upgrade test's catalog fingerprint to match.

    cargo pgrx schema pg15 | scripts/extract-sql.py rfm_summary_send monetary_value_holdout_per_transaction
    cargo pgrx schema pg15 | scripts/extract-sql.py --plpgsql clv_pipeline   # from sql/pipeline.sql
"""
import re
import sys

args = sys.argv[1:]
plpgsql = args[:1] == ["--plpgsql"]
names = args[1:] if plpgsql else args
text = sys.stdin.read()
for name in names:
    if plpgsql:
        m = re.search(r"^CREATE FUNCTION %s\(.*?^END \$\$;\n" % re.escape(name), text, re.S | re.M)
    else:
        m = re.search(r'^CREATE\s+FUNCTION "%s"\(.*?;\n' % re.escape(name), text, re.S | re.M)
    if not m:
        sys.exit("not found: " + name)
    print(m.group(0))
