/* SPDX-License-Identifier: Apache-2.0 */
/* provider-ec2 internals: the session and helpers shared by the ops. */
#ifndef PALLET_EC2_H
#define PALLET_EC2_H

#include <stdarg.h>
#include <jansson.h>
#include <pallet/provider.h>
#include "pallet-aws.h"

/* Tag keys.  Forklift's keys first, so `aws ec2 describe-snapshots
 * --filters Name=tag:forklift.konveyor.io/vmID,...` finds ours too; the
 * plan and migration UIDs make a rerun find only its own resources. */
#define EC2_TAG_VM_ID       "forklift.konveyor.io/vmID"
#define EC2_TAG_VM_NAME     "forklift.konveyor.io/vm-name"
#define EC2_TAG_VOLUME      "forklift.konveyor.io/volume"
#define EC2_TAG_ORIG_VOLUME "forklift.konveyor.io/original-volume"
#define EC2_TAG_SNAPSHOT    "forklift.konveyor.io/snapshot"
#define EC2_TAG_PLAN        "forklift.konveyor.io/plan"
#define EC2_TAG_MIGRATION   "forklift.konveyor.io/migration"

/* Poll intervals (ms) for the waits; the host sleeps between calls. */
#define EC2_POLL_MIN_MS 2000
#define EC2_POLL_MAX_MS 30000

struct ec2 {
  struct pallet_call *call;   /* the call in progress (for log/cancel) */
  json_t *config;             /* open()'s config, kept for its strings */
  const char *region;         /* source region */
  const char *target_region;  /* == region unless cross-region */
  const char *target_az;      /* "" when not configured */
  const char *target_kms_key; /* KMS key for encrypted volumes in the target, or NULL */
  const char *instance_store; /* "warn" or "error" */
  int cross_account;          /* target credentials given */
  int cross_region;
  char *source_account; /* from STS, lazily */
  char *target_account;
  struct Pallet_aws_config src_cfg, tgt_cfg;
  struct Pallet_aws_client *src; /* source account, source region */
  struct Pallet_aws_client *tgt; /* target account, target region; may == src */
  json_t *itypes;                /* instance type -> facts, cached */
  json_t *source_names; /* instance id -> Name tag (null: none), for validate's name clashes */
  /* Conversion-only plans: where the existing PVCs are listed. */
  const char *kube_api_url; /* setting kube-api-url, or NULL */
  const char *kube_token;   /* Secret kubeToken (never logged), or NULL */
  const char *kube_ca_pem;  /* the Secret's kube-ca.crt (PEM), or NULL */
  int kube_insecure;        /* setting kube-insecure-skip-verify */
  /* Without kube-api-url, in cluster mode: the host's cluster (get_param
   * cluster.*, ABI 1.1), copied at the first call that has it. */
  const char *kube_ca_file, *kube_client_cert_pem, *kube_client_key_pem;
  struct { /* owned copies; kube_api_url etc. point here */
    char *api_url, *token, *ca_pem, *ca_file, *client_cert_pem, *client_key_pem, *source;
  } host_cluster;
  const char *kube_source;   /* "the host's cluster (kubeconfig ...)", or NULL: settings */
  const char *pvc_list_file; /* setting pvc-list-file, or NULL */
  /* The transfer mode, decided once (ec2_copy_mode_wanted). */
  int transfer_mode; /* EC2_MODE_UNDECIDED, -1 bad setting, 0 zero copy, 1 copy */
  char *transfer_why;
  /* The cluster-mode conversion Pod. */
  const char *conversion_image; /* setting conversion-image, or NULL (default) */
  const char *conversion_cpu, *conversion_memory;
  int force_tcg;       /* setting force-tcg */
  int keep_until_boot; /* setting keep-snapshots-until-boot: -1 unset, 0, 1 */
};

/* Per-call setup: remembers call for the AWS callbacks, and adopts the
 * host's cluster when no kube-api-url is set. */
void ec2_begin (struct ec2 *s, struct pallet_call *call);
/* The Kubernetes API client config of kube-api-url or the host's cluster
 * (pointers borrowed from s); NULL api_url: neither. */
struct Pallet_kube_config;
void ec2_kube_config (const struct ec2 *s, struct Pallet_kube_config *kc);
/* The host applies build_vm's objects and runs their Pods (--apply,
 * get_param cluster.apply): copy and conversion happen in the cluster. */
int ec2_cluster_applies (const struct ec2 *s);

/* Reports the last AWS error of client c through host->error and returns
 * its status. */
int ec2_aws_fail (struct ec2 *s, struct Pallet_aws_client *c, const char *what);

/* Parses the per-VM op input; on error reports and returns non-zero. */
struct ec2_input {
  json_t *root;
  json_t *plan, *vm, *state, *options;
  const char *vm_id; /* instance id (vm.id), or NULL if only a name */
  const char *vm_name;
  const char *migration_uid;
  const char *plan_uid; /* plan.uid, or plan.name */
  int rollback, succeeded;
};
int ec2_input_parse (struct ec2 *s, const char *op, const char *input_json, struct ec2_input *in);
void ec2_input_free (struct ec2_input *in);

/* Emits state (a new reference is NOT taken). */
int ec2_emit_state (struct ec2 *s, json_t *state);
int ec2_emit_item (struct ec2 *s, json_t *item); /* steals item */
/* inventory-mtv.c: kubectl-mtv's kind names (ec2-instance...) to ours,
 * and the AWS object's PascalCase fields added to an item. */
