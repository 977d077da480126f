/* SPDX-License-Identifier: Apache-2.0 */
/* virt-v2v's -o kubevirt VirtualMachineInstance -> a VirtualMachine. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pallet/provider.h>
#include "pallet-plan.h"
#include "pallet-k8sname.h"
#include "pallet-v2v-kubevirt.h"
#include "v2v-error.h"

#define ANN_DISK_SOURCE "forklift.konveyor.io/disk-source"
#define ANN_LOCAL_PATH  "pallet.konveyor.io/converted-disk"

static const char *
str (const json_t *o, const char *k)
{
  const char *v = json_string_value (json_object_get (o, k));
  return v ? v : "";
}

json_t *
pallet_v2v_kubevirt_read (const char *path, char **err)
{
  const char *files[] = { path };
  json_t *set = pallet_plan_read (files, 1, err);
  if (!set)
    return NULL;
  json_t *res = json_object_get (set, "resources");
  json_t *obj = json_object_get (json_array_get (res, 0), "object");
  if (json_array_size (res) != 1) {
    Pallet_v2v_failf (err, 0, "%s: holds %zu documents; virt-v2v writes one VirtualMachineInstance",
                      path, json_array_size (res));
    obj = NULL;
  }
  else if (strcmp (str (obj, "apiVersion"), "kubevirt.io/v1")
           || strcmp (str (obj, "kind"), "VirtualMachineInstance")) {
    Pallet_v2v_failf (
        err, 0,
        "%s: is %s %s, not the kubevirt.io/v1 VirtualMachineInstance virt-v2v -o kubevirt writes",
        path, str (obj, "apiVersion"), str (obj, "kind"));
    obj = NULL;
  }
  json_incref (obj);
  json_decref (set);
  return obj;
}

/* Keys of o must all be in known (NULL-terminated): virt-v2v output we do
 * not understand is refused, not dropped. */
static int
only_keys (const json_t *o, const char *where, const char *const *known, char **err)
{
  const char *k;
  json_t *v;
  if (o && !json_is_object (o))
    return Pallet_v2v_failf (err, PALLET_E_INVALID, "virt-v2v YAML: %s: expected a mapping", where);
  json_object_foreach ((json_t *) o, k, v) {
    int ok = 0;
    for (size_t i = 0; known[i]; i++)
      ok |= !strcmp (k, known[i]);
    if (!ok) {
      char list[256] = "";
      for (size_t i = 0; known[i]; i++)
        snprintf (list + strlen (list), sizeof list - strlen (list), "%s%s", i ? ", " : "",
                  known[i]);
      return Pallet_v2v_failf (
          err, PALLET_E_INVALID,
          "virt-v2v YAML: %s.%s is not a field this version understands (known: %s); "
          "the virt-v2v in use writes a newer format: report it with the YAML",
          where, k, list);
    }
  }
  return PALLET_OK;
}

char *
pallet_v2v_vm_name (const json_t *plan, const json_t *vm, const char *source_name)
{
  const char *want = str (vm, "targetName");
  if (!*want)
    want = source_name && *source_name ? source_name : str (vm, "name");
  if (!*want)
    want = str (vm, "id");
  /* Names of the plan's other VMs are taken. */
  json_t *vms = json_object_get (plan, "vms"), *o;
  const char *taken[64];
  char *names[64];
  size_t n = 0, i;
  json_array_foreach (vms, i, o) {
    if (n >= 64 || o == vm || json_equal (o, vm))
      continue;
    const char *t = *str (o, "targetName") ? str (o, "targetName") : str (o, "name");
    if (*t && Pallet_k8s_dns1123_label (t, NULL, NULL, 0, 63, &names[n], NULL) == 0) {
      taken[n] = names[n];
      n++;
    }
  }
  char *out = NULL;
  if (Pallet_k8s_dns1123_label (want, *str (vm, "id") ? str (vm, "id") : want, taken, n, 63, &out,
                                NULL)
      < 0)
    out = NULL;
  for (i = 0; i < n; i++)
    free (names[i]);
  return out;
}

/* One storage map entry for a source disk: by datastore (vSphere), else
 * the entry whose source name is "default", else, for a disk without a
 * datastore (OVA, disk), the only entry. */
