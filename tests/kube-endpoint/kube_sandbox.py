# SPDX-License-Identifier: Apache-2.0
"""One container of pallet-kube-endpoint, run as PID 1 of fresh mount,
PID and UTS namespaces (started by `unshare --mount --pid --uts --fork
--kill-child`).  Builds the container's root (an overlay over the image's
rootfs, or a tmpfs with the host's /usr, /etc... bound read-only for
image "host"), a private /dev with the volumeDevices bind-mounted at
their devicePath, the volumeMounts, then chroots, drops privileges as the
securityContext says and execs the command.

    kube_sandbox.py SPEC.json
"""

import ctypes
import json
import os
import socket
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 32, 4096, 16384, 1 << 18)
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38
libc = ctypes.CDLL(None, use_errno=True)
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty", "kvm", "fuse")
HOST_TOP = ("usr", "etc", "opt", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "srv")


def mount(src, dst, fstype=None, flags=0, data=None):
    r = libc.mount(src.encode() if src else None, dst.encode(),
                   fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                   data.encode() if data else None)
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, "mount %s on %s (%s): %s" % (src, dst, fstype or "bind",
                                                     os.strerror(e)))


def bind(src, dst, ro=False):
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.exists(dst):
            open(dst, "a").close()
    mount(src, dst, None, MS_BIND | MS_REC)
    if ro:
        mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def inside(root, path):
    """root + path, refusing paths that climb out with '..'."""
    p = os.path.normpath("/" + path)
    if ".." in p.split("/"):
        raise ValueError("path %r climbs out of the container" % path)
    return root.rstrip("/") + p


def build_root(spec):
    root = spec["merged"]
    os.makedirs(root, exist_ok=True)
    if spec["rootfs"]:
        for d in (spec["upper"], spec["work"]):
            os.makedirs(d, exist_ok=True)
        mount("overlay", root, "overlay", 0, "lowerdir=%s,upperdir=%s,workdir=%s" % (
            spec["rootfs"], spec["upper"], spec["work"]))
    else:
        mount("tmpfs", root, "tmpfs", MS_NOSUID, "mode=755")
        # The host's directories copy-on-write: the container may write
        # (and create mount points) without touching the host.
        for top in HOST_TOP:
            src = "/" + top
            if os.path.islink(src):
                os.symlink(os.readlink(src), os.path.join(root, top))
            elif os.path.isdir(src):
                up, wk = os.path.join(spec["upper"], top), os.path.join(spec["work"], top)
                for d in (up, wk, os.path.join(root, top)):
                    os.makedirs(d, exist_ok=True)
                mount("overlay", os.path.join(root, top), "overlay", 0,
                      "lowerdir=%s,upperdir=%s,workdir=%s" % (src, up, wk))
        for d in spec["host_binds"]:
            bind(d, inside(root, d), ro=True)
        for d in ("tmp", "var/tmp", "root", "run", "home"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        os.chmod(os.path.join(root, "tmp"), 0o1777)
        os.chmod(os.path.join(root, "var/tmp"), 0o1777)
    return root


def build_dev(root, spec):
    dev = os.path.join(root, "dev")
    os.makedirs(dev, exist_ok=True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755")
    for n in DEV_NODES:
        if os.path.exists("/dev/" + n):
            bind("/dev/" + n, os.path.join(dev, n))
    os.makedirs(os.path.join(dev, "pts"))
    mount("devpts", os.path.join(dev, "pts"), "devpts", MS_NOSUID,
          "newinstance,ptmxmode=0666,mode=620")
    os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
    os.makedirs(os.path.join(dev, "shm"))
    mount("tmpfs", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    for i, n in enumerate(("stdin", "stdout", "stderr")):
        os.symlink("/proc/self/fd/%d" % i, os.path.join(dev, n))
    os.symlink("/proc/self/fd", os.path.join(dev, "fd"))


def setup(spec):
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    root = build_root(spec)
    os.makedirs(os.path.join(root, "proc"), exist_ok=True)
    mount("proc", os.path.join(root, "proc"), "proc", MS_NOSUID | MS_NODEV)
    os.makedirs(os.path.join(root, "sys"), exist_ok=True)
    mount("sysfs", os.path.join(root, "sys"), "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV)
    build_dev(root, spec)
    if spec["rootfs"]:
        for f in ("/etc/resolv.conf", "/etc/hosts"):
            if os.path.exists(f):
                bind(f, inside(root, f), ro=True)
    for d in spec["devices"]:
        bind(d["src"], inside(root, d["dst"]), ro=d["ro"])
    for m in spec["mounts"]:
        bind(m["src"], inside(root, m["dst"]), ro=m["ro"])
    bind(spec["termination_log"], inside(root, spec["termination_path"]))
    socket.sethostname(spec["hostname"])
    return root


def drop_privileges(spec):
    if spec["no_new_privs"]:
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if spec["drop_all_caps"]:
        for cap in range(64):
            libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    gid, uid = spec["gid"], spec["uid"]
    if uid is not None or gid is not None or spec["groups"]:
        os.setgroups(spec["groups"])
    if gid is not None:
        os.setgid(int(gid))
    elif uid is not None:
        os.setgid(int(uid))
    if uid is not None:
        os.setuid(int(uid))


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    # Opened before the chroot: the endpoint reads it after the exit.
    err = os.open(spec["start_error"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        root = setup(spec)
        os.chroot(root)
        os.chdir(spec["cwd"])
        drop_privileges(spec)
    except (OSError, ValueError) as e:
        os.write(err, ("failed to create the container's sandbox: %s" % e).encode())
        sys.exit(128)
    argv = spec["argv"]
    try:
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as e:
        os.write(err, ('failed to start container: exec: "%s": %s' % (
            argv[0], "executable file not found in $PATH" if e.errno == 2 else e.strerror
        )).encode())
        sys.exit(128)


if __name__ == "__main__":
    main()
