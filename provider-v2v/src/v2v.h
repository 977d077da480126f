/* SPDX-License-Identifier: Apache-2.0 */
/* provider-v2v internals: the session and what the ops share.  One code
 * base serves four Provider types; each module (module-TYPE.c) is the
 * vtable of one type. */
#ifndef PALLET_V2V_H
#define PALLET_V2V_H

#include <jansson.h>
#include <pallet/provider.h>
#include "pallet-v2v-driver.h"

enum v2v_type { V2V_VSPHERE = 1, V2V_OVA, V2V_XEN, V2V_DISK };

struct v2v {
  struct pallet_call *call;    /* the call in progress */
  int type;                    /* enum v2v_type */
  const char *type_name;       /* "vsphere", "ova", "xen", "disk" */
  json_t *config;              /* open()'s config: owns the strings below */
  int input;                   /* PALLET_V2V_IN_* */
  const char *user, *password; /* Secret user/password (never logged) */
  int insecure;                /* Secret insecureSkipVerify */
  const char *thumbprint;      /* Secret thumbprint (VDDK) */
  char *uri;                   /* vpx/esx/xen: the libvirt URI */
  const char *path;            /* ova/disk: the directory or file of the url */
  int transport;               /* PALLET_V2V_HTTPS or PALLET_V2V_VDDK */
  const char *vddk_libdir, *vddk_config;
  const char *output_dir; /* setting output-dir, or NULL: <work.dir>/v2v */
  const char *virt_v2v;   /* setting virt-v2v: the program */
  unsigned timeout_s;     /* setting v2v-timeout */
  int power_off;          /* setting power-off (vsphere): power a running VM off */
  json_t *advisories;     /* open-time notes for validate (strings) */
  /* Conversion-only plans (vsphere): where the PVCs are listed from and
   * where their devices are on this host. */
  const char *kube_api_url, *kube_token, *kube_ca_pem;
  int kube_insecure;
  const char *pvc_list_file, *pvc_device_dir;
  const char *virt_v2v_in_place; /* setting virt-v2v-in-place: the program */
};

struct v2v_input {
  json_t *root, *plan, *vm, *state, *options;
  const char *key; /* vm.name, else vm.id: what the source knows it by */
  const char *migration_uid;
  int rollback;
};

int v2v_input_parse (struct v2v *s, const char *op, const char *json, struct v2v_input *in);
void v2v_input_free (struct v2v_input *in);
int v2v_emit (struct v2v *s, int kind, const json_t *obj);
const char *v2v_str (const json_t *o, const char *k); /* "" if missing */

/* The source VM's facts (see kubevirt/README.md): from libvirt for
 * vsphere/xen, from the file for ova/disk.  Returns a pallet status; on
 * error *err (malloc'd) says why. */
int v2v_source_facts (struct v2v *s, const char *key, json_t **facts, char **err);
/* The ova/disk file for a VM name, or NULL (malloc'd). */
char *v2v_source_file (struct v2v *s, const char *key);
/* The per-VM output directory (malloc'd), or NULL after pallet_error. */
char *v2v_vm_dir (struct v2v *s, const char *vmname);

/* Runs argv (prog: "virt-v2v" or "virt-v2v-in-place", what: its input)
 * in dir with the journal there, progress and logs to the host, its
 * output in dir/PROG.log, cancel and the timeout.  A pallet status, after
 * pallet_error. */
int v2v_run_logged (struct v2v *s, const char *key, char *const *argv, const char *dir,
                    const char *prog, const char *what);
/* Emits the manifests of vmi (virt-v2v's YAML, or one made from the
 * source's facts) and the state; claims: the existing PVCs, or NULL. */
int v2v_build_from (struct v2v *s, const struct v2v_input *in, const json_t *vmi,
                    const json_t *outputs, const json_t *claims);

/* ---- Conversion-only plans (conversion.c) ---- */

int v2v_is_conversion (const json_t *plan);
/* A finding of validate: type, the field to fix (or NULL), the message. */
typedef void (*v2v_finding_fn) (void *opaque, const char *type, const char *field, const char *msg);
/* The PVCs that hold the disks of facts, in disk order ("pvcName",
 * "path", "block", "sizeBytes"), into *claims; what stands in the way
 * through fn (or, with fn NULL, as the error).  A pallet status: not OK
 * when the PVCs could not be listed at all (transient) or, with fn NULL,
 * when anything stands in the way. */
int v2v_conversion_claims (struct v2v *s, const struct v2v_input *in, const json_t *facts,
                           json_t **claims, v2v_finding_fn fn, void *opaque);
