/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-convert: inspect a guest's disks and convert them in place to run
 * on KVM with virt-v2v-in-place.  A static library (pallet_convert) shared
 * by the providers.
 *
 * Inspection uses the libguestfs C API (read-only).  Conversion never
 * writes the caller's disks until virt-v2v-in-place has succeeded: it runs
 * on qcow2 overlays (qemu-img create -b DISK) and only then commits them
 * (qemu-img commit).  A failed, cancelled or timed-out conversion leaves
 * the disks byte-identical.
 *
 * Every function returning a message returns one that names the disk(s),
 * the problem and the fix.  Strings returned to the caller are malloc'd
 * and freed with free().
 */
#ifndef PALLET_CONVERT_H
#define PALLET_CONVERT_H

#include <stddef.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Outcome classes.  Stable numbers: tools print them. */
enum Pallet_convert_error {
  PALLET_CONVERT_OK = 0,
  PALLET_CONVERT_E_INVALID = 1,     /* bad arguments or options */
  PALLET_CONVERT_E_NO_OS = 2,       /* no operating system found */
  PALLET_CONVERT_E_MULTIBOOT = 3,   /* several OSes; a root must be chosen */
  PALLET_CONVERT_E_UNSUPPORTED = 4, /* guest type/OS virt-v2v cannot convert */
  PALLET_CONVERT_E_GUEST_SPACE = 5, /* not enough free space/inodes in guest */
  PALLET_CONVERT_E_HOST_SPACE = 6,  /* not enough free space on this host */
  PALLET_CONVERT_E_DISK = 7,        /* cannot open or read a disk */
  PALLET_CONVERT_E_TOOL = 8,        /* virt-v2v-in-place/qemu-img missing */
  PALLET_CONVERT_E_TIMEOUT = 9,
  PALLET_CONVERT_E_CANCELLED = 10,
  PALLET_CONVERT_E_FAILED = 11, /* any other conversion failure */
  PALLET_CONVERT_E_IO = 12,     /* local I/O (overlay, commit, pipes) */
  PALLET_CONVERT_E_NOMEM = 13,
  PALLET_CONVERT_E_DEVICE_NAME = 14 /* guest config names a device that
                                       cannot be resolved unambiguously */
};

/* Short stable name of an error class, e.g. "no-os". */
const char *Pallet_convert_error_name (enum Pallet_convert_error err);

/* ---- Inspection ------------------------------------------------------ */

struct Pallet_convert_inspect_options {
  int force_tcg;           /* backend "direct" with force_tcg (no KVM) */
  const char *disk_format; /* "raw", "qcow2"...; NULL: let libguestfs probe */
};

/* Inspects DISKS (NDISKS paths, all of one guest) read-only and sets
 * *JSON to a JSON object:
 *   { "type": "linux", "distro": "debian", "productName": "...",
 *     "major": 12, "minor": 15, "arch": "x86_64", "root": "/dev/sda1",
 *     "hostname": "...", "osinfo": "debian12", "packageFormat": "deb",
 *     "packageManagement": "apt", "firmware": "bios"|"uefi",
 *     "esp": "/dev/sda1"|null, "rootCount": 1, "disks": [ ... ] }
 * Fields libguestfs cannot tell are null.  OPTS may be NULL.  On failure
 * returns the error class and sets *MESSAGE (when MESSAGE is not NULL). */
enum Pallet_convert_error Pallet_convert_inspect (const char *const *disks, size_t ndisks,
                                                  const struct Pallet_convert_inspect_options *opts,
                                                  char **json, char **message);

/* ---- Device-name fix-up (before virt-v2v) ----------------------------- */

/* One volume as the source attached it: NAME is the block-device mapping's
 * device name ("/dev/xvda", "/dev/sda1", "/dev/sdf", "xvdf"), DISK the
 * index of that volume in the DISKS passed. */
struct Pallet_convert_device {
  const char *name;
  size_t disk;
};

/* One rewrite made in the guest: FILE (a guest path), LINE (1-based; 0
 * when unknown), FROM the name found, TO what replaced it. */
struct Pallet_convert_rewrite {
  char *file;
  unsigned line;
  char *from;
  char *to;
};