static const json_t *
storage_for (const json_t *plan, const char *datastore)
{
  json_t *map = json_object_get (plan, "storageMap"), *e;
  size_t i;
  json_array_foreach (map, i, e) {
    json_t *s = json_object_get (e, "source");
    if (*datastore && (!strcmp (str (s, "name"), datastore) || !strcmp (str (s, "id"), datastore)))
      return json_object_get (e, "destination");
  }
  json_array_foreach (map, i, e)
    if (!strcmp (str (json_object_get (e, "source"), "name"), "default"))
      return json_object_get (e, "destination");
  return !*datastore && json_array_size (map) == 1
             ? json_object_get (json_array_get (map, 0), "destination")
             : NULL;
}

static const json_t *
network_for (const json_t *plan, const char *network, int *found)
{
  json_t *map = json_object_get (plan, "networkMap"), *e;
  size_t i;
  *found = 0;
  json_array_foreach (map, i, e) {
    json_t *s = json_object_get (e, "source");
    if (!strcmp (str (s, "name"), network) || !strcmp (str (s, "id"), network)) {
      *found = 1;
      return json_object_get (e, "destination");
    }
  }
  return NULL;
}

static json_t *
labels_for (const struct pallet_v2v_vm_in *in)
{
  json_t *l = json_object ();
  json_t *tl = json_object_get (json_object_get (in->plan, "spec"), "targetLabels");
  if (json_is_object (tl))
    json_object_update (l, tl);
  json_object_set_new (l, "migration", json_string (in->migration_uid));
  json_object_set_new (l, "plan", json_string (str (in->plan, "uid")));
  const char *id = *str (in->vm, "id") ? str (in->vm, "id") : str (in->source, "uuid");
  char *v = NULL;
  if (*id && Pallet_k8s_dns1123_label (id, NULL, NULL, 0, 63, &v, NULL) == 0)
    json_object_set_new (l, "vmID", json_string (v));
  free (v);
  return l;
}

/* Bytes -> a quantity in Mi, rounded up. */
static json_t *
mi (long long bytes)
{
  char q[32];
  snprintf (q, sizeof q, "%lldMi", (bytes + (1 << 20) - 1) >> 20);
  return json_string (q);
}

static int
pvc_for (const struct pallet_v2v_vm_in *in, const char *vmname, size_t i, const json_t *out_disk,
         const json_t *src_disk, json_t *labels, json_t **pvc, char **err)
{
  const char *ds = str (src_disk, "datastore");
  const json_t *dst = storage_for (in->plan, ds);
  if (!dst || !*str (dst, "storageClass"))
    return Pallet_v2v_failf (
        err, PALLET_E_INVALID,
        "disk %zu%s%s%s: no StorageMap entry for it; map the datastore by name, or add an entry with source name \"default\"",
        i, *ds ? " (datastore " : "", ds, *ds ? ")" : "");
  char name[80];
  snprintf (name, sizeof name, "%.50s-disk-%zu", vmname, i);
  const char *am = *str (dst, "accessMode") ? str (dst, "accessMode") : "ReadWriteOnce";
  const char *vmode = *str (dst, "volumeMode") ? str (dst, "volumeMode") : "Filesystem";
  const char *srcname = *str (src_disk, "file") ? str (src_disk, "file") : str (out_disk, "path");
  long long bytes = json_integer_value (json_object_get (out_disk, "sizeBytes"));
  if (bytes <= 0)
    return Pallet_v2v_failf (err, PALLET_E_INVALID, "disk %zu: converted size unknown (%s)", i,
                             str (out_disk, "path"));
  char idx[24];
  snprintf (idx, sizeof idx, "%zu", i);
  *pvc = json_pack ("{s:s,s:s,s:{s:s,s:s,s:O,s:{s:s,s:s,s:s}},s:{s:[s],s:s,s:s,s:{s:{s:o}}}}",
                    "apiVersion", "v1", "kind", "PersistentVolumeClaim", "metadata", "name", name,
                    "namespace", str (in->plan, "targetNamespace"), "labels", labels, "annotations",
                    ANN_DISK_SOURCE, srcname, ANN_LOCAL_PATH, str (out_disk, "path"),
                    "forklift.konveyor.io/disk-index", idx, "spec", "accessModes", am, "volumeMode",
                    vmode, "storageClassName", str (dst, "storageClass"), "resources", "requests",
                    "storage", mi (bytes));
  return *pvc ? PALLET_OK : PALLET_E_NOMEM;
}

/* The features KubeVirt's v1.Features has.  virt-v2v copies the source's
 * libvirt features, and for -i disk and -i ova that includes pae, which
 * KubeVirt has no field for (an x86_64 guest always has PAE there): such
 * a feature is left out, with a note naming it. */
