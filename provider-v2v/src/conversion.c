/* SPDX-License-Identifier: Apache-2.0 */
/* Conversion-only plans (plan type "conversion", vsphere): the disks are
 * PVCs someone else filled from the VM's .vmdk files.  validate finds
 * them (Kubernetes API or a saved `kubectl get pvc -o json`) and matches
 * them to the VM's disks; prepare_source records the VM's facts and
 * leaves the VM alone; transfer copies nothing and records the PVCs;
 * convert runs virt-v2v-in-place -i libvirtxml on the PVCs' devices on
 * this host (setting pvc-device-dir); build_vm references the PVCs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "v2v.h"
#include "pallet-kube.h"
#include "pallet-v2v-conversion.h"
#include "pallet-v2v-kubevirt.h"
#include "pallet-v2v-vsphere.h"

int
v2v_is_conversion (const json_t *plan)
{
  return !strcmp (v2v_str (plan, "type"), "conversion");
}

/* Every PVC of the namespace: the matcher needs the unlabelled ones too,
 * to name a missing label as the cause of a missing disk. */
static int
list_pvcs (struct v2v *s, const char *ns, json_t *items, const char **type, char **msg)
{
  *type = "ConversionPVCListFailed";
  if (s->pvc_list_file)
    return Pallet_kube_list_pvcs (NULL, s->pvc_list_file, ns, NULL, items, msg);
  if (!s->kube_api_url) {
    *type = "ConversionPVCSourceMissing";
    if (asprintf (msg, "a conversion-only plan converts existing PVCs, and the provider has no "
                       "way to list them: set kube-api-url (with the Secret's kubeToken and "
                       "kube-ca.crt), or pvc-list-file")
        < 0)
      *msg = NULL;
    return PALLET_E_INVALID;
  }
  struct Pallet_kube_config kc = {
    .api_url = s->kube_api_url,
    .token = s->kube_token,
    .ca_pem = s->kube_ca_pem,
    .insecure = s->kube_insecure,
  };
  if (s->kube_insecure)
    pallet_log (
        s->call, PALLET_LOG_WARNING,
        "kube-insecure-skip-verify is true: the Kubernetes API's certificate is not checked");
  int st = Pallet_kube_list_pvcs_api (&kc, ns, NULL, items, msg);
  if (st == PALLET_E_AUTH)
    *type = "KubeCredentialsRejected";
  return st;
}

/* DIR/<pvc>: a block device, a file, or (volumeMode Filesystem) a
 * directory holding KubeVirt's disk.img. */
static int
device_of (struct v2v *s, json_t *claim, const char **type, char *msg, size_t cap)
{
  const char *pvc = v2v_str (claim, "pvcName");
  char p[4096];
  struct stat st;
  snprintf (p, sizeof p, "%s/%s", s->pvc_device_dir, pvc);
  if (stat (p, &st) == 0 && S_ISDIR (st.st_mode)) {
    snprintf (p, sizeof p, "%s/%s/disk.img", s->pvc_device_dir, pvc);
    if (stat (p, &st) != 0)
      st.st_mode = 0;
  }
  else if (stat (p, &st) != 0)
    st.st_mode = 0;
  if (!S_ISBLK (st.st_mode) && !S_ISREG (st.st_mode)) {
    *type = "ConversionPVCDeviceMissing";
    snprintf (msg, cap,
              "PVC %s (disk %s): %.1000s is not a block device, a disk file or a directory with "
              "disk.img (%s); attach the PVC on this host and make %.1000s/%s its device or mount "
              "point, or fix the setting pvc-device-dir",
              pvc, v2v_str (claim, "disk"), p, errno ? strerror (errno) : "wrong file type",
              s->pvc_device_dir, pvc);
    return -1;
  }
  json_object_set_new (claim, "path", json_string (p));
  json_object_set_new (claim, "block", json_boolean (S_ISBLK (st.st_mode)));
  if (S_ISREG (st.st_mode))
    json_object_set_new (claim, "sizeBytes", json_integer ((json_int_t) st.st_size));
  return 0;
}

struct first_error {
  struct v2v *s;
  int st;
};

static void
report (v2v_finding_fn fn, void *opaque, struct first_error *fe, const char *type,
        const char *field, const char *msg)
{
  if (fn)
    fn (opaque, type, field, msg);
  else if (fe->st == PALLET_OK) {
    fe->st = PALLET_E_CONFLICT;
    pallet_error (fe->s->call, fe->st, "%s: %s", type, msg);
  }
}

