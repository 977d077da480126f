#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Formats a man page with groff and fails on any warning.

usage: check-man.py GROFF PAGE
"""
import subprocess
import sys


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    groff, page = sys.argv[1:]
    r = subprocess.run([groff, "-man", "-ww", "-z", "-t", "-Tutf8", page],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0 or r.stderr.strip():
        sys.stdout.write(r.stderr)
        raise SystemExit("FAIL: %s: groff reported the problems above" % page)
    with open(page, encoding="utf-8") as f:
        text = f.read()
    for sec in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS",
                "ENVIRONMENT", "EXIT STATUS", "SEE ALSO"):
        if "\n.SH %s\n" % sec not in text and "\n.SH \"%s\"\n" % sec not in text:
            raise SystemExit("FAIL: %s: no .SH %s section" % (page, sec))
    print("ok: %s formats without warnings and has every section" % page)


if __name__ == "__main__":
    main()
