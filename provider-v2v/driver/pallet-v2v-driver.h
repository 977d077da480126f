/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_v2v_driver: runs virt-v2v for every input Pallet supports.
 *
 * argv building (vpx/esx over HTTPS or VDDK, OVA, Xen over SSH, local
 * disks; always `-o kubevirt --machine-readable`), the password file,
 * posix_spawn into a process group of its own, progress from virt-v2v's
 * messages, cancellation and timeouts that kill the whole group, and a
 * run journal in the output directory so a host killed with -9 neither
 * leaves virt-v2v running nor redoes a conversion that finished.
 * No global state; never prints. */
#ifndef PALLET_V2V_DRIVER_H
#define PALLET_V2V_DRIVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

enum pallet_v2v_input {
  PALLET_V2V_IN_VPX = 1, /* -ic vpx://user@vcenter/DC/[CLUSTER/]HOST */
  PALLET_V2V_IN_ESX,     /* -ic esx://user@esxi/ */
  PALLET_V2V_IN_OVA,     /* -i ova FILE */
  PALLET_V2V_IN_XEN,     /* -ic xen+ssh://user@dom0 */
  PALLET_V2V_IN_DISK     /* -i disk FILE... */
};

enum pallet_v2v_transport {
  PALLET_V2V_HTTPS = 0, /* vpx/esx: nbdkit-curl over the datastore file service */
  PALLET_V2V_VDDK = 1   /* vpx/esx: -it vddk (nbdkit-vddk-plugin + VMware's VDDK) */
};

struct pallet_v2v_source {
  int input;                   /* enum pallet_v2v_input */
  int transport;               /* enum pallet_v2v_transport; vpx/esx only */
  const char *uri;             /* vpx/esx/xen: the libvirt URI (pallet_v2v_uri) */
  const char *guest;           /* vpx/esx/xen: the guest's name */
  const char *password_file;   /* vpx/esx/xen: -ip FILE (pallet_v2v_password_file), or NULL */
  const char *vddk_libdir;     /* VDDK: -io vddk-libdir= */
  const char *vddk_thumbprint; /* VDDK: -io vddk-thumbprint= (required by 2.2.0) */
  const char *vddk_config;     /* VDDK: -io vddk-config= or NULL */
  const char *ova;             /* OVA: the .ova file or directory */
  const char *const *disks;    /* disk: the images */
  size_t ndisks;
  const char *disk_format; /* disk: -if raw|qcow2, or NULL to detect */
};

struct pallet_v2v_output {
  const char *dir;    /* -os DIR: disks NAME-sdX and NAME.yaml */
  const char *name;   /* -on NAME (a DNS-1123 label) */
  const char *format; /* -of raw|qcow2, NULL: raw */
  const char *alloc;  /* -oa sparse|preallocated, NULL: sparse */
};

/* The argv (NULL-terminated, malloc'd; free with pallet_v2v_argv_free) for
 * `virt-v2v` (program argv[0] = prog).  NULL with *err (malloc'd) naming
 * the missing or bad field and the fix. */
char **pallet_v2v_argv (const char *prog, const struct pallet_v2v_source *src,
                        const struct pallet_v2v_output *out, const char *const *extra, char **err);
void pallet_v2v_argv_free (char **argv);

/* A libvirt URI for virt-v2v's -ic, or NULL with *err.
 *   vpx: vpx://USER@SERVER[:PORT]/PATH[?no_verify=1]  (PATH = DC/[CLUSTER/]HOST)
 *   esx: esx://USER@SERVER[:PORT]/[?no_verify=1]
 *   xen: xen+ssh://USER@SERVER[:PORT]
 * The user is percent-encoded (DOMAIN\user becomes DOMAIN%5cuser) and
 * PATH's items too (a space becomes %20).  no_verify only when insecure. */
char *pallet_v2v_uri (int input, const char *user, const char *server, int port, const char *path,
                      int insecure, char **err);