int v2v_conversion_prepare (struct v2v *s, struct v2v_input *in);
int v2v_conversion_transfer (struct v2v *s, struct v2v_input *in);
int v2v_conversion_convert (struct v2v *s, struct v2v_input *in);
int v2v_conversion_build (struct v2v *s, struct v2v_input *in);

void *v2v_open (struct pallet_call *call, const char *config_json, int type);
pallet_close_fn v2v_close;
pallet_validate_fn v2v_validate;
pallet_inventory_fn v2v_inventory;
pallet_prepare_source_fn v2v_prepare_source;
pallet_transfer_fn v2v_transfer;
pallet_convert_fn v2v_convert;
pallet_build_vm_fn v2v_build_vm;
pallet_cleanup_fn v2v_cleanup;

#define V2V_CAPS (PALLET_CAP_COLD_MIGRATION | PALLET_CAP_COPY | PALLET_CAP_GUEST_CONVERSION)

/* The settings every type takes, and the vSphere ones on top. */
#define V2V_COMMON_SETTINGS                                                      \
  { "output-dir", PALLET_SETTING_STRING, NULL,                                   \
    "where virt-v2v writes each VM's disks and YAML (default <work.dir>/v2v)" }, \
      { "v2v-timeout", PALLET_SETTING_INT, "14400",                              \
        "seconds one virt-v2v run may take before it is stopped" },              \
  {                                                                              \
    "virt-v2v", PALLET_SETTING_STRING, "virt-v2v", "the virt-v2v program"        \
  }
#define V2V_VSPHERE_SETTINGS                                                                               \
  { "sdkEndpoint", PALLET_SETTING_STRING, "vcenter", "vcenter (vpx://) or esxi (esx://)" },                \
      { "host-path", PALLET_SETTING_STRING, NULL,                                                          \
        "vCenter: the host's inventory path DATACENTER/[CLUSTER/]HOST" },                                  \
      { "transport", PALLET_SETTING_STRING, "https",                                                       \
        "https (nbdkit-curl) or vddk (nbdkit-vddk-plugin + VMware's VDDK)" },                              \
      { "vddk-libdir", PALLET_SETTING_STRING, NULL,                                                        \
        "VDDK: the unpacked vmware-vix-disklib-distrib" },                                                 \
      { "vddk-config", PALLET_SETTING_STRING, NULL, "VDDK: a vddk config file" },                          \
      { "kube-api-url", PALLET_SETTING_STRING, NULL,                                                       \
        "conversion-only plans: the Kubernetes API that lists the PVCs (Secret kubeToken, kube-ca.crt)" }, \
      { "kube-insecure-skip-verify", PALLET_SETTING_BOOL, "false",                                         \
        "conversion-only plans: do not verify the Kubernetes API's certificate" },                         \
      { "pvc-list-file", PALLET_SETTING_STRING, NULL,                                                      \
        "conversion-only plans, offline: a file holding kubectl get pvc -n NS -o json" },                  \
      { "pvc-device-dir", PALLET_SETTING_STRING, NULL,                                                     \
        "conversion-only plans: the directory where each PVC's device (or file) is, as DIR/<pvc name>" },  \
      { "virt-v2v-in-place", PALLET_SETTING_STRING, "virt-v2v-in-place",                                   \
        "conversion-only plans: the virt-v2v-in-place program" },                                          \
      { "power-off", PALLET_SETTING_BOOL, "true",                                                          \
        "power a running VM off for the copy, and on again if the migration rolls back" },                 \
  {                                                                                                        \
    "vddkInitImage", PALLET_SETTING_STRING, NULL,                                                          \
        "Forklift's VDDK image (cluster mode); not used here"                                              \
  }

/* Each module: the vtable of one Provider type. */
#define V2V_MODULE(tname, ttype, desc, settings_array)                                            \
  static void *v2v_open_type (struct pallet_call *call, const char *config_json)                  \
  {                                                                                               \
    return v2v_open (call, config_json, ttype);                                                   \
  }                                                                                               \
  PALLET_PROVIDER_DEFINE (                                                                        \
      v2v_provider, .name = tname, .version = "0.1.0", .description = desc,                       \
      .thread_model = PALLET_THREAD_MODEL_SERIALIZE_PER_HANDLE, .cancel_bound_ms = 6000,          \
      .capabilities = V2V_CAPS, .open = v2v_open_type, .close = v2v_close,                        \
      .validate = v2v_validate, .inventory = v2v_inventory, .prepare_source = v2v_prepare_source, \
      .transfer = v2v_transfer, .convert = v2v_convert, .build_vm = v2v_build_vm,                 \
      .cleanup = v2v_cleanup, .settings = settings_array)

#endif
