/* SPDX-License-Identifier: Apache-2.0 */
/* Cluster mode: the Pod that converts a VM's PVCs in place.
 *
 * Shaped after Forklift's conversion pod in in-place mode (EC2): block
 * PVCs attached as /dev/block<i> in disk order, virt-v2v-in-place -v -x
 * --root first on them, restartPolicy Never, non-root (qemu 107) with
 * every capability dropped.  Differences, on purpose: no shell and no
 * Secret at all (in-place conversion needs no credentials); the format
 * is raw so a guest cannot make its raw disk probe as qcow2; the devices
 * are passed directly instead of through symlinks; and virt-v2v runs under
 * pallet-convert-tool convert, as it does on the host: qcow2 overlays on
 * the tmp emptyDir take every write until the conversion succeeded, the
 * device-name fix-up (/dev/nvme0n1p1, /dev/xvda1 in fstab and GRUB) runs
 * on them first, and the result (rewrites included) goes to the
 * termination message, which the host records in the VM state.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pallet-convert.h"

#define DEFAULT_CPU    "1"
#define DEFAULT_MEMORY "2Gi"
/* virt-v2v wants 1 GiB free in TMPDIR, and the qcow2 overlays sit there
 * too: they hold only what the fix-up and the conversion write (a new
 * initramfs, the rewritten configs), not the disks' size.  2 GiB is
 * meant to cover both; the overlays' size on the test guests is not
 * measured yet. */
#define TMP_SIZE "2Gi"
#define TOOL     "pallet-convert-tool"
#define TMP_DIR  "/var/tmp"
#define QEMU_UID 107 /* the qemu user of Forklift's image */

static json_t *pod_fail (char **err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static json_t *
pod_fail (char **err, const char *fmt, ...)
{
  va_list ap;

  if (err) {
    va_start (ap, fmt);
    if (vasprintf (err, fmt, ap) < 0)
      *err = NULL;
    va_end (ap);
  }
  return NULL;
}

static int
lower_alnum (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int
any_alnum (char c)
{
  return lower_alnum (c) || (c >= 'A' && c <= 'Z');
}

/* DNS-1123 label (MAX 63) or subdomain (dots allowed, MAX 253). */
static int
is_dns1123 (const char *s, size_t max, int dots)
{
  size_t n = s ? strlen (s) : 0;

  if (n == 0 || n > max || !lower_alnum (s[0]) || !lower_alnum (s[n - 1]))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!lower_alnum (s[i]) && s[i] != '-' && !(dots && s[i] == '.'))
      return 0;
  return 1;
}

/* A non-empty Kubernetes label value. */
static int
is_label_value (const char *s)
{
  size_t n = strlen (s);

  if (n == 0 || n > 63 || !any_alnum (s[0]) || !any_alnum (s[n - 1]))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!any_alnum (s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
      return 0;
  return 1;
}

/* A positive resource.Quantity: DIGITS[.DIGITS] and an optional suffix. */
static int
is_quantity (const char *s)
{
  static const char *const suffixes[] = {
    "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
  };
  const char *p = s;
  int digits = 0, nonzero = 0;

  for (; *p >= '0' && *p <= '9'; p++, digits++)
    nonzero |= *p != '0';
  if (*p == '.')
    for (p++; *p >= '0' && *p <= '9'; p++, digits++)
      nonzero |= *p != '0';
  if (digits == 0 || !nonzero || strlen (s) > 32)
    return 0;
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
    if (strcmp (p, suffixes[i]) == 0)
      return 1;
  return 0;
}

/* A container image reference: printable, no spaces, bounded. */
static int
is_image (const char *s)
{
  size_t n = strlen (s);

  if (n == 0 || n > 1024)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char) s[i] <= ' ' || (unsigned char) s[i] >= 0x7f)
      return 0;
  return 1;
}