int
v2v_conversion_claims (struct v2v *s, const struct v2v_input *in, const json_t *facts,
                       json_t **claims, v2v_finding_fn fn, void *opaque)
{
  const char *ns = v2v_str (in->plan, "targetNamespace"), *type = NULL;
  struct first_error fe = { s, PALLET_OK };
  json_t *items = json_array (), *problems = NULL, *p, *c;
  char *msg = NULL;
  *claims = NULL;
  int st = list_pvcs (s, ns, items, &type, &msg);
  if (st == PALLET_E_TRANSIENT || st == PALLET_E_NOMEM) {
    pallet_error (s->call, st, "%s: listing the PVCs of namespace %s: %s", in->key, ns,
                  msg ? msg : "failed");
    free (msg);
    json_decref (items);
    return st;
  }
  if (st != PALLET_OK) {
    const char *field = !strcmp (type, "KubeCredentialsRejected") ? "secret.kubeToken"
                        : s->pvc_list_file                        ? "settings.pvc-list-file"
                                                                  : "settings.kube-api-url";
    report (fn, opaque, &fe, type, field, msg ? msg : "listing PVCs failed");
    free (msg);
    json_decref (items);
    return fn ? PALLET_OK : fe.st;
  }
  if (pallet_v2v_conversion_match (facts, items, ns, claims, &problems) < 0) {
    json_decref (items);
    json_decref (problems);
    json_decref (*claims);
    *claims = NULL;
    pallet_error (s->call, PALLET_E_NOMEM, "out of memory");
    return PALLET_E_NOMEM;
  }
  json_decref (items);
  size_t i;
  json_array_foreach (problems, i, p)
    report (fn, opaque, &fe, v2v_str (p, "type"), NULL, v2v_str (p, "message"));
  json_decref (problems);
  if (!s->pvc_device_dir)
    report (fn, opaque, &fe, "ConversionPVCDeviceDirMissing", "settings.pvc-device-dir",
            "a conversion-only plan converts the PVCs on this host: set pvc-device-dir to the "
            "directory where each PVC's device (or mount point) is, as DIR/<pvc name>");
  else
    json_array_foreach (*claims, i, c) {
      char m[4096];
      errno = 0;
      if (json_is_object (c) && device_of (s, c, &type, m, sizeof m) < 0)
        report (fn, opaque, &fe, type, "settings.pvc-device-dir", m);
    }
  if (fe.st != PALLET_OK) {
    json_decref (*claims);
    *claims = NULL;
  }
  return fe.st;
}

/* ---- prepare_source and transfer ---- */

static int
skipped (struct v2v *s, const struct v2v_input *in, const char *op, const char *why)
{
  pallet_log (s->call, PALLET_LOG_INFO, "%s %s: skipped: %s", op, in->key, why);
  json_t *res = json_pack ("{s:b,s:s}", "skipped", 1, "reason", why);
  int r = v2v_emit (s, PALLET_EMIT_RESULT, res);
  json_decref (res);
  return r < 0 ? PALLET_E_ABI : PALLET_OK;
}

int
v2v_conversion_prepare (struct v2v *s, struct v2v_input *in)
{
  json_t *facts = NULL;
  char *err = NULL;
  int st = v2v_source_facts (s, in->key, &facts, &err);
  if (st != PALLET_OK) {
    pallet_error (s->call, st, "%s", err);
    free (err);
    return st;
  }
  json_t *state = json_deep_copy (in->state);
  json_object_set_new (state, "migrationUID", json_string (in->migration_uid));
  json_object_set_new (state, "conversionOnly", json_true ());
  if (!json_object_get (state, "sourcePowerState"))
    json_object_set_new (state, "sourcePowerState", json_string (v2v_str (facts, "powerState")));
  json_object_set_new (facts, "powerState", json_string (v2v_str (state, "sourcePowerState")));
  json_object_set (state, "source", facts);
  st = v2v_emit (s, PALLET_EMIT_STATE, state) < 0 ? PALLET_E_FAILED : PALLET_OK;
  json_decref (state);
  json_decref (facts);
  if (st == PALLET_OK)
    st = skipped (s, in, "prepare_source",
                  "conversion-only plan: the source VM is left as it is (its disks are in "
                  "the PVCs already)");
  return st;
}

