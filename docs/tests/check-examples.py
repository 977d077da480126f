#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Compiles the EXAMPLE of every op page (docs/ops/*.md) so the examples
cannot rot: each must be a complete op function, strict C11, against the
real header and jansson.

usage: check-examples.py OPS_DIR ABI_DIR CC [CFLAGS...]
"""
import os
import re
import subprocess
import sys

PRELUDE = """#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include <pallet/provider.h>
"""


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    opsdir, abi, cc = sys.argv[1:4]
    extra = sys.argv[4:]
    failed = []
    pages = sorted(f for f in os.listdir(opsdir) if f.endswith(".md"))
    if not pages:
        raise SystemExit("FAIL: no op pages in " + opsdir)
    for page in pages:
        op = page[:-3]
        with open(os.path.join(opsdir, page), encoding="utf-8") as f:
            text = f.read()
        m = re.search(r"^# EXAMPLE\s*$(.*?)^# ", text, re.M | re.S)
        b = m and re.search(r"^```c\s*\n(.*?)^```\s*$", m.group(1), re.M | re.S)
        if not b:
            failed.append(page + ": no ```c block in EXAMPLE")
            continue
        src = b.group(1)
        if not re.search(r"\bmyprov_%s\s*\(" % re.escape(op), src):
            failed.append(page + ": EXAMPLE does not define myprov_%s" % op)
            continue
        # Make sure the example matches the op's typedef, then that it is
        # used (so the compiler checks it whole).
        src = (PRELUDE + src + "\nstatic pallet_%s_fn myprov_%s;\n"
               "void *example_%s (void);\n"
               "void *example_%s (void) { return (void *) myprov_%s; }\n"
               % (op, op, op, op, op))
        # Stand-in client functions are declared but not defined.
        argv = [cc, "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror",
                "-Wno-unused-function", "-fsyntax-only", "-I" + abi] + extra \
            + ["-x", "c", "-"]
        r = subprocess.run(argv, input=src, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            failed.append("%s: EXAMPLE does not compile:\n%s" % (page, r.stdout))
        else:
            print("ok: %s EXAMPLE compiles" % page)
    for f in failed:
        print("FAIL: " + f)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