static char *
check_options (const struct Pallet_convert_pod_options *o)
{
  char *m = NULL;
  int r = 0;

#define BAD(...)                    \
  do {                              \
    r = asprintf (&m, __VA_ARGS__); \
    goto out;                       \
  } while (0)
  if (o == NULL)
    BAD ("conversion pod: no options were given; pass a filled "
         "struct Pallet_convert_pod_options");
  if (!is_dns1123 (o->name, 253, 1))
    BAD ("conversion pod: the name \"%s\" is not a DNS-1123 subdomain; use "
         "at most 253 lowercase letters, digits, '-' and '.', starting and "
         "ending with a letter or digit",
         o->name ? o->name : "(null)");
  if (!is_dns1123 (o->namespace_, 63, 0))
    BAD ("conversion pod %s: the namespace \"%s\" is not a DNS-1123 label; "
         "use at most 63 lowercase letters, digits and '-'",
         o->name, o->namespace_ ? o->namespace_ : "(null)");
  if (o->image && !is_image (o->image))
    BAD ("conversion pod %s: the image \"%s\" is not an image reference "
         "(empty, too long, or has spaces or control characters); give a "
         "reference like %s, or NULL for that default",
         o->name, o->image, PALLET_CONVERT_DEFAULT_IMAGE);
  if (o->nclaims == 0 || o->claims == NULL)
    BAD ("conversion pod %s: no PersistentVolumeClaims were given; pass the "
         "VM's disk PVCs in disk order, boot disk first",
         o->name);
  if (o->nclaims > PALLET_CONVERT_POD_MAX_DISKS)
    BAD ("conversion pod %s: %zu PersistentVolumeClaims are more than the "
         "%d disks one conversion takes; convert a VM with at most %d disks",
         o->name, o->nclaims, PALLET_CONVERT_POD_MAX_DISKS, PALLET_CONVERT_POD_MAX_DISKS);
  for (size_t i = 0; i < o->nclaims; i++) {
    if (!is_dns1123 (o->claims[i], 253, 1))
      BAD ("conversion pod %s: claim %zu, \"%s\", is not a valid "
           "PersistentVolumeClaim name (DNS-1123 subdomain); pass the PVC's "
           "metadata.name",
           o->name, i, o->claims[i] ? o->claims[i] : "(null)");
    for (size_t j = 0; j < i; j++)
      if (strcmp (o->claims[i], o->claims[j]) == 0)
        BAD ("conversion pod %s: the PersistentVolumeClaim \"%s\" is given "
             "twice (disks %zu and %zu); pass each disk's PVC once",
             o->name, o->claims[i], j, i);
  }
  if (o->zone && !is_label_value (o->zone))
    BAD ("conversion pod %s: the zone \"%s\" is not a valid label value for "
         "topology.kubernetes.io/zone; pass the zone name (e.g. us-east-1a) "
         "or NULL for no node selector",
         o->name, o->zone);
  {
    const char *const lv[][2] = {
      { "vm_id", o->vm_id },
      { "plan_uid", o->plan_uid },
      { "migration_uid", o->migration_uid },
    };
    for (size_t i = 0; i < 3; i++)
      if (lv[i][1] && *lv[i][1] && !is_label_value (lv[i][1]))
        BAD ("conversion pod %s: %s \"%s\" is not a valid label value; use "
             "at most 63 letters, digits, '-', '_' and '.', or NULL",
             o->name, lv[i][0], lv[i][1]);
  }
  if (o->cpu_request && !is_quantity (o->cpu_request))
    BAD ("conversion pod %s: the CPU request \"%s\" is not a positive "
         "quantity; use e.g. \"1\" or \"500m\", or NULL for %s",
         o->name, o->cpu_request, DEFAULT_CPU);
  if (o->ndevices > 0 && o->devices == NULL)
    BAD ("conversion pod %s: %zu devices but no device map; pass the "
         "block-device mapping or ndevices 0",
         o->name, o->ndevices);
  for (size_t i = 0; i < o->ndevices; i++) {
    const char *d = o->devices[i].name;
    /* An empty name: the volume has no mapping entry; the fix-up then
     * knows it by its position. */
    if (d && *d && (!is_image (d) || strchr (d, '=') || strlen (d) > 64))
      BAD ("conversion pod %s: device %zu, \"%s\", is not a device name; pass "
           "the block-device mapping's name (e.g. /dev/xvda, /dev/sdf)",
           o->name, i, d);
    if (o->devices[i].disk >= o->nclaims)
      BAD ("conversion pod %s: device %s is disk %zu of %zu claims; give each "
           "device the index of its claim",
           o->name, d ? d : "(null)", o->devices[i].disk, o->nclaims);
  }
  if (o->memory_request && !is_quantity (o->memory_request))
    BAD ("conversion pod %s: the memory request \"%s\" is not a positive "
         "quantity; use e.g. \"2Gi\", or NULL for %s",
         o->name, o->memory_request, DEFAULT_MEMORY);
  return NULL;
#undef BAD
out:
  return r < 0 ? strdup ("conversion pod: out of memory") : m;
}

