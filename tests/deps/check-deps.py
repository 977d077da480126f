#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""check-deps.py: every external file and program Pallet uses at run time
comes from a Debian package that scripts/install-deps.sh installs, directly
or as a (recursive) Depends/Pre-Depends of a package it lists, or from the
base system (Essential or Priority: required).

A machine with packages installed by hand passes its tests even when
install-deps.sh forgets one; this check finds the file each test or
conversion uses (the kernel supermin picks, virt-v2v, QEMU, OVMF, nbdkit
plugins, awscli, kubectl, Python modules the tests import...), asks dpkg
which package owns it and fails naming that package when install-deps.sh
would not have installed it.

Usage: check-deps.py [--install-deps SCRIPT] [--boot-dir DIR] [--modules-dir DIR]
                     [--source-dir DIR] [-v]
Exit status: 0 all covered, 1 something missing or not covered, 2 usage."""

import argparse
import ast
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# (program, the package that should provide it, who needs it)
PROGRAMS = [
    ("virt-v2v", "virt-v2v", "convert (local mode)"),
    ("virt-v2v-in-place", "virt-v2v", "convert"),
    ("virt-v2v-inspector", "virt-v2v", "convert inspection"),
    ("supermin", "supermin", "the libguestfs appliance"),
    ("qemu-system-x86_64", "qemu-system-x86", "the appliance, guest boot checks"),
    ("qemu-img", "qemu-utils", "convert, tests"),
    ("qemu-nbd", "qemu-utils", "convert tests"),
    ("nbdkit", "nbdkit", "transfer, convert"),
    ("nbdcopy", "libnbd-bin", "bench, virt-v2v"),
    ("nbdinfo", "libnbd-bin", "tests"),
    ("guestfish", "libguestfs-tools", "tests"),
    ("libguestfs-test-tool", "libguestfs-tools", "pallet doctor --deep"),
    ("debootstrap", "debootstrap", "tests/guest"),
    ("mkfs.ext4", "e2fsprogs", "tests/guest"),
    ("mkfs.fat", "dosfstools", "convert tests (UEFI)"),
    ("mkfs.xfs", "xfsprogs", "XFS guests"),
    ("lvm", "lvm2", "LVM guests"),
    ("sfdisk", "fdisk", "tests/guest"),
    ("grub-mkimage", "grub-common", "tests/guest"),
    ("kubectl", "kubernetes-client", "tests (a real Kubernetes client)"),
    ("go", "golang-go", "tests/vsphere-sim"),
    ("valgrind", "valgrind", "make check"),
    ("groff", "groff-base", "docs tests"),
    ("clang", "clang", "fuzz"),
    ("clang-format", "clang-format", "style"),
    ("cmake", "cmake", "the build"),
    ("dpkg-buildpackage", "dpkg-dev", "packaging tests"),
    ("rpmbuild", "rpm", "packaging tests"),
    ("virsh", "libvirt-clients", "tests"),
    ("curl", "curl", "tests"),
    ("openssl", "openssl", "tests (TLS)"),
    ("cpio", "cpio", "tests"),
    ("unshare", "util-linux", "tests/guest"),
    ("flock", "util-linux", "tests"),
    ("setpriv", "util-linux", "tests/kube-endpoint (QEMU of VirtualMachines)"),
]
# (path, package, who needs it); a path may be a glob.
FILES = [
    ("/usr/bin/aws", "awscli", "the tests' AWS client"),
    ("/usr/bin/python3", "python3-minimal", "tests, lint-manifests"),
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf", "UEFI guests"),
    ("/usr/share/OVMF/OVMF_VARS_4M.fd", "ovmf", "UEFI guests"),
    ("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "ovmf", "secure-boot VMs (tests/kube-endpoint)"),
    ("/usr/share/OVMF/OVMF_VARS_4M.ms.fd", "ovmf", "secure-boot VMs (tests/kube-endpoint)"),
    ("{plugindir}/nbdkit-curl-plugin.so", "nbdkit", "transfer over HTTPS"),
    ("{plugindir}/nbdkit-ssh-plugin.so", "nbdkit", "transfer over SSH"),
    ("{plugindir}/nbdkit-file-plugin.so", "nbdkit", "local disks"),
    ("/usr/lib/*/guestfs/supermin.d/packages-xfs", "libguestfs-xfs", "XFS guests in the appliance"),
    ("/usr/share/gocode/src/github.com/vmware/govmomi", "golang-github-vmware-govmomi-dev", "tests/vsphere-sim"),
]


class Report(object):
    def __init__(self, verbose):
        self.verbose = verbose
        self.failures = 0

    def ok(self, msg):
        if self.verbose:
            print("OK   " + msg)

    def fail(self, msg):
        self.failures += 1
        print("FAIL " + msg)


def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))


def aliases(path):
    """path, its target and their /usr-merged twins: dpkg may know any."""
    cands = [path, os.path.realpath(path)]
    for p in list(cands):
        for a, b in (("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/"), ("/usr/lib/", "/lib/")):
            if p.startswith(a):
                cands.append(b + p[len(a):])
            elif p.startswith(b):
                cands.append(a + p[len(b):])
    return list(dict.fromkeys(cands))


def dpkg_owners(paths):
    """{path: package} for each path dpkg knows (one dpkg-query call: each
    call reads the whole file database)."""
    cands = sorted({a for p in paths for a in aliases(p)})
    owner = {}
    if cands:
        for line in run(["dpkg-query", "-S"] + cands).stdout.splitlines():
            if line.startswith(("diversion by", "local diversion")):
                continue
            pkgs, sep, owned = line.partition(": ")
            if sep and owned in cands:
                owner.setdefault(owned, pkgs.split(",")[0].strip().split(":")[0])
    return {p: next((owner[a] for a in aliases(p) if a in owner), None) for p in paths}


# --------------------------------------------------------------------------
# what install-deps.sh installs

def installed_packages():
    """name -> {depends: [[alternatives]], provides: [...], base: bool}"""
    fmt = "${db:Status-Abbrev}\t${Package}\t${Essential}\t${Priority}\t${Pre-Depends}, ${Depends}\t${Provides}\n"
    r = run(["dpkg-query", "-W", "-f=" + fmt])
    db = {}
    for line in r.stdout.splitlines():
        st, name, ess, prio, deps, prov = (line.split("\t") + [""] * 6)[:6]
        if not st.startswith("ii"):
            continue
        groups = []
        for grp in deps.split(","):
            alts = [re.sub(r"[\s(:].*", "", a.strip()) for a in grp.split("|")]
            alts = [a for a in alts if a]
            if alts:
                groups.append(alts)
        provides = [re.sub(r"[\s(].*", "", p.strip()) for p in prov.split(",") if p.strip()]
        db[name] = {"depends": groups, "provides": provides,
                    "base": ess == "yes" or prio == "required"}
    return db


def closure(roots, db):
    """Packages a fresh install of roots brings: their Depends, recursively.
    For an alternative (a | b), a package already chosen wins, else the
    first one that is installed here (apt takes the first)."""
    providers = {}
    for name, info in db.items():
        for p in info["provides"]:
            providers.setdefault(p, []).append(name)
    chosen, todo = set(), [r for r in roots if r in db]
    chosen.update(todo)
    while todo:
        pkg = todo.pop()
        for alts in db[pkg]["depends"]:
            real = []
            for a in alts:
                real += [a] if a in db else sorted(providers.get(a, []))
            if not real or any(a in chosen for a in real):
                continue
            chosen.add(real[0])
            todo.append(real[0])
    return chosen


def covered_set(script, db):
    r = subprocess.run(["sh", script, "--list"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write("check-deps: %s --list failed: %s\n" % (script, r.stderr.strip()))
        sys.exit(2)
    listed = r.stdout.split()
    base = [n for n, i in db.items() if i["base"]]
    return listed, closure(listed, db), closure(base, db)


def who_pulls(pkg, db, listed):
    """Installed packages depending on pkg (a hint for the fix)."""
    out = [n for n, i in db.items() if any(pkg in alts for alts in i["depends"])]
    return sorted(out, key=lambda n: (n not in listed, n))[:3]


# --------------------------------------------------------------------------
# what the project uses

def version_key(v):
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", v)]


def supermin_kernel(boot_dir, modules_dir):
    """The kernel supermin would pick: SUPERMIN_KERNEL, else the newest
    boot_dir/vmlinuz-VERSION that has modules_dir/VERSION."""
    env = os.environ.get("SUPERMIN_KERNEL")
    if env:
        return env, None
    best = None
    for k in glob.glob(os.path.join(boot_dir, "vmlinuz-*")):
        ver = os.path.basename(k)[len("vmlinuz-"):]
        if os.path.isdir(os.path.join(modules_dir, ver)) and \
                (best is None or version_key(ver) > version_key(best[1])):
            best = (k, ver)
    return (best[0], os.path.join(modules_dir, best[1])) if best else (None, None)


def python_modules(source_dir):
    """Top-level modules the tree's Python imports that are neither stdlib
    nor the tree's own: {module: first file importing it}."""
    files, local = [], set()
    for top, dirs, names in os.walk(source_dir):
        dirs[:] = [d for d in dirs if not d.startswith((".", "build"))]
        for n in names:
            p = os.path.join(top, n)
            if n.endswith(".py") or (not os.path.splitext(n)[1] and _is_python_script(p)):
                files.append(p)
                local.add(os.path.splitext(n)[0])
        local.update(dirs)
    found = {}
    for p in sorted(files):
        try:
            with open(p, encoding="utf-8") as fh:
                tree = ast.parse(fh.read(), p)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                top = n.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local and top != "__future__":
                    found.setdefault(top, os.path.relpath(p, source_dir))
    return found


