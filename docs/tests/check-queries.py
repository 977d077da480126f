#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Every query the docs show (-q "..." in the Markdown files given) parses.

usage: check-queries.py QUERY_COMPILE_BINARY DOC.md...
"""
import re
import subprocess
import sys


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    binary, docs = sys.argv[1], sys.argv[2:]
    queries = []
    for d in docs:
        with open(d, encoding="utf-8") as f:
            queries += re.findall(r'-q "([^"]+)"', f.read())
    if not queries:
        raise SystemExit("FAIL: no -q \"...\" queries found in %s" % " ".join(docs))
    r = subprocess.run([binary] + queries, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        raise SystemExit("FAIL: a query in the docs does not parse")
    print("ok: %d queries from the docs parse" % len(queries))


if __name__ == "__main__":
    main()