static json_t *
kubevirt_features (const json_t *feat, json_t *notes)
{
  static const char *const known[] = { "acpi", "apic",       "hyperv", "hypervPassthrough",
                                       "kvm",  "pvspinlock", "smm",    NULL };
  json_t *out = json_object ();
  const char *k;
  json_t *v;
  json_object_foreach ((json_t *) feat, k, v) {
    size_t i = 0;
    while (known[i] && strcmp (known[i], k))
      i++;
    if (known[i])
      json_object_set (out, k, v);
    else {
      char m[256];
      snprintf (m, sizeof m,
                "features.%.64s: virt-v2v's feature has no KubeVirt field (v1.Features); left out",
                k);
      json_array_append_new (notes, json_string (m));
    }
  }
  return out;
}

/* spec.domain of the VMI, checked, with its quirks undone into dom. */
static int
domain_from (const json_t *vmi_dom, const json_t *source, json_t *dom, json_t *notes, char **err)
{
  static const char *const dk[] = { "devices", "resources", "firmware", "features",
                                    "cpu",     "memory",    "machine",  NULL };
  static const char *const rk[] = { "requests", "cpu", "features", NULL };
  int st = only_keys (vmi_dom, "spec.domain", dk, err);
  json_t *res = json_object_get (vmi_dom, "resources");
  if (st == PALLET_OK)
    st = only_keys (res, "spec.domain.resources", rk, err);
  if (st != PALLET_OK)
    return st;
  const char *memory = str (json_object_get (res, "requests"), "memory");
  if (!*memory)
    return Pallet_v2v_failf (err, PALLET_E_INVALID,
                             "virt-v2v YAML: spec.domain.resources.requests.memory is missing");
  json_object_set_new (dom, "resources", json_pack ("{s:{s:s}}", "requests", "memory", memory));
  json_object_set_new (dom, "memory", json_pack ("{s:s}", "guest", memory));
  /* Quirk: cpu under resources (2.2.0), or in its right place (later). */
  json_t *cpu = json_object_get (res, "cpu");
  if (!cpu)
    cpu = json_object_get (vmi_dom, "cpu");
  long long cores = json_integer_value (json_object_get (cpu, "cores"));
  long long sockets = json_integer_value (json_object_get (cpu, "sockets"));
  long long threads = json_integer_value (json_object_get (cpu, "threads"));
  if (cores <= 0)
    cores = json_integer_value (json_object_get (source, "cpus"));
  if (cores <= 0)
    return Pallet_v2v_failf (
        err, PALLET_E_INVALID,
        "virt-v2v YAML: no CPU count (spec.domain.resources.cpu.cores) and none in the source metadata");
  json_object_set_new (
      dom, "cpu",
      json_pack ("{s:I,s:I,s:I}", "sockets", (json_int_t) (sockets > 0 ? sockets : 1), "cores",
                 (json_int_t) cores, "threads", (json_int_t) (threads > 0 ? threads : 1)));
  /* Quirk: features under resources, often empty (null). */
  json_t *feat = json_object_get (res, "features");
  if (!feat || json_is_null (feat))
    feat = json_object_get (vmi_dom, "features");
  if (feat && !json_is_null (feat) && !json_is_object (feat))
    return Pallet_v2v_failf (err, PALLET_E_INVALID, "virt-v2v YAML: features: expected a mapping");
  json_t *kept = kubevirt_features (feat, notes);
  if (kept && json_object_size (kept))
    json_object_set (dom, "features", kept);
  json_decref (kept);
  /* Firmware: virt-v2v's (UEFI guests), else the source's, else BIOS. */
  json_t *fw = json_object_get (vmi_dom, "firmware");
  json_t *bl = json_object_get (fw, "bootloader");
  const char *sfw = str (source, "firmware");
  int efi = json_object_get (bl, "efi") != NULL || (!bl && !strcmp (sfw, "efi"));
  if (!bl && !*sfw)
    json_array_append_new (
        notes, json_string ("firmware: neither virt-v2v nor the source says; BIOS assumed"));
  json_object_set_new (dom, "firmware",
                       efi ? json_pack ("{s:{s:{s:b}}}", "bootloader", "efi", "secureBoot", 0)
                           : json_pack ("{s:{s:{}}}", "bootloader", "bios"));
  if (*str (source, "uuid"))
    json_object_set_new (json_object_get (dom, "firmware"), "uuid",
                         json_string (str (source, "uuid")));
  json_t *mach = json_object_get (vmi_dom, "machine");
  if (json_is_object (mach))
    json_object_set (dom, "machine", mach);
  return PALLET_OK;
}