const char *ec2_inventory_kind (const char *kind);
void ec2_mtv_fields (json_t *item, const json_t *raw, const char *const *optional);

/* The source and target account ids (STS), cached. */
int ec2_source_account (struct ec2 *s, const char **out);
int ec2_target_account (struct ec2 *s, const char **out);

/* Describes one instance by id, or by Name tag when id is NULL.
 * *out: new reference.  Returns a pallet status. */
int ec2_describe_instance (struct ec2 *s, const char *id, const char *name, json_t **out);

/* Instance type facts {vcpus, memoryMiB, instanceStoreGiB, bootModes[]}:
 * borrowed from the cache. */
int ec2_instance_type (struct ec2 *s, const char *type, const json_t **out);

/* The facts the other steps need, from a DescribeInstances item. */
json_t *ec2_instance_facts (const json_t *inst, const json_t *itype);
/* "On", "Off" or "Unknown" from an EC2 state name. */
const char *ec2_power_state (const char *state_name);

/* The next poll interval of a wait, counted in state[counter]. */
uint32_t ec2_poll_ms (json_t *state, const char *counter);
/* The same from MIN_MS (warm waits start faster: at cutover it is downtime). */
uint32_t ec2_poll_ms_from (json_t *state, const char *counter, uint32_t min_ms);

/* Deterministic ClientToken (<= 64 chars) from the migration and a key, so a
 * re-run of the same step after a crash is the same request to AWS. */
void ec2_client_token (const char *migration_uid, const char *key, char out[65]);

/* Tag spec with the plan's identity tags plus extra. */
int ec2_add_tags (struct Pallet_aws_params *p, const char *resource_type,
                  const struct ec2_input *in, const struct Pallet_aws_tag *extra, size_t nextra);

/* The ops. */
pallet_validate_fn ec2_validate;
pallet_inventory_fn ec2_inventory;
pallet_prepare_source_fn ec2_prepare_source;
pallet_transfer_fn ec2_transfer;
pallet_convert_fn ec2_convert;
pallet_build_vm_fn ec2_build_vm;
pallet_cleanup_fn ec2_cleanup;

/* Copy transfer mode (copy_mode.c).  1: copy, 0: zero-copy, -1: bad
 * transfer-mode setting (*why is the message, with a did-you-mean);
 * *why (borrowed from the session) says what decided. */
#define EC2_MODE_UNDECIDED (-9)
int ec2_copy_mode_wanted (struct ec2 *s, const json_t *plan, const char **why);
/* Copies the completed snapshots into raw files; sets state.transferred. */
int ec2_copy_volumes (struct ec2 *s, const struct ec2_input *in, json_t *state, json_t *vols);
/* Removes the volumes' localPath files (and journals); emits cleanup items. */
void ec2_copy_remove_files (struct ec2 *s, const char *vm, json_t *vols);
/* Cluster mode: appends the copy Pod (stage copy) and, unless setting
 * copy-service-account is set, the Secret of its AWS credentials (stage
 * storage, in the target namespace) to manifests.  Returns a pallet
 * status (reported). */
int ec2_copy_pod_items (struct ec2 *s, const struct ec2_input *in, json_t *manifests);
/* The images of the Pods: what packaging/images builds, tagged with the
 * project's version (PALLET_IMAGE_TAG), under localhost/ until pushed. */
#define EC2_COPY_DEFAULT_IMAGE "localhost/pallet-ebs-copy:" PALLET_IMAGE_TAG

/* Conversion-only plans (conversion.c). */
int ec2_plan_is_conversion (const json_t *plan);
/* Lists the PVCs of the target namespace (Kubernetes API or
 * pvc-list-file) into items.  Returns a pallet status; on error *msg
 * (malloc'd) names the setting, the problem and the fix. */
int ec2_list_pvcs (struct ec2 *s, const char *ns, const char *vm_id, json_t *items, char **msg);
/* The ops' entries: conversion-only plans skip what touches AWS, other
 * plans go to ec2_prepare_source, ec2_transfer and ec2_convert. */
pallet_prepare_source_fn ec2_prepare_source_entry;
pallet_transfer_fn ec2_transfer_entry;
pallet_convert_fn ec2_convert_entry;
/* The conversion Pod for build_vm (new reference), or NULL when there is
 * none to run (conversion done locally or skipped).  *err on failure. */
json_t *ec2_conversion_pod (struct ec2 *s, const struct ec2_input *in, const json_t *manifests,
                            char **err);
/* The device-name fix-up's inputs, one source for the local conversion
 * and the conversion Pod: the setting fix-device-names (default true),
 * and the block-device mapping of state.volumes[] (deviceName by
 * diskIndex) for N disks (calloc'd, free it; NULL when out of memory). */
struct Pallet_convert_device;
int ec2_wants_fixup (const struct ec2 *s);
struct Pallet_convert_device *ec2_device_map (const json_t *vols, size_t n);

/* JSON helpers. */
const char *ec2_str (const json_t *o, const char *key); /* "" if missing */
long long ec2_int (const json_t *o, const char *key, long long def);
int ec2_bool (const json_t *o, const char *key); /* "true"/true */
size_t ec2_edit_distance (const char *a, const char *b);

#endif