struct Pallet_convert_fixup_options {
  int force_tcg;           /* backend "direct" with force_tcg (no KVM) */
  const char *disk_format; /* NULL: "raw" */
  /* The instance's block-device mapping.  NULL: disk I is sd('a'+I) /
   * xvd('a'+I).  NVMe names need none: nvmeN is disk N (nvme0 the boot
   * volume, the rest in mapping order, as Nitro enumerates them). */
  const struct Pallet_convert_device *devices;
  size_t ndevices;
  int dry_run; /* find and resolve only: *REWRITES lists what would change */
};

/* Rewrites, in place on DISKS (pass overlays), every reference to an
 * EC2 device name (/dev/nvmeXnY[pZ], /dev/xvdX[N], /dev/sdX[N]) in the
 * guest's /etc/fstab and /etc/crypttab (through Augeas), /etc/default/grub
 * (and grub.d), grub.cfg, BLS entries, /etc/kernel/cmdline, dracut and
 * initramfs-tools configs and cloud-init configs, to UUID= (PARTUUID= or
 * LABEL= when the UUID is shared) of the filesystem it means.  Commented
 * lines are left alone.  Writes nothing unless every name resolves:
 * otherwise returns PALLET_CONVERT_E_DEVICE_NAME with *MESSAGE naming each
 * file, line, name and why.  No OS found: PALLET_CONVERT_OK, nothing done
 * (virt-v2v says so).  Sets *REWRITES / *NREWRITES (free with
 * Pallet_convert_rewrites_free). */
enum Pallet_convert_error Pallet_convert_fixup (const char *const *disks, size_t ndisks,
                                                const struct Pallet_convert_fixup_options *opts,
                                                struct Pallet_convert_rewrite **rewrites,
                                                size_t *nrewrites, char **message);

void Pallet_convert_rewrites_free (struct Pallet_convert_rewrite *v, size_t n);

/* [ { "file", "line", "from", "to" } ... ]; NULL on ENOMEM. */
json_t *Pallet_convert_rewrites_json (const struct Pallet_convert_rewrite *v, size_t n);

enum { PALLET_DEVNAME_NVME = 1, PALLET_DEVNAME_XVD, PALLET_DEVNAME_SD };

/* A parsed device name.  PART 0: the whole disk. */
struct Pallet_convert_devname {
  int kind;                /* PALLET_DEVNAME_* */
  unsigned controller, ns; /* NVMe: nvme<controller>n<ns> */
  char letters[8];         /* xvd/sd: "a", "f", "aa" */
  unsigned part;
};

/* If S starts with an EC2 device name ("/dev/nvme0n1p1", "/dev/xvdf",
 * "/dev/sda1") ending at a word boundary, fills *D and returns its length;
 * else 0. */
size_t Pallet_convert_parse_devname (const char *s, struct Pallet_convert_devname *d);

/* Called for each name found; returns the malloc'd replacement, or NULL
 * to leave it (having noted why). */
typedef char *(*Pallet_convert_resolve_fn) (void *opaque, unsigned line, const char *name,
                                            const struct Pallet_convert_devname *d);

/* Sets *OUT to TEXT with each device name outside '#' comment lines
 * replaced by what RESOLVE returns, *NCHANGES to the count.  -1 on ENOMEM. */
int Pallet_convert_rewrite_text (const char *text, Pallet_convert_resolve_fn resolve, void *opaque,
                                 char **out, size_t *nchanges);

/* ---- Conversion ------------------------------------------------------ */

/* A "[  23.3] Inspecting the source" step began.  INDEX counts from 0. */
typedef void (*Pallet_convert_progress_fn) (void *opaque, const char *step, double elapsed,
                                            int index);
/* Every output line, STREAM 1 = stdout, 2 = stderr (for logs). */
typedef void (*Pallet_convert_line_fn) (void *opaque, int stream, const char *line);
/* Polled a few times a second; nonzero cancels the conversion. */
typedef int (*Pallet_convert_cancel_fn) (void *opaque);