/* Disks: virt-v2v's names, buses and order; each hostDisk becomes the
 * PVC of the output disk with that path. */
static int
disks_from (const json_t *vmi_spec, const struct pallet_v2v_vm_in *in, const char *vmname,
            json_t *dom, json_t *tspec, json_t *manifests, json_t *labels, char **err)
{
  json_t *vdisks =
      json_object_get (json_object_get (json_object_get (vmi_spec, "domain"), "devices"), "disks");
  json_t *vols = json_object_get (vmi_spec, "volumes");
  json_t *outs = json_object_get (in->outputs, "disks");
  json_t *srcd = json_object_get (in->source, "disks");
  if (!json_array_size (vdisks) || json_array_size (vdisks) != json_array_size (vols))
    return Pallet_v2v_failf (
        err, PALLET_E_INVALID,
        "virt-v2v YAML: %zu disks and %zu volumes; expected the same number, at least one",
        json_array_size (vdisks), json_array_size (vols));
  json_t *disks = json_array (), *volumes = json_array (), *d;
  json_object_set_new (json_object_get (dom, "devices"), "disks", disks);
  json_object_set_new (tspec, "volumes", volumes);
  size_t i;
  json_array_foreach (vdisks, i, d) {
    const char *name = str (d, "name");
    json_t *vol = NULL, *v;
    size_t j, k;
    json_array_foreach (vols, j, v)
      if (!strcmp (str (v, "name"), name))
        vol = v;
    const char *path = str (json_object_get (vol, "hostDisk"), "path");
    if (!vol || !*path)
      return Pallet_v2v_failf (err, PALLET_E_INVALID,
                               "virt-v2v YAML: disk %s has no hostDisk volume", name);
    const json_t *out = NULL;
    json_array_foreach (outs, k, v)
      if (!strcmp (str (v, "path"), path)) {
        out = v;
        break;
      }
    if (!out)
      return Pallet_v2v_failf (
          err, PALLET_E_INVALID,
          "virt-v2v YAML: disk %s is %s, which is not one of the converted disks", name, path);
    json_t *claim = json_array_get (in->claims, k), *pvc = NULL;
    if (in->claims && !json_is_string (claim))
      return Pallet_v2v_failf (err, PALLET_E_INVALID, "disk %zu (%s): no existing PVC holds it", k,
                               path);
    int st = in->claims ? PALLET_OK
                        : pvc_for (in, vmname, k, out, json_array_get (srcd, k), labels, &pvc, err);
    if (st != PALLET_OK)
      return st;
    if (pvc)
      json_array_append_new (manifests, pvc);
    const char *bus = str (json_object_get (d, "disk"), "bus");
    json_t *nd = json_pack ("{s:s,s:{s:s}}", "name", name, "disk", "bus", *bus ? bus : "virtio");
    json_t *bo = json_object_get (d, "bootOrder");
    json_object_set_new (
        nd, "bootOrder",
        json_integer (bo ? json_integer_value (bo) : (json_int_t) (i == 0 ? 1 : 0)));
    if (json_integer_value (json_object_get (nd, "bootOrder")) <= 0)
      json_object_del (nd, "bootOrder");
    json_array_append_new (disks, nd);
    json_array_append_new (
        volumes,
        json_pack ("{s:s,s:{s:O}}", "name", name, "persistentVolumeClaim", "claimName",
                   pvc ? json_object_get (json_object_get (pvc, "metadata"), "name") : claim));
  }
  return PALLET_OK;
}