def _is_python_script(path):
    try:
        with open(path, "rb") as fh:
            return fh.read(64).startswith(b"#!/usr/bin/python3")
    except OSError:
        return False


# --------------------------------------------------------------------------

def check_owned(rep, what, path, want, why, covered, db, listed, owners):
    pkg = owners.get(path)
    if pkg is None:
        rep.fail("%s (%s, for %s): no Debian package owns it; fix: install it from package "
                 "%s and add that to scripts/install-deps.sh" % (what, path, why, want))
        return
    if pkg in covered:
        rep.ok("%s: %s (%s)" % (what, pkg, path))
        return
    hint = [p for p in who_pulls(pkg, db, listed) if p != pkg]
    rep.fail("%s (%s, for %s) is in package %s, which scripts/install-deps.sh does not install "
             "(not listed, not a dependency of a listed package); fix: add %s to PKGS in "
             "scripts/install-deps.sh" % (what, path, why, pkg,
                                          pkg if not hint else "%s (or %s)" % (" or ".join(hint), pkg)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--install-deps", default=os.path.join(TOP, "scripts", "install-deps.sh"))
    ap.add_argument("--boot-dir", default="/boot", help="where supermin looks for kernels")
    ap.add_argument("--modules-dir", default="/lib/modules")
    ap.add_argument("--source-dir", default=TOP, help="the tree whose Python imports are checked")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if not os.path.isfile(args.install_deps):
        ap.error("--install-deps %s: no such file" % args.install_deps)

    db = installed_packages()
    listed, covered, base = covered_set(args.install_deps, db)
    covered |= base
    rep = Report(args.verbose)
    for p in listed:
        if p not in db:
            rep.fail("package %s, listed in %s, is not installed here; fix: run "
                     "scripts/install-deps.sh" % (p, args.install_deps))

    items = []   # (what, path, package expected, why)
    kernel, modules = supermin_kernel(args.boot_dir, args.modules_dir)
    if kernel is None:
        rep.fail("appliance kernel: no %s/vmlinuz-VERSION with a %s/VERSION directory, so supermin "
                 "cannot build the libguestfs appliance; fix: add linux-image-amd64 to "
                 "scripts/install-deps.sh and run it" % (args.boot_dir, args.modules_dir))
    else:
        items.append(("appliance kernel", kernel, "linux-image-amd64", "the libguestfs appliance"))
        if modules:
            items.append(("appliance kernel modules", modules, "linux-image-amd64",
                          "the libguestfs appliance"))

    for prog, want, why in PROGRAMS:
        path = shutil.which(prog, path=SYS_PATH)
        if path is None:
            rep.fail("program %s (for %s) not found; fix: add %s to scripts/install-deps.sh and "
                     "run it" % (prog, why, want))
        else:
            items.append(("program " + prog, path, want, why))

    r = run(["nbdkit", "--dump-config"]) if shutil.which("nbdkit", path=SYS_PATH) else None
    m = re.search(r"^plugindir=(.*)$", r.stdout if r else "", re.M)
    plugindir = m.group(1) if m else "/usr/lib/x86_64-linux-gnu/nbdkit/plugins"
    for pattern, want, why in FILES:
        hits = sorted(glob.glob(pattern.format(plugindir=plugindir)))
        if not hits:
            rep.fail("file %s (for %s) missing; fix: add %s to scripts/install-deps.sh and run it"
                     % (pattern.format(plugindir=plugindir), why, want))
        else:
            items.append(("file " + os.path.basename(hits[0]), hits[0], want, why))

    for mod, user in sorted(python_modules(args.source_dir).items()):
        spec = importlib.util.find_spec(mod)
        origin = spec and (spec.origin if spec.origin not in (None, "built-in", "frozen")
                           else (list(spec.submodule_search_locations or []) or [None])[0])
        if not origin:
            rep.fail("python module %s (imported by %s) is not importable by /usr/bin/python3; "
                     "fix: add its python3-* package to scripts/install-deps.sh" % (mod, user))
        else:
            items.append(("python module " + mod, origin, "python3-" + mod, user))

    owners = dpkg_owners([it[1] for it in items])
    for what, path, want, why in items:
        check_owned(rep, what, path, want, why, covered, db, listed, owners)

    if rep.failures:
        print("check-deps: %d problem(s): a fresh Debian 12 running %s would lack them"
              % (rep.failures, os.path.relpath(args.install_deps)))
        return 1
    print("check-deps: every run-time dependency comes from a package %s installs"
          % os.path.relpath(args.install_deps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