struct Pallet_convert_options {
  int force_tcg;            /* LIBGUESTFS_BACKEND=direct,
                                LIBGUESTFS_BACKEND_SETTINGS=force_tcg */
  int verbose;              /* pass -v -x to virt-v2v-in-place */
  unsigned timeout_seconds; /* 0: no timeout */
  const char *root;         /* --root value (e.g. "first"); NULL: default */
  const char *disk_format;  /* format of the disks; NULL: "raw" */
  const char *work_dir;     /* where overlays go; NULL: $TMPDIR or /var/tmp */
  const char *guest_name;   /* libvirt XML domain name; NULL: "pallet-guest" */
  int use_libvirtxml;       /* use -i libvirtxml even for one disk
                                (always used for more than one disk) */
  /* Run Pallet_convert_fixup on the overlays before virt-v2v (with this
   * block-device mapping; see Pallet_convert_fixup_options). */
  int fix_device_names;
  const struct Pallet_convert_device *devices;
  size_t ndevices;
  const char *program;  /* NULL: "virt-v2v-in-place" (looked up in PATH) */
  const char *qemu_img; /* NULL: "qemu-img" */
  /* First-boot scripts (local files, run in this order; callers sort
   * them by name): after virt-v2v-in-place, on the same overlays and so
   * committed only with the conversion, virt-customize --firstboot
   * installs each into libguestfs's firstboot service, which runs it once
   * at the next boot with its output on the console.  RUN_SCRIPTS run now,
   * in the appliance (virt-customize --run).  Added with boot verification. */
  const char *const *firstboot;
  size_t nfirstboot;
  const char *const *run_scripts;
  size_t nrun_scripts;
  const char *customize; /* NULL: "virt-customize" */
  Pallet_convert_progress_fn progress;
  Pallet_convert_line_fn line;
  Pallet_convert_cancel_fn cancel;
  void *opaque; /* passed to the callbacks */
};

struct Pallet_convert_result {
  enum Pallet_convert_error error;
  char *message;   /* NULL on success */
  char **warnings; /* "virt-v2v-in-place: warning: " text, prefix cut */
  size_t nwarnings;
  int exit_status;                         /* virt-v2v-in-place's exit status; -1 if none */
  int steps;                               /* progress steps seen */
  double elapsed;                          /* wall seconds of the whole call */
  struct Pallet_convert_rewrite *rewrites; /* the device-name fix-up's */
  size_t nrewrites;
};

/* Converts the guest on DISKS in place.  Fills *RESULT (always; free it
 * with Pallet_convert_result_free) and returns RESULT->error. */
enum Pallet_convert_error Pallet_convert_run (const char *const *disks, size_t ndisks,
                                              const struct Pallet_convert_options *opts,
                                              struct Pallet_convert_result *result);

void Pallet_convert_result_free (struct Pallet_convert_result *result);

/* The result as a JSON object text: { "ok", "error", "message",
 * "warnings": [...], "exitStatus", "steps", "elapsed",
 * "deviceNameRewrites": [...] }.  NULL on ENOMEM. */
char *Pallet_convert_result_to_json (const struct Pallet_convert_result *r);

/* The same, shorter than MAX bytes (with its NUL; MAX >= 256): when it
 * does not fit, the warnings are dropped ("warningsOmitted": N), the
 * message cut to 512 bytes, then rewrites dropped from the end
 * ("rewritesOmitted": N).  NULL on ENOMEM or MAX < 256. */
char *Pallet_convert_result_to_json_max (const struct Pallet_convert_result *r, size_t max);

/* ---- Post-conversion verification ----------------------------------- */

struct Pallet_convert_verify_options {
  int force_tcg;           /* backend "direct" with force_tcg (no KVM) */
  const char *disk_format; /* NULL: "raw" */
};

/* Checks, read-only, that the converted guest on DISKS can boot on KVM:
 *   kernel-virtio-blk / kernel-virtio-net: the newest installed kernel has
 *     the module (a file under /lib/modules/KVER/ or modules.builtin);
 *   initramfs-virtio-blk / initramfs-virtio-net: its initramfs carries
 *     them (listed by the guest's own lsinitramfs in the appliance);
 *   fstab-device-names / grub-device-names: /etc/fstab, /boot/grub/grub.cfg
 *     and /etc/default/grub name no /dev/xvd* or /dev/nvme* device.
 * Sets *JSON to { "ok": bool, "kernel": "KVER"|null, "checks": [ { "name",
 * "ok", "detail" } ... ] } and returns PALLET_CONVERT_OK when the guest
 * could be examined (look at "ok" for the verdict).  When a check fails,
 * *MESSAGE (if MESSAGE is not NULL) names the first failed check and the
 * fix; otherwise it is set to NULL.  On an error (no OS, unreadable disk)
 * returns its class, *JSON is NULL and *MESSAGE says why. */