int
v2v_conversion_transfer (struct v2v *s, struct v2v_input *in)
{
  const json_t *facts = json_object_get (in->state, "source");
  if (!facts) {
    pallet_error (s->call, PALLET_E_CONFLICT,
                  "%s: the state has no source facts; run prepare_source first", in->key);
    return PALLET_E_CONFLICT;
  }
  json_t *claims = NULL;
  int st = v2v_conversion_claims (s, in, facts, &claims, NULL, NULL);
  if (st != PALLET_OK)
    return st;
  json_t *state = json_deep_copy (in->state);
  json_object_set_new (state, "claims", claims);
  json_object_set_new (state, "transferred", json_true ());
  st = v2v_emit (s, PALLET_EMIT_STATE, state) < 0 ? PALLET_E_FAILED : PALLET_OK;
  json_decref (state);
  if (st == PALLET_OK)
    st = skipped (s, in, "transfer",
                  "conversion-only plan: nothing to copy, the disks are the existing PVCs");
  return st;
}

/* ---- convert ---- */

/* The in-place XML for the claims' devices, written to dir. */
static int
write_xml (struct v2v *s, const struct v2v_input *in, const json_t *claims, const char *path)
{
  size_t n = json_array_size (claims), i;
  struct pallet_v2v_conversion_disk *d = calloc (n ? n : 1, sizeof *d);
  struct pallet_v2v_vsphere *v = NULL;
  char *dom = NULL, *xml = NULL, *err = NULL;
  if (!d) {
    pallet_error (s->call, PALLET_E_NOMEM, "out of memory");
    return PALLET_E_NOMEM;
  }
  for (i = 0; i < n; i++) {
    d[i].path = v2v_str (json_array_get (claims, i), "path");
    d[i].block = json_is_true (json_object_get (json_array_get (claims, i), "block"));
  }
  int st = pallet_v2v_vsphere_open (s->uri, s->user, s->password ? s->password : "", &v, &err);
  if (st == PALLET_OK)
    st = pallet_v2v_vsphere_domain_xml (v, in->key, &dom, &err);
  if (v)
    pallet_v2v_vsphere_close (v);
  if (st == PALLET_OK)
    st = pallet_v2v_conversion_xml (dom, d, n, &xml, &err);
  FILE *f = st == PALLET_OK ? fopen (path, "w") : NULL;
  if (st == PALLET_OK && (!f || fputs (xml, f) < 0)) {
    st = PALLET_E_IO;
    free (err);
    err = NULL;
    if (asprintf (&err, "cannot write %s: %s", path, strerror (errno)) < 0)
      err = NULL;
  }
  if (f && fclose (f) != 0 && st == PALLET_OK)
    st = PALLET_E_IO;
  if (st != PALLET_OK)
    pallet_error (s->call, st, "%s: %s", in->key, err ? err : "writing the libvirt XML failed");
  free (d);
  free (dom);
  free (xml);
  free (err);
  return st;
}

static int
run_in_place (struct v2v *s, const struct v2v_input *in, const json_t *claims, const char *dir)
{
  char xml[4096];
  snprintf (xml, sizeof xml, "%s/in-place.xml", dir);
  int st = write_xml (s, in, claims, xml);
  if (st != PALLET_OK)
    return st;
  char *argv[] = { (char *) s->virt_v2v_in_place, "-i", "libvirtxml",
                   "--machine-readable",          xml,  NULL };
  st = v2v_run_logged (s, in->key, argv, dir, "virt-v2v-in-place", xml);
  if (st == PALLET_OK) {
    json_t *outs = json_pack ("{s:s,s:O}", "guest", in->key, "claims", claims);
    if (pallet_v2v_mark_done (dir, outs) < 0) {
      pallet_error (s->call, PALLET_E_IO, "%s: cannot write the run journal in %s: %s", in->key,
                    dir, strerror (errno));
      st = PALLET_E_IO;
    }
    json_decref (outs);
  }
  return st;
}