/* json_pack with "s" never takes NULL: the options are checked first. */
static json_t *
env_var (const char *name, const char *value)
{
  return json_pack ("{s:s, s:s}", "name", name, "value", value);
}

static json_t *
build_labels (const struct Pallet_convert_pod_options *o)
{
  /* The stage label of the build_vm contract (docs/ops/build_vm.md). */
  json_t *l = json_pack ("{s:s,s:s}", "app", "pallet-convert", "pallet.dev/stage", "convert");

  if (l == NULL)
    return NULL;
  if (o->vm_id && *o->vm_id) {
    json_object_set_new (l, "forklift.konveyor.io/vm-id", json_string (o->vm_id));
    json_object_set_new (l, "vmID", json_string (o->vm_id));
  }
  if (o->plan_uid && *o->plan_uid)
    json_object_set_new (l, "plan", json_string (o->plan_uid));
  if (o->migration_uid && *o->migration_uid)
    json_object_set_new (l, "migration", json_string (o->migration_uid));
  return l;
}

static int
add_arg (json_t *cmd, const char *a)
{
  return json_array_append_new (cmd, json_string (a));
}

/* pallet-convert-tool convert and its options, up to the disks.  Its
 * lines and virt-v2v's (--log -) go to the container's log, its last
 * error line ("pallet-convert-tool: error (CLASS): ... (virt-v2v-in-place
 * said: ...)") is what the host reports. */
static json_t *
tool_command (const struct Pallet_convert_pod_options *o)
{
  json_t *cmd = json_pack ("[s,s,s,s,s,s,s,s,s,s,s,s,s]", TOOL, "convert", "--verbose", "--log",
                           "-", "--root", "first", "--format", "raw", "--work-dir", TMP_DIR,
                           "--result-file", PALLET_CONVERT_POD_RESULT_FILE);
  int e = cmd == NULL;

  if (!e && o->force_tcg)
    e |= add_arg (cmd, "--tcg");
  if (!e && o->fix_device_names) {
    e |= add_arg (cmd, "--fix-device-names");
    for (size_t i = 0; !e && i < o->ndevices; i++) {
      char *a = NULL;
      if (!o->devices[i].name || !*o->devices[i].name)
        continue;
      e |= asprintf (&a, "%s=%zu", o->devices[i].name, o->devices[i].disk) < 0;
      if (!e)
        e |= add_arg (cmd, "--device") | add_arg (cmd, a);
      free (a);
    }
  }
  if (e) {
    json_decref (cmd);
    return NULL;
  }
  return cmd;
}

/* command, volumeDevices and volumes, one entry per claim. */
static int
add_disks (const struct Pallet_convert_pod_options *o, json_t *cmd, json_t *devs, json_t *vols)
{
  for (size_t i = 0; i < o->nclaims; i++) {
    char vol[32], path[32];

    snprintf (vol, sizeof vol, "disk%zu", i);
    snprintf (path, sizeof path, "/dev/block%zu", i);
    if (json_array_append_new (cmd, json_string (path)) < 0
        || json_array_append_new (devs, json_pack ("{s:s, s:s}", "name", vol, "devicePath", path))
               < 0
        || json_array_append_new (vols,
                                  json_pack ("{s:s, s:{s:s}}", "name", vol, "persistentVolumeClaim",
                                             "claimName", o->claims[i]))
               < 0)
      return -1;
  }
  return 0;
}