enum Pallet_convert_error Pallet_convert_verify (const char *const *disks, size_t ndisks,
                                                 const struct Pallet_convert_verify_options *opts,
                                                 char **json, char **message);

/* ---- Boot verification ---------------------------------------------- */

/* Boots the converted guest locally under QEMU on a throwaway qcow2
 * overlay (the disks are never written), with the firmware and buses the
 * VM will have, and watches its serial console.  Success: a login prompt
 * ("login:") or cloud-init's "Cloud-init v. ... finished" line, and every
 * EXPECT string, seen within the time limit.  Failure: "No bootable
 * device", a kernel panic, an initramfs shell, QEMU exiting, the time
 * limit or a cancel; QEMU's process group is killed on each. */
struct Pallet_convert_boot_options {
  const char *firmware;            /* "bios" (NULL) or "uefi" / "efi" (OVMF) */
  int compat;                      /* SATA disks and an e1000e NIC instead of virtio */
  const char *accel;               /* "auto" (NULL): KVM if usable, else TCG; "kvm"; "tcg" */
  unsigned timeout_seconds;        /* 0: 300 */
  unsigned memory_mib;             /* 0: 1024 */
  unsigned tail_lines;             /* console lines kept for the report; 0: 40 */
  const char *disk_format;         /* NULL: "raw" */
  const char *work_dir;            /* where the overlays go; NULL: $TMPDIR or /var/tmp */
  const char *qemu;                /* NULL: "qemu-system-x86_64" */
  const char *qemu_img;            /* NULL: "qemu-img" */
  const char *ovmf_code;           /* NULL: from /usr/share/qemu/firmware, else known paths */
  const char *ovmf_vars;           /* the NVRAM template that goes with it */
  const char *const *expect;       /* NULL-terminated strings that must also appear */
  Pallet_convert_line_fn line;     /* each console line (stream 1) / QEMU stderr (2) */
  Pallet_convert_cancel_fn cancel; /* polled; nonzero kills QEMU */
  void *opaque;
};

struct Pallet_convert_boot_result {
  enum Pallet_convert_error error; /* OK when the guest came up */
  char *message;                   /* NULL on success */
  char *matched;                   /* the console line that showed it up */
  char *accel;                     /* "kvm" or "tcg": what the boot ran on */
  char *kvm_fallback;              /* why KVM was not used (NULL: not tried or used) */
  char *firmware_code;             /* the OVMF file used, NULL for BIOS */
  char **tail;                     /* the last console lines */
  size_t ntail;
  int *seen; /* seen[i]: EXPECT[i] appeared */
  size_t nexpect;
  double elapsed;    /* wall seconds of the boot(s) */
  double up_seconds; /* when the guest came up (0: never) */
};

/* Boots DISKS (boot disk first).  Fills *RESULT (always; free it with
 * Pallet_convert_boot_result_free) and returns RESULT->error:
 * PALLET_CONVERT_E_FAILED (did not boot), _TIMEOUT, _CANCELLED, _TOOL
 * (QEMU/OVMF missing), _DISK, _IO, _INVALID. */
enum Pallet_convert_error Pallet_convert_boot (const char *const *disks, size_t ndisks,
                                               const struct Pallet_convert_boot_options *opts,
                                               struct Pallet_convert_boot_result *result);

void Pallet_convert_boot_result_free (struct Pallet_convert_boot_result *result);

/* The result as a JSON object: { "ok", "error", "message", "matched",
 * "accel", "kvmFallback", "firmwareCode", "expect": [{"text","seen"}],
 * "consoleTail": [...], "elapsed", "upSeconds" } (EXPECT as given to the
 * boot, may be NULL).  NULL on ENOMEM. */
json_t *Pallet_convert_boot_result_json (const struct Pallet_convert_boot_result *r,
                                         const char *const *expect);

/* The verify-boot setting: "false" (or NULL) off, "true" (a failed boot
 * fails the VM), "warn" (a failed boot is reported, the VM goes on); -1
 * for anything else. */
enum { PALLET_CONVERT_BOOT_OFF = 0, PALLET_CONVERT_BOOT_ON = 1, PALLET_CONVERT_BOOT_WARN = 2 };
int Pallet_convert_boot_mode (const char *s);

