#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Compiles the SYNOPSIS of docs/provider-guide.md into a provider and checks
that it exports exactly pallet_provider_entry.

usage: check-synopsis.py GUIDE.md ABI_DIR CC OUTDIR
"""
import ctypes
import os
import re
import subprocess
import sys


def extract_synopsis(text):
    """The first ```c block after the '## SYNOPSIS' heading."""
    m = re.search(r"^## SYNOPSIS\s*$", text, re.M)
    if not m:
        raise SystemExit("FAIL: no '## SYNOPSIS' heading in the guide")
    rest = text[m.end():]
    nxt = re.search(r"^## ", rest, re.M)
    section = rest[: nxt.start()] if nxt else rest
    b = re.search(r"^```c\s*\n(.*?)^```\s*$", section, re.M | re.S)
    if not b:
        raise SystemExit("FAIL: the SYNOPSIS has no ```c block")
    return b.group(1)


def run(argv):
    print("+ " + " ".join(argv), flush=True)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    sys.stdout.write(r.stdout)
    return r.returncode, r.stdout


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    guide, abi, cc, outdir = sys.argv[1:]
    with open(guide, encoding="utf-8") as f:
        src = extract_synopsis(f.read())
    if "PALLET_PROVIDER_DEFINE" not in src:
        raise SystemExit("FAIL: the SYNOPSIS does not define a provider")
    os.makedirs(outdir, exist_ok=True)
    c = os.path.join(outdir, "pallet-provider-skeleton.c")
    so = os.path.join(outdir, "pallet-provider-skeleton.so")
    with open(c, "w", encoding="utf-8") as f:
        f.write(src)
    if os.path.exists(so):
        os.unlink(so)
    rc, _ = run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic",
                 "-fPIC", "-shared", "-I" + abi,
                 "-Wl,--version-script=" + os.path.join(abi, "pallet-provider.map"),
                 "-Wl,--no-undefined", "-o", so, c, "-ljansson"])
    if rc != 0:
        raise SystemExit("FAIL: the SYNOPSIS does not compile")
    rc, out = run(["nm", "-D", "--defined-only", so])
    if rc != 0:
        raise SystemExit("FAIL: nm -D failed on " + so)
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRVW" and parts[2] not in (
                "_init", "_fini", "_edata", "_end", "__bss_start"):
            syms.append(parts[2])
    if syms != ["pallet_provider_entry"]:
        raise SystemExit("FAIL: the SYNOPSIS provider exports %r, not exactly "
                         "['pallet_provider_entry']" % syms)
    check_entry(so)
    print("ok: the SYNOPSIS compiles, exports only pallet_provider_entry "
          "and its entry point keeps the ABI contract")


class Host(ctypes.Structure):
    # Only the pinned head; the entry point reads nothing else.
    _fields_ = [("abi_major", ctypes.c_uint32), ("abi_minor", ctypes.c_uint32),
                ("struct_size", ctypes.c_uint64),
                ("slots", ctypes.c_void_p * 7)]


class VtableHead(ctypes.Structure):
    _fields_ = [("abi_major", ctypes.c_uint32), ("abi_minor", ctypes.c_uint32),
                ("struct_size", ctypes.c_uint64), ("name", ctypes.c_char_p)]


def check_entry(so):
    """Calls the entry point as the host would: right major, wrong major."""
    lib = ctypes.CDLL(so)
    entry = lib.pallet_provider_entry
    entry.restype = ctypes.c_void_p
    entry.argtypes = [ctypes.c_uint32, ctypes.POINTER(Host)]
    host = Host(1, 0, ctypes.sizeof(Host))
    vt = entry(1, ctypes.byref(host))
    if not vt:
        raise SystemExit("FAIL: pallet_provider_entry (1, host) returned NULL")
    head = VtableHead.from_address(vt)
    if head.abi_major != 1 or head.struct_size < 128 \
            or head.name != b"skeleton":
        raise SystemExit("FAIL: vtable head is abi_major=%d struct_size=%d "
                         "name=%r" % (head.abi_major, head.struct_size,
                                      head.name))
    if entry(2, ctypes.byref(host)):
        raise SystemExit("FAIL: pallet_provider_entry (2, host) must refuse "
                         "a host of another major")


if __name__ == "__main__":
    main()