int
v2v_conversion_convert (struct v2v *s, struct v2v_input *in)
{
  const json_t *claims = json_object_get (in->state, "claims");
  if (!json_is_true (json_object_get (in->state, "transferred")) || !json_array_size (claims)) {
    pallet_error (s->call, PALLET_E_CONFLICT,
                  "%s: the state records no matched PVCs; run the migration again from transfer",
                  in->key);
    return PALLET_E_CONFLICT;
  }
  const json_t *facts = json_object_get (in->state, "source");
  char *name = pallet_v2v_vm_name (in->plan, in->vm,
                                   *v2v_str (facts, "name") ? v2v_str (facts, "name") : in->key);
  char *dir = name ? v2v_vm_dir (s, name) : NULL;
  int st = dir ? PALLET_OK : PALLET_E_INVALID;
  if (!name)
    pallet_error (s->call, st, "%s: no DNS-1123 name can be made; set vms[].targetName", in->key);
  /* Converting twice would stack a second conversion on the first. */
  json_t *done = dir ? pallet_v2v_finished (dir) : NULL;
  if (done && !strcmp (v2v_str (done, "guest"), in->key)
      && json_equal (json_object_get (done, "claims"), claims))
    pallet_log (s->call, PALLET_LOG_INFO,
                "%s: adopting the in-place conversion that finished in %s", in->key, dir);
  else if (st == PALLET_OK) {
    if (pallet_v2v_reap_stale (dir) > 0)
      pallet_log (s->call, PALLET_LOG_WARNING,
                  "%s: stopped the virt-v2v-in-place an earlier, killed pallet left running",
                  in->key);
    st = run_in_place (s, in, claims, dir);
  }
  if (st == PALLET_OK) {
    json_t *state = json_deep_copy (in->state);
    json_object_set_new (state, "outputDir", json_string (dir));
    json_object_set_new (state, "converted", json_true ());
    json_object_set_new (state, "convertedBy", json_string ("virt-v2v-in-place"));
    if (v2v_emit (s, PALLET_EMIT_STATE, state) < 0)
      st = PALLET_E_FAILED;
    json_decref (state);
  }
  json_decref (done);
  free (dir);
  free (name);
  return st;
}

/* ---- build_vm ---- */

/* What virt-v2v -o kubevirt would have written, from the source's facts:
 * the converted guest has virtio drivers, so its disks are virtio. */
static json_t *
vmi_of (const json_t *facts, const json_t *claims, json_t **outputs, json_t **names)
{
  json_t *disks = json_array (), *vols = json_array (), *odisks = json_array (), *c;
  *names = json_array ();
  size_t i;
  json_array_foreach (claims, i, c) {
    char n[32];
    snprintf (n, sizeof n, "disk-%zu", i);
    json_array_append_new (disks, json_pack ("{s:s,s:{s:s}}", "name", n, "disk", "bus", "virtio"));
    json_array_append_new (
        vols, json_pack ("{s:s,s:{s:s}}", "name", n, "hostDisk", "path", v2v_str (c, "path")));
    json_array_append_new (odisks, json_pack ("{s:s}", "path", v2v_str (c, "path")));
    json_array_append_new (*names, json_string (v2v_str (c, "pvcName")));
  }
  char mem[32];
  snprintf (mem, sizeof mem, "%lldMi",
            (long long) json_integer_value (json_object_get (facts, "memoryMiB")));
  *outputs = json_pack ("{s:o}", "disks", odisks);
  return json_pack ("{s:{s:{s:{s:o},s:{s:{s:s}}},s:o}}", "spec", "domain", "devices", "disks",
                    disks, "resources", "requests", "memory", mem, "volumes", vols);
}

int
v2v_conversion_build (struct v2v *s, struct v2v_input *in)
{
  const json_t *claims = json_object_get (in->state, "claims");
  if (!json_is_true (json_object_get (in->state, "converted")) || !json_array_size (claims)) {
    pallet_error (s->call, PALLET_E_CONFLICT,
                  "%s: the state records no converted PVCs; run the migration again from convert",
                  in->key);
    return PALLET_E_CONFLICT;
  }
  json_t *outputs = NULL, *names = NULL;
  json_t *vmi = vmi_of (json_object_get (in->state, "source"), claims, &outputs, &names);
  int st = vmi && outputs && names ? v2v_build_from (s, in, vmi, outputs, names) : PALLET_E_NOMEM;
  if (st == PALLET_E_NOMEM && !(vmi && outputs && names))
    pallet_error (s->call, st, "out of memory");
  json_decref (vmi);
  json_decref (outputs);
  json_decref (names);
  return st;
}