/* Writes password to a new mode-0600 file in dir and returns its path
 * (malloc'd), or NULL with errno.  Remove it with pallet_v2v_remove_file
 * as soon as virt-v2v has ended. */
char *pallet_v2v_password_file (const char *dir, const char *password);
void pallet_v2v_remove_file (char *path); /* unlinks and frees; NULL ok */

/* What virt-v2v said, as it ran. */
enum pallet_v2v_event_kind {
  PALLET_V2V_EV_MESSAGE = 1, /* a phase: "Opening the source", "Copying disk 1/2" */
  PALLET_V2V_EV_WARNING,
  PALLET_V2V_EV_ERROR,
  PALLET_V2V_EV_INFO,
  PALLET_V2V_EV_PROGRESS /* done/total of the disk being copied */
};
struct pallet_v2v_event {
  int kind;
  const char *text;     /* MESSAGE/WARNING/ERROR/INFO */
  int disk, disks;      /* 1-based disk being copied, 0 before the copy */
  uint64_t done, total; /* PROGRESS */
};

struct pallet_v2v_run_opts {
  unsigned timeout_s;     /* 0: none */
  unsigned kill_grace_ms; /* SIGTERM to SIGKILL; 0: 5000 */
  int (*cancelled) (void *opaque);
  void *cancel_opaque;
  void (*event) (void *opaque, const struct pallet_v2v_event *ev);
  void *event_opaque;
  const char *log_path;    /* every line of stdout/stderr appended, or NULL */
  const char *journal_dir; /* where the run journal lives (the -os dir), or NULL */
};

enum pallet_v2v_outcome {
  PALLET_V2V_OK = 0,
  PALLET_V2V_FAILED, /* non-zero exit or a signal */
  PALLET_V2V_CANCELLED,
  PALLET_V2V_TIMEOUT,
  PALLET_V2V_SPAWN /* could not start (errno in sys_errno) */
};
struct pallet_v2v_result {
  int outcome;     /* enum pallet_v2v_outcome */
  int exit_status; /* exit code, or 128+signal */
  int sys_errno;
  char error[512]; /* virt-v2v's last "error:" text, or why it did not run */
  double seconds;
};

/* Runs argv (argv[0] is looked up in PATH) in a new process group, stdin
 * /dev/null, the caller's environment.  Blocks until it ends, polling
 * cancelled() every 200 ms. */
void pallet_v2v_run (char *const argv[], const struct pallet_v2v_run_opts *o,
                     struct pallet_v2v_result *res);

/* What carries over from line to line. */
struct pallet_v2v_lines {
  int disk, disks; /* from "Copying disk N/M" */
  int json;        /* JSON messages seen: the "[ t] ..." copies are skipped */
};
/* Parses one line of virt-v2v output (a --machine-readable JSON message,
 * a "[  12.3] Phase" line, a "virt-v2v: error: ..." line or an "N/M"
 * progress line) into ev.  Returns 1 if ev was filled.  ev->text points
 * into line, which is modified. */
int pallet_v2v_parse_line (char *line, struct pallet_v2v_event *ev, struct pallet_v2v_lines *st);

/* ---- The run journal (DIR/.pallet-v2v-run.json) ---- */

/* Kills a virt-v2v process group a killed host left running in dir
 * (same pid and start time as recorded) and forgets it.  Returns 1 if one
 * was killed, 0 if none, -1 on error. */
int pallet_v2v_reap_stale (const char *dir);
/* Marks the conversion in dir finished, with what it produced (a JSON
 * object: the disks and the YAML).  0 or -1 with errno. */
int pallet_v2v_mark_done (const char *dir, const json_t *outputs);
/* The outputs of a finished conversion in dir (new reference), or NULL if
 * it never finished (no journal, a run in progress, or files gone). */
json_t *pallet_v2v_finished (const char *dir);

/* The nbdkit plugin directory has a vddk plugin?  1 yes, 0 no. */
int pallet_v2v_have_nbdkit_plugin (const char *name);

#endif
