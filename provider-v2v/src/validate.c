/* SPDX-License-Identifier: Apache-2.0 */
/* validate: what stands in the way of one VM, as findings.  Changes
 * nothing. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "v2v.h"
#include "pallet-v2v-kubevirt.h"
#include "pallet-v2v-ova.h"

struct findings {
  struct v2v *s;
  const char *vm;
  int errors;
};

static void finding (struct findings *f, const char *category, const char *type, const char *field,
                     const char *fmt, ...) PALLET_PRINTF (5, 6);

static void
finding (struct findings *f, const char *category, const char *type, const char *field,
         const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (!strcmp (category, "Critical"))
    f->errors++;
  json_t *o = json_pack ("{s:s,s:s,s:s,s:s}", "vm", f->vm, "category", category, "type", type,
                         "message", msg);
  if (field)
    json_object_set_new (o, "field", json_string (field));
  v2v_emit (f->s, PALLET_EMIT_ITEM, o);
  json_decref (o);
}

static void
plan_checks (struct findings *f, const struct v2v_input *in)
{
  const char *type = v2v_str (in->plan, "type");
  if (!strcmp (type, "conversion") && f->s->type != V2V_VSPHERE)
    finding (f, "Critical", "MigrationTypeNotSupported", "spec.type",
             "plan type 'conversion': conversion-only plans are for vsphere Providers (PVCs "
             "holding the VM's .vmdk files); the %s provider does cold migrations only",
             f->s->type_name);
  else if (*type && strcmp (type, "cold") && strcmp (type, "conversion"))
    finding (
        f, "Critical", "MigrationTypeNotSupported", "spec.type",
        "plan type '%s': the %s provider does cold migrations only (virt-v2v copies a powered-off guest)%s",
        type, f->s->type_name,
        f->s->type == V2V_VSPHERE ? ", or conversion-only plans (type conversion)" : "");
  if (json_is_true (json_object_get (in->plan, "skipGuestConversion")))
    finding (f, "Critical", "SkipGuestConversionNotSupported", "spec.skipGuestConversion",
             "virt-v2v always converts the guest; remove skipGuestConversion");
  size_t i;
  json_t *a;
  json_array_foreach (f->s->advisories, i, a)
    finding (f, "Advisory", "SettingNotUsed", NULL, "%s", json_string_value (a));
}

static int
mapped (const json_t *map, const char *name, int allow_default)
{
  size_t i;
  json_t *e;
  json_array_foreach (map, i, e) {
    json_t *src = json_object_get (e, "source");
    if (!strcmp (v2v_str (src, "name"), name) || !strcmp (v2v_str (src, "id"), name)
        || (allow_default && !strcmp (v2v_str (src, "name"), "default")))
      return 1;
  }
  /* ova/disk disks have no datastore: the only entry is theirs */
  return allow_default && !*name && json_array_size (map) == 1;
}

static void
facts_checks (struct findings *f, const struct v2v_input *in, const json_t *facts)
{
  /* Conversion-only: the disks were copied already and the PVCs exist, so
   * neither the VM's power state nor the StorageMap matters. */
  int conv = v2v_is_conversion (in->plan);
  if (conv)
    ;
  else if (!strcmp (v2v_str (facts, "powerState"), "On") && f->s->power_off)
    finding (f, "Warn", "VMWillBePoweredOff", NULL,
             "VM %s is powered on; the migration powers it off (and on again if it rolls back)",
             v2v_str (facts, "name"));
  else if (!strcmp (v2v_str (facts, "powerState"), "On"))
    finding (
        f, "Critical", "VMPoweredOn", NULL,
        "VM %s is powered on and power-off is false; virt-v2v copies only a shut-off guest: shut it down first",
        v2v_str (facts, "name"));
  json_t *d, *n;
  size_t i;
  json_t *sm = json_object_get (in->plan, "storageMap"),
         *nm = json_object_get (in->plan, "networkMap");
  json_array_foreach (json_object_get (facts, "disks"), i, d)
    if (!conv && !mapped (sm, v2v_str (d, "datastore"), 1))
      finding (
          f, "Critical", "StorageNotMapped", "storageMap",
          "disk %s (datastore '%s') has no StorageMap entry; add one with source.name: %s (or \"default\")",
          v2v_str (d, "file"), v2v_str (d, "datastore"), v2v_str (d, "datastore"));
  json_array_foreach (json_object_get (facts, "nics"), i, n)
    if (!mapped (nm, v2v_str (n, "network"), 0))
      finding (f, "Critical", "NetworkNotMapped", "networkMap",
               "NIC %s on network '%s' has no NetworkMap entry; map it to pod, multus or ignored",
               v2v_str (n, "mac"), v2v_str (n, "network"));
  if (!json_array_size (json_object_get (facts, "disks")))
    finding (f, "Critical", "NoDisks", NULL, "VM %s has no disks to migrate",
             v2v_str (facts, "name"));
  char *name = pallet_v2v_vm_name (in->plan, in->vm, v2v_str (facts, "name"));
  if (!name)
    finding (f, "Critical", "TargetNameInvalid", "vms[].targetName",
             "no DNS-1123 name can be made; set targetName");
  else if (strcmp (name, v2v_str (facts, "name")) && !*v2v_str (in->vm, "targetName"))
    finding (f, "Advisory", "TargetNameSanitised", NULL,
             "the VM will be named %s (a DNS-1123 label)", name);
  free (name);
}