/* NICs: virt-v2v 2.2.0 writes none, so they come from the source. */
static int
nics_from (const struct pallet_v2v_vm_in *in, json_t *dom, json_t *tspec, char **err)
{
  json_t *ifs = json_array (), *nets = json_array (), *n;
  json_object_set_new (json_object_get (dom, "devices"), "interfaces", ifs);
  json_object_set_new (tspec, "networks", nets);
  size_t i;
  int pods = 0;
  json_array_foreach (json_object_get (in->source, "nics"), i, n) {
    int found;
    const json_t *dst = network_for (in->plan, str (n, "network"), &found);
    if (!found)
      return Pallet_v2v_failf (
          err, PALLET_E_INVALID,
          "NIC %zu (network \"%s\", MAC %s): not in the NetworkMap; map it to pod, multus or ignored",
          i, str (n, "network"), str (n, "mac"));
    const char *type = str (dst, "type");
    if (!strcmp (type, "ignored"))
      continue;
    char name[16];
    snprintf (name, sizeof name, "net-%zu", json_array_size (ifs));
    json_t *itf = json_pack ("{s:s,s:s}", "name", name, "model", "virtio");
    if (*str (n, "mac"))
      json_object_set_new (itf, "macAddress", json_string (str (n, "mac")));
    if (!strcmp (type, "pod")) {
      if (pods++)
        return Pallet_v2v_failf (
            err, PALLET_E_INVALID,
            "NIC %zu: a second NIC mapped to the pod network; KubeVirt allows one", i);
      json_object_set_new (itf, "masquerade", json_object ());
      json_array_append_new (nets, json_pack ("{s:s,s:{}}", "name", name, "pod"));
    }
    else {
      char nad[300];
      const char *ns =
          *str (dst, "namespace") ? str (dst, "namespace") : str (in->plan, "targetNamespace");
      snprintf (nad, sizeof nad, "%s/%s", ns, str (dst, "name"));
      json_object_set_new (itf, "bridge", json_object ());
      json_array_append_new (
          nets, json_pack ("{s:s,s:{s:s}}", "name", name, "multus", "networkName", nad));
    }
    json_array_append_new (ifs, itf);
  }
  return PALLET_OK;
}

static const char *
run_strategy (const struct pallet_v2v_vm_in *in)
{
  const char *p = str (in->vm, "targetPowerState");
  if (!*p)
    p = str (in->plan, "targetPowerState");
  if (!strcmp (p, "on"))
    return "Always";
  if (!strcmp (p, "off"))
    return "Halted";
  return !strcmp (str (in->source, "powerState"), "On") ? "Always" : "Halted";
}

int
pallet_v2v_kubevirt_manifests (const json_t *vmi, const struct pallet_v2v_vm_in *in,
                               json_t **manifests, json_t **notes, char **err)
{
  static const char *const sk[] = { "domain", "volumes", "terminationGracePeriodSeconds", NULL };
  *manifests = json_array ();
  *notes = json_array ();
  json_t *spec = json_object_get (vmi, "spec");
  int st = only_keys (spec, "spec", sk, err);
  char *name =
      st == PALLET_OK ? pallet_v2v_vm_name (in->plan, in->vm, str (in->source, "name")) : NULL;
  if (st == PALLET_OK && !name)
    st = Pallet_v2v_failf (
        err, PALLET_E_INVALID,
        "the VM has no name to build a DNS-1123 label from; set vms[].targetName");
  json_t *labels = labels_for (in);
  json_t *dom = json_pack ("{s:{}}", "devices");
  json_t *tspec = json_pack ("{s:o}", "domain", dom);
  if (st == PALLET_OK)
    st = domain_from (json_object_get (spec, "domain"), in->source, dom, *notes, err);
  if (st == PALLET_OK)
    st = disks_from (spec, in, name, dom, tspec, *manifests, labels, err);
  if (st == PALLET_OK)
    st = nics_from (in, dom, tspec, err);
  if (st == PALLET_OK) {
    json_t *tg = json_object_get (spec, "terminationGracePeriodSeconds");
    if (json_is_integer (tg))
      json_object_set (tspec, "terminationGracePeriodSeconds", tg);
    json_t *ann =
        json_pack ("{s:s,s:s}", "forklift.konveyor.io/source-vm-name", str (in->source, "name"),
                   "pallet.konveyor.io/source-type", in->provider_type ? in->provider_type : "");
    json_t *vmo = json_pack ("{s:s,s:s,s:{s:s,s:s,s:O,s:o},s:{s:s,s:{s:{s:O},s:O}}}", "apiVersion",
                             "kubevirt.io/v1", "kind", "VirtualMachine", "metadata", "name", name,
                             "namespace", str (in->plan, "targetNamespace"), "labels", labels,
                             "annotations", ann, "spec", "runStrategy", run_strategy (in),
                             "template", "metadata", "labels", labels, "spec", tspec);
    if (!vmo)
      st = Pallet_v2v_failf (err, PALLET_E_NOMEM, "out of memory");
    else
      json_array_append_new (*manifests, vmo);
  }
  json_decref (tspec);
  json_decref (labels);
  free (name);
  if (st != PALLET_OK) {
    json_decref (*manifests);
    json_decref (*notes);
    *manifests = *notes = NULL;
  }
  return st;
}
