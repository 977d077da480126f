/* SPDX-License-Identifier: Apache-2.0 */
/* The driver's run and per-VM records, shared by driver.c and the
 * cluster mode (apply.c). */
#ifndef PALLET_DRIVER_H
#define PALLET_DRIVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <jansson.h>
#include "internal.h"

enum { STEP_OK, STEP_FAILED, STEP_CANCELLED, STEP_IOERR };

struct Pallet_cluster;

struct driver {
  struct pallet_module *m;
  const char *config;
  json_t *plan;
  const char *plan_name;
  char *state_dir;
  char *work_dir;
  char *output_dir;     /* build_vm manifests, one dir per VM */
  char *uid;            /* migrationUID */
  char *marker;         /* cancel marker path */
  char *cutover_marker; /* `pallet cutover` writes it */
  int64_t plan_cutover; /* the plan's cutover time, or -1 */
  struct pallet_migrate_options o;
  struct pallet_cancel own; /* raised by the cancel marker */
  int mode;
  struct pallet_session *shared;
  struct Pallet_sink *sink; /* the caller's on_event */
  pthread_mutex_t mu;       /* next, counters */
  size_t next, n_vms;
  int n_ok, n_failed, n_cancelled, n_ioerr, n_open_failed;
  atomic_int done;
  struct Pallet_cluster *cluster; /* cluster mode: where to apply, or NULL */
};

struct vmrun {
  struct driver *d;
  struct pallet_session *s;
  json_t *vm; /* borrowed from the plan */
  const char *id, *name;
  char *path;
  json_t *doc;
};

/* driver.c, for apply.c */
PALLET_HIDDEN void Pallet_drv_event (struct vmrun *v, const char *what, const char *step,
                                     const char *status, const char *msg, json_t *extra);
/* Sleeps ms unless the run is cancelled (for a rollback: cancelled twice). */
PALLET_HIDDEN void Pallet_drv_nap (struct vmrun *v, unsigned ms, int rollback);
PALLET_HIDDEN int Pallet_drv_cancelled (struct vmrun *v, int rollback);
PALLET_HIDDEN int Pallet_drv_save (struct vmrun *v);
/* The directory of the VM's manifests (malloc'd). */
PALLET_HIDDEN char *Pallet_drv_manifest_dir (struct vmrun *v);

/* apply.c: cluster mode */
/* Where the run applies (options, the plan's targetNamespace, the
 * destination Provider); NULL with *errmsg. */
PALLET_HIDDEN struct Pallet_cluster *Pallet_cluster_open (const struct pallet_migrate_options *o,
                                                          const json_t *plan, char **errmsg);
/* 1 if the destination Provider (its config JSON) names a remote cluster. */
PALLET_HIDDEN int Pallet_cluster_remote (const char *dest_json);
PALLET_HIDDEN void Pallet_cluster_close (struct Pallet_cluster *c);
/* Can this run reach the cluster, find the namespace and create Pods
 * there?  NULL, or a finding (category, type, field, message). */
PALLET_HIDDEN json_t *Pallet_cluster_preflight (struct Pallet_cluster *c);
/* The stage order of a build_vm item, 1 (storage) .. 5 (the
 * VirtualMachine), or 0 with *errmsg for an unknown stage label. */
PALLET_HIDDEN int Pallet_cluster_stage_rank (const json_t *obj, const char **stage, char **errmsg);
/* Applies the VM's manifests stage by stage, waiting for its Pods. */
PALLET_HIDDEN int Pallet_cluster_apply_vm (struct vmrun *v);
/* boot.c: after the VM (vm, its manifest) was started, waits for its
 * guest to boot and records cluster.boot in rec; STEP_FAILED only when
 * the VM's pallet.dev/verify-boot is true and it did not boot. */
struct Pallet_kube;
PALLET_HIDDEN int Pallet_cluster_boot (struct vmrun *v, struct Pallet_kube *k, const json_t *vm,
                                       const char *ns, unsigned wait_s, json_t *rec, char **errmsg);
/* Creates a hook's ConfigMap and Pod (objs), waits up to wait_s for the
 * Pod (limit names the bound in messages), records rec.status
 * succeeded (saved), then deletes them.  The
 * failure, with the Pod's log tail, is in *errmsg and cluster.failure. */
PALLET_HIDDEN int Pallet_cluster_run_hook (struct vmrun *v, const json_t *objs, const char *stage,
                                           unsigned wait_s, const char *limit, json_t *rec,
                                           char **errmsg);
/* hooks.c: the VM's hook for step ("PreHook", "PostHook"), rendered,
 * written with its manifests and run (cluster mode, --run-hooks-locally)
 * unless it succeeded in an earlier run.  STEP_OK when there is none or
 * it succeeded or was only rendered; STEP_FAILED with doc.error set. */
PALLET_HIDDEN int Pallet_hook_run (struct vmrun *v, const char *step);
/* hooks.c: the VM's hook entry (vms[].hooks[]) for step, or NULL. */
PALLET_HIDDEN const json_t *Pallet_hook_find (struct vmrun *v, const char *step);
/* apply.c: the start of the last n lines of text. */
PALLET_HIDDEN const char *Pallet_last_lines (const char *text, int n);
/* Deletes what the VM's runs made in the cluster; 0 when all is gone. */
PALLET_HIDDEN int Pallet_cluster_rollback_vm (struct vmrun *v);

#endif
