#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Compiles every ```c block of docs/host-guide.md against <pallet/host.h>,
strict C11, so the guide's examples cannot rot.

usage: check-host-guide.py GUIDE.md CC -I... [CFLAGS...]"""
import re
import subprocess
import sys
import tempfile


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    guide, cc, flags = sys.argv[1], sys.argv[2], sys.argv[3:]
    text = open(guide, encoding="utf-8").read()
    blocks = re.findall(r"^```c\s*\n(.*?)^```\s*$", text, re.M | re.S)
    if not blocks:
        raise SystemExit("FAIL: %s has no ```c block" % guide)
    failed = 0
    for i, b in enumerate(blocks):
        # A fragment (statements) is wrapped in a function; a declaration
        # (typedef) compiles after the header, which it must agree with.
        if b.lstrip().startswith("typedef"):
            b = "#include <pallet/host.h>\n" + b
        elif not re.search(r"^\w[\w\s\*]*\([^;]*\)\s*$", b, re.M):
            b = ("#include <stdio.h>\n#include <pallet/host.h>\n"
                 "static void on_event (const struct pallet_event *e, void *o)"
                 " { (void) e; (void) o; }\n"
                 "int fragment (struct pallet_module *m, const char *config_json,"
                 " const char *plan_json, void *my_state);\n"
                 "int fragment (struct pallet_module *m, const char *config_json,"
                 " const char *plan_json, void *my_state)\n{\n" + b +
                 "  (void) my_state;\n  return exit_code;\n}\n")
        else:
            b = b + "\nint list_instances (const char *config_json);\n"
        with tempfile.NamedTemporaryFile("w", suffix=".c") as f:
            f.write(b)
            f.flush()
            p = subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror",
                                "-pedantic", "-fsyntax-only"] + flags + [f.name],
                               capture_output=True, text=True)
        if p.returncode != 0:
            failed += 1
            print("FAIL: block %d of %s:\n%s" % (i + 1, guide, p.stderr))
    if failed:
        raise SystemExit(1)
    print("ok: %d blocks of %s compile" % (len(blocks), guide))


main()