/* Finds OVMF: the first non-secure-boot UEFI flash descriptor for x86_64
 * q35 in /usr/share/qemu/firmware (QEMU's firmware.json), else the known
 * Debian/Fedora paths.  Sets *CODE and *VARS (malloc'd) and returns 0, or
 * -1 when none is installed. */
int Pallet_convert_find_ovmf (char **code, char **vars);

/* ---- Cluster mode: the conversion Pod -------------------------------- */

/* What packaging/images/pallet-convert builds, tagged with the project's
 * version, under localhost/ until pushed to a registry (setting
 * conversion-image names the pushed one). */
#ifndef PALLET_IMAGE_TAG
#error "PALLET_IMAGE_TAG (the project version) must be defined by the build"
#endif
#define PALLET_CONVERT_DEFAULT_IMAGE "localhost/pallet-convert:" PALLET_IMAGE_TAG
#define PALLET_CONVERT_POD_MAX_DISKS 64

struct Pallet_convert_pod_options {
  const char *name;          /* Pod name, DNS-1123 (caller sanitises) */
  const char *namespace_;    /* target namespace */
  const char *image;         /* NULL: PALLET_CONVERT_DEFAULT_IMAGE */
  const char *const *claims; /* PVC names in disk order (boot disk first) */
  size_t nclaims;
  const char *zone;                     /* nodeSelector topology.kubernetes.io/zone; NULL: none */
  const char *vm_id;                    /* label forklift.konveyor.io/vm-id (may be NULL) */
  const char *plan_uid, *migration_uid; /* labels (may be NULL) */
  const char *cpu_request, *memory_request; /* NULL: defaults, e.g. "1", "2Gi" */
  int force_tcg;                            /* env LIBGUESTFS_BACKEND_SETTINGS=force_tcg */
  /* The device-name fix-up before virt-v2v (--fix-device-names), with
   * this block-device mapping (--device NAME=INDEX each; DISK indexes the
   * claims).  As Pallet_convert_options. */
  int fix_device_names;
  const struct Pallet_convert_device *devices;
  size_t ndevices;
};

/* The file the conversion Pod's tool writes its result JSON to (the
 * container's terminationMessagePath), cut to fit Kubernetes' limit. */
#define PALLET_CONVERT_POD_RESULT_FILE "/dev/termination-log"
#define PALLET_CONVERT_POD_RESULT_MAX  4096

/* Returns a new Pod manifest (json_t *) or NULL with *err set (caller frees).
 * The Pod runs "pallet-convert-tool convert --verbose --log - --root first
 * --format raw --work-dir /var/tmp --result-file /dev/termination-log
 * [--tcg] [--fix-device-names --device NAME=INDEX...] /dev/block0 ..." (no
 * shell): qcow2 overlays on the tmp emptyDir, the fix-up, virt-v2v-in-place
 * on the overlays, then the commit, on the claims attached as block
 * devices /dev/block0..N-1 in order.  It carries no credentials, and never
 * restarts. */
json_t *Pallet_convert_pod_manifest (const struct Pallet_convert_pod_options *o, char **err);

/* ---- Building blocks (exposed for tests and other providers) --------- */

/* If LINE is a progress line "[  23.3] Text", sets *ELAPSED and *TEXT (a
 * pointer into LINE) and returns 1; else returns 0. */
int Pallet_convert_parse_step (const char *line, double *elapsed, const char **text);

/* If LINE is "PROG: warning: text" (PROG any virt-v2v tool), returns a
 * pointer to text; else NULL. */
const char *Pallet_convert_parse_warning (const char *line);

/* If LINE is "PROG: error: text", returns a pointer to text; else NULL. */
const char *Pallet_convert_parse_error (const char *line);

/* Maps virt-v2v's error text (the "error:" message and the lines after
 * it; may be NULL) and exit status to an error class and sets *MESSAGE to
 * a message naming DISKS and the fix. */
enum Pallet_convert_error Pallet_convert_map_error (const char *error_text,
                                                    const char *const *disks, size_t ndisks,
                                                    char **message);

/* Writes a minimal libvirt domain XML for -i libvirtxml: one file disk per
 * DISKS[i] (format FORMAT, target vda, vdb, ... on virtio).  Returns 0 or
 * -1 with errno set. */
int Pallet_convert_write_domain_xml (const char *path, const char *name, const char *const *disks,
                                     size_t ndisks, const char *format);

#ifdef __cplusplus
}
#endif

#endif /* PALLET_CONVERT_H */