json_t *
Pallet_convert_pod_manifest (const struct Pallet_convert_pod_options *o, char **err)
{
  const char *memory, *cpu;
  json_t *pod, *cmd, *env, *devs, *vols, *limits, *sel, *ctr, *labels;
  char *m;

  if (err)
    *err = NULL;
  if ((m = check_options (o)) != NULL) {
    if (err)
      *err = m;
    else
      free (m);
    return NULL;
  }
  cpu = o->cpu_request ? o->cpu_request : DEFAULT_CPU;
  memory = o->memory_request ? o->memory_request : DEFAULT_MEMORY;

  cmd = tool_command (o);
  env = json_array ();
  devs = json_array ();
  vols = json_array ();
  /* Memory limit = request: conversion memory is predictable (appliance
   * ~1.3 GiB); no CPU limit, throttling would only slow it down. */
  limits = json_pack ("{s:s}", "memory", memory);
  sel = json_object ();
  labels = build_labels (o);
  if (!cmd || !env || !devs || !vols || !limits || !sel || !labels
      || add_disks (o, cmd, devs, vols) < 0)
    goto nomem;

  json_array_append_new (env, env_var ("LIBGUESTFS_BACKEND", "direct"));
  if (o->force_tcg)
    json_array_append_new (env, env_var ("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg"));
  else {
    /* KVM, as Forklift requests it: the device plugin's resource on a
     * node KubeVirt can schedule on. */
    json_object_set_new (limits, "devices.kubevirt.io/kvm", json_string ("1"));
    json_object_set_new (sel, "kubevirt.io/schedulable", json_string ("true"));
  }
  json_array_append_new (env, env_var ("TMPDIR", TMP_DIR));
  json_array_append_new (env, env_var ("HOME", TMP_DIR));
  json_array_append_new (env, env_var ("LC_ALL", "C"));
  json_array_append_new (
      vols, json_pack ("{s:s, s:{s:s}}", "name", "tmp", "emptyDir", "sizeLimit", TMP_SIZE));
  if (o->zone)
    json_object_set_new (sel, "topology.kubernetes.io/zone", json_string (o->zone));

  ctr = json_pack (
      "{s:s, s:s, s:o, s:o, s:{s:{s:s, s:s}, s:o},"
      " s:o, s:[{s:s, s:s}], s:s, s:s,"
      " s:{s:b, s:b, s:b, s:{s:[s]}}}",
      "name", "virt-v2v", "image", o->image ? o->image : PALLET_CONVERT_DEFAULT_IMAGE, "command",
      cmd, "env", env, "resources", "requests", "cpu", cpu, "memory", memory, "limits", limits,
      "volumeDevices", devs, "volumeMounts", "name", "tmp", "mountPath", TMP_DIR,
      /* The tool's result; the kubelet copies the file into
                    * state.terminated.message, failed or not. */
      "terminationMessagePath", PALLET_CONVERT_POD_RESULT_FILE, "terminationMessagePolicy", "File",
      "securityContext", "allowPrivilegeEscalation", 0, "privileged", 0, "runAsNonRoot", 1,
      "capabilities", "drop", "ALL");
  cmd = env = devs = limits = NULL; /* "o" took them, even on error */
  if (ctr == NULL)
    goto nomem2;

  pod = json_pack ("{s:s, s:s, s:{s:s, s:s, s:o},"
                   " s:{s:s, s:b, s:b, s:o, s:[o], s:o,"
                   " s:{s:b, s:i, s:i, s:i, s:{s:s}}}}",
                   "apiVersion", "v1", "kind", "Pod", "metadata", "name", o->name, "namespace",
                   o->namespace_, "labels", labels, "spec", "restartPolicy", "Never",
                   /* No credentials of any kind in the pod. */
                   "automountServiceAccountToken", 0, "enableServiceLinks", 0, "nodeSelector", sel,
                   "containers", ctr, "volumes", vols, "securityContext", "runAsNonRoot", 1,
                   "runAsUser", QEMU_UID, "runAsGroup", QEMU_UID, "fsGroup", QEMU_UID,
                   "seccompProfile", "type", "RuntimeDefault");
  if (pod == NULL)
    return pod_fail (err, "conversion pod %s: out of memory", o->name);
  if (json_object_size (sel) == 0)
    json_object_del (json_object_get (pod, "spec"), "nodeSelector");
  return pod;

nomem:
  json_decref (cmd);
  json_decref (env);
  json_decref (devs);
  json_decref (limits);
nomem2:
  json_decref (vols);
  json_decref (sel);
  json_decref (labels);
  return pod_fail (err, "conversion pod %s: out of memory", o->name ? o->name : "");
}