/* VDDK needs nbdkit's vddk plugin and VMware's library; Debian has
 * neither. */
static void
vddk_checks (struct findings *f)
{
  struct v2v *s = f->s;
  if (s->type != V2V_VSPHERE || s->transport != PALLET_V2V_VDDK)
    return;
  if (!pallet_v2v_have_nbdkit_plugin ("vddk"))
    finding (
        f, "Critical", "VDDKPluginMissing", "settings.transport",
        "transport vddk needs nbdkit's vddk plugin (nbdkit-vddk-plugin.so), which this nbdkit does not have "
        "(Debian's nbdkit ships none; the plugin and VMware's VDDK come from VMware/your distribution): "
        "install them, or use transport https");
  char lib[4096];
  snprintf (lib, sizeof lib, "%s/lib64/libvixDiskLib.so", s->vddk_libdir ? s->vddk_libdir : "");
  if (!s->vddk_libdir)
    finding (
        f, "Critical", "VDDKLibdirMissing", "settings.vddk-libdir",
        "transport vddk needs vddk-libdir: the directory of VMware's vmware-vix-disklib-distrib");
  else if (access (lib, R_OK) != 0)
    finding (
        f, "Critical", "VDDKLibdirMissing", "settings.vddk-libdir",
        "vddk-libdir %s has no lib64/libvixDiskLib.so; point it at the unpacked vmware-vix-disklib-distrib",
        s->vddk_libdir);
  if (!s->thumbprint || !*s->thumbprint)
    finding (
        f, "Critical", "VDDKThumbprintMissing", "secret.thumbprint",
        "transport vddk needs the server's SHA-1 thumbprint in the Secret's thumbprint (virt-v2v 2.2.0 requires it)");
}

static void
ova_checks (struct findings *f, const struct v2v_input *in)
{
  char *p = v2v_source_file (f->s, in->key);
  json_t *members = NULL;
  char *err = NULL;
  if (p && pallet_v2v_ova_check (p, &members, &err) != PALLET_OK)
    finding (f, "Critical", "OVAUnsafe", NULL, "%s", err);
  json_decref (members);
  free (err);
  free (p);
}

/* The source's answer as a finding: connection problems are facts about
 * the credentials or the URL. */
static int
source_finding (struct findings *f, int st, const char *msg)
{
  const char *type = st == PALLET_E_AUTH                  ? "CredentialsRejected"
                     : st == PALLET_E_NOT_FOUND           ? "VMNotFound"
                     : strstr (msg, "insecureSkipVerify") ? "TLSVerificationFailed"
                                                          : "SourceUnreachable";
  if (st == PALLET_E_TRANSIENT)
    return st; /* retried by the host, not a finding */
  finding (f, "Critical", type, NULL, "%s", msg);
  return PALLET_OK;
}

static void
conversion_finding (void *opaque, const char *type, const char *field, const char *msg)
{
  finding (opaque, "Critical", type, field, "%s", msg);
}

int
v2v_validate (void *handle, struct pallet_call *call, const char *input_json)
{
  struct v2v *s = handle;
  struct v2v_input in;
  s->call = call;
  if (v2v_input_parse (s, "validate", input_json, &in) < 0)
    return PALLET_E_INVALID;
  struct findings f = { .s = s, .vm = in.key };
  plan_checks (&f, &in);
  vddk_checks (&f);
  json_t *facts = NULL;
  char *err = NULL;
  int st = v2v_source_facts (s, in.key, &facts, &err);
  if (st == PALLET_OK) {
    facts_checks (&f, &in, facts);
    json_t *claims = NULL;
    if (s->type == V2V_VSPHERE && v2v_is_conversion (in.plan))
      st = v2v_conversion_claims (s, &in, facts, &claims, conversion_finding, &f);
    json_decref (claims);
    if (s->type == V2V_OVA)
      ova_checks (&f, &in);
  }
  else if ((st = source_finding (&f, st, err ? err : "the source could not be read")) != PALLET_OK)
    pallet_error (call, st, "%s", err ? err : "the source could not be read");
  free (err);
  json_decref (facts);
  v2v_input_free (&in);
  if (st != PALLET_OK)
    return st;
  if (f.errors) {
    pallet_error (call, PALLET_E_INVALID, "%d blocking finding(s); see the findings", f.errors);
    return PALLET_E_INVALID;
  }
  return PALLET_OK;
}
