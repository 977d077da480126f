/* SPDX-License-Identifier: Apache-2.0 */
/* validate: every rule gets a clear message and a stable code.  Errors make
 * the op fail with PALLET_E_INVALID; warnings and notes do not.  The facts
 * found (instance, type, volumes) go into the state for the later steps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ec2.h"
#include "warm.h"
#include "verify_boot.h"
#include "pallet-convert.h"
#include "pallet-ec2-manifest.h"

struct findings {
  struct ec2 *s;
  const char *vm;
  int errors;
};

static void finding (struct findings *f, const char *severity, const char *code, const char *fmt,
                     ...) PALLET_PRINTF (4, 5);

static void
finding (struct findings *f, const char *severity, const char *code, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  /* Forklift's condition categories: Critical blocks the plan. */
  const char *category = !strcmp (severity, "error")     ? "Critical"
                         : !strcmp (severity, "warning") ? "Warn"
                                                         : "Advisory";
  if (!strcmp (severity, "error"))
    f->errors++;
  ec2_emit_item (f->s, json_pack ("{s:s,s:s,s:s,s:s}", "vm", f->vm, "category", category, "type",
                                  code, "message", msg));
  pallet_log (f->s->call, !strcmp (severity, "error") ? PALLET_LOG_ERROR : PALLET_LOG_INFO,
              "validate %s: %s: %s", f->vm, code, msg);
}

static int
collect_all (void *opaque, json_t *item, const json_t *context)
{
  (void) context;
  json_array_append ((json_t *) opaque, item);
  return 0;
}

/* Does a map entry's source match id or name? */
static int
map_covers (const json_t *map, const char *id)
{
  size_t i;
  json_t *e;
  json_array_foreach (map, i, e) {
    json_t *src = json_object_get (e, "source");
    if (!strcmp (ec2_str (src, "id"), id) || !strcmp (ec2_str (src, "name"), id))
      return 1;
  }
  return 0;
}

static int
zone_exists (struct ec2 *s, struct Pallet_aws_client *c, const char *zone, int *exists)
{
  json_t *zones = json_array ();
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  const char *v[] = { zone };
  Pallet_aws_params_add_filter (p, "zone-name", v, 1);
  int r = Pallet_aws_ec2_describe_availability_zones (c, p, collect_all, zones);
  Pallet_aws_params_free (p);
  *exists = json_array_size (zones) > 0;
  json_decref (zones);
  return r < 0 ? ec2_aws_fail (s, c, "describing availability zones") : PALLET_OK;
}

/* ---- KMS: can the target use the key its volumes will be encrypted with? ---- */

/* "arn:aws:kms:REGION:ACCOUNT:key/.." or alias ARN: region and account. */
static int
kms_arn_parts (const char *key, char region[64], char account[32])
{
  if (strncmp (key, "arn:", 4) != 0)
    return 0;
  const char *p = strchr (key + 4, ':'); /* after the partition */
  if (!p || strncmp (p + 1, "kms:", 4) != 0)
    return 0;
  p += 5;
  size_t n = strcspn (p, ":");
  if (n == 0 || n >= 64 || p[n] != ':')
    return 0;
  snprintf (region, 64, "%.*s", (int) n, p);
  p += n + 1;
  n = strcspn (p, ":");
  if (n == 0 || n >= 32 || p[n] != ':')
    return 0;
  snprintf (account, 32, "%.*s", (int) n, p);
  return 1;
}

/* One key, with the target credentials in the target region.  Returns a
 * pallet status only for errors that are not findings (network ...). */
static int
kms_check_key (struct findings *f, const char *key, const char *vid)
{
  struct ec2 *s = f->s;
  char region[64], account[32];
  const char *tgt_acct = NULL;
  int st;
  if ((st = ec2_target_account (s, &tgt_acct)) != PALLET_OK)
    return st;
  if (kms_arn_parts (key, region, account)) {
    if (strcmp (region, s->target_region)) {
      finding (
          f, "error", "KMSKeyWrongRegion",
          "volume %s would be encrypted with KMS key %s, which is in region %s, not in the target region %s; KMS keys are regional: set target-kms-key-id to a key in %s",
          vid, key, region, s->target_region, s->target_region);
      return PALLET_OK;
    }
    if (strcmp (account, tgt_acct))
      finding (
          f, "warning", "KMSKeyOtherAccount",
          "KMS key %s belongs to account %s, not the target account %s; its key policy must let %s use it (kms:DescribeKey, CreateGrant, Decrypt, GenerateDataKeyWithoutPlaintext, ReEncrypt*)",
          key, account, tgt_acct, tgt_acct);
  }
  json_t *md = NULL;
  if (Pallet_aws_kms_describe_key (s->tgt, key, &md) < 0) {
    const struct Pallet_aws_error *e = Pallet_aws_last_error (s->tgt);
    const char *code = e && e->code ? e->code : "";
    if (!strcmp (code, "NotFoundException"))
      finding (
          f, "error", "KMSKeyNotFound",
          "volume %s would be encrypted with KMS key %s, which does not exist in account %s region %s (kms:DescribeKey: %s); create it there or set target-kms-key-id to a key that exists",
          vid, key, tgt_acct, s->target_region, e->message);
    else if (!strcmp (code, "AccessDeniedException") || (e && e->status == PALLET_E_AUTH))
      finding (
          f, "error", "KMSKeyAccessDenied",
          "the target credentials may not use KMS key %s (kms:DescribeKey: %s: %s); grant them kms:DescribeKey, kms:CreateGrant, kms:Decrypt and kms:GenerateDataKeyWithoutPlaintext on the key (IAM policy and key policy)",
          key, code, e ? e->message : "");
    else if (e && PALLET_STATUS_IS_RETRYABLE (e->status))
      return ec2_aws_fail (s, s->tgt, "checking the target KMS key (kms:DescribeKey)");
    else
      finding (f, "error", "KMSKeyCheckFailed", "checking KMS key %s failed: %s", key,
               Pallet_aws_errmsg (s->tgt));
    return PALLET_OK;
  }
  const char *state = ec2_str (md, "KeyState"), *arn = ec2_str (md, "Arn");
  const char *usage = ec2_str (md, "KeyUsage");
  const char *spec =
      *ec2_str (md, "KeySpec") ? ec2_str (md, "KeySpec") : ec2_str (md, "CustomerMasterKeySpec");
  if (!strcmp (state, "Disabled"))
    finding (
        f, "error", "KMSKeyDisabled",
        "KMS key %s (for volume %s) is disabled in the target; enable it (aws kms enable-key --key-id %s) or set target-kms-key-id to an enabled key",
        *arn ? arn : key, vid, *arn ? arn : key);
  else if (strcmp (state, "Enabled"))
    finding (
        f, "error", "KMSKeyNotUsable",
        "KMS key %s (for volume %s) is in state %s, not Enabled, so EBS cannot use it; pick an enabled key with target-kms-key-id",
        *arn ? arn : key, vid, *state ? state : "(none)");
  else if ((*usage && strcmp (usage, "ENCRYPT_DECRYPT"))
           || (*spec && strcmp (spec, "SYMMETRIC_DEFAULT")))
    finding (
        f, "error", "KMSKeyNotUsable",
        "KMS key %s (for volume %s) is a %s %s key; EBS needs a symmetric ENCRYPT_DECRYPT key: set target-kms-key-id to one",
        *arn ? arn : key, vid, spec, usage);
  else if (kms_arn_parts (arn, region, account) && strcmp (region, s->target_region))
    finding (
        f, "error", "KMSKeyWrongRegion",
        "KMS key %s (for volume %s) resolves to %s, in region %s, not the target region %s; set target-kms-key-id to a key in %s",
        key, vid, arn, region, s->target_region, s->target_region);
  json_decref (md);
  return PALLET_OK;
}

/* Each distinct key the target volumes will use, checked once. */
static int
kms_check (struct findings *f, const json_t *records)
{
  struct ec2 *s = f->s;
  json_t *seen = json_object ();
  size_t i;
  json_t *r;
  int st = PALLET_OK;
  json_array_foreach (records, i, r) {
    if (!ec2_bool (r, "encrypted"))
      continue;
    const char *key = s->target_kms_key;
    if (!key && !s->cross_account && !s->cross_region)
      key = ec2_str (r, "kmsKeyId"); /* same account and region: the source key */
    if (!key || !*key || json_object_get (seen, key))
      continue;
    json_object_set_new (seen, key, json_true ());
    if ((st = kms_check_key (f, key, ec2_str (r, "sourceVolumeId"))) != PALLET_OK)
      break;
  }
  json_decref (seen);
  return st;
}

/* ---- conversion-only plans: the existing PVCs ---- */

static int
conversion_pvcs (struct findings *f, const struct ec2_input *in, json_t *records)
{
  struct ec2 *s = f->s;
  const char *ns = ec2_str (in->plan, "targetNamespace");
  json_t *items = json_array ();
  char *msg = NULL;
  int st = ec2_list_pvcs (s, ns, in->vm_id, items, &msg);
  if (st == PALLET_E_TRANSIENT || st == PALLET_E_TIMEOUT) {
    pallet_error (s->call, st, "validate %s: %s", in->vm_id, msg ? msg : "listing PVCs failed");
    free (msg);
    json_decref (items);
    return st;
  }
  if (st != PALLET_OK) {
    finding (f, "error",
             st == PALLET_E_AUTH                     ? "KubeCredentialsRejected"
             : !s->kube_api_url && !s->pvc_list_file ? "ConversionPVCSourceMissing"
                                                     : "ConversionPVCListFailed",
             "%s", msg ? msg : "listing PVCs failed");
    free (msg);
    json_decref (items);
    return PALLET_OK;
  }
  const char *code = NULL;
  char *err = NULL;
  if (Pallet_ec2_conversion_pvcs (items, in->vm_id, ns, records, &code, &err) != PALLET_OK)
    finding (f, "error", code ? code : "ConversionPVCInvalid", "%s", err ? err : "out of memory");
  else if (!json_is_true (json_object_get (in->plan, "skipGuestConversion"))) {
    size_t i;
    json_t *r;
    json_array_foreach (records, i, r)
      if (strcmp (ec2_str (r, "pvcVolumeMode"), "Block"))
        finding (
            f, "error", "ConversionPVCNotBlock",
            "PVC %s/%s (disk %lld) has volumeMode %s; the conversion Pod attaches disks as block devices: use volumeMode: Block PVCs, or set skipGuestConversion",
            ns, ec2_str (r, "pvcName"), ec2_int (r, "diskIndex", 0), ec2_str (r, "pvcVolumeMode"));
  }
  free (err);
  json_decref (items);
  return PALLET_OK;
}

/* Credentials (STS), source then target: *src_acct, or a finding and the
 * status that stops validation. */
static int
check_accounts (struct findings *f, const char **src_acct)
{
  struct ec2 *s = f->s;
  const char *tgt_acct;
  int st;
  if ((st = ec2_source_account (s, src_acct)) != PALLET_OK) {
    /* Only an auth failure is about the credentials; TLS, timeouts and
     * throttling are reported as what they are (the error says which). */
    if (st == PALLET_E_AUTH)
      finding (f, "error", "CredentialsRejected",
               "the source credentials were not accepted: see the error");
    else
      finding (f, "error", "SourceUnreachable",
               "STS GetCallerIdentity with the source credentials failed: see the error");
    return st;
  }
  if (!s->cross_account)
    return PALLET_OK;
  if ((st = ec2_target_account (s, &tgt_acct)) != PALLET_OK) {
    if (st == PALLET_E_AUTH)
      finding (f, "error", "TargetCredentialsRejected",
               "the target account's credentials were not accepted");
    else
      finding (f, "error", "TargetUnreachable",
               "STS GetCallerIdentity with the target credentials failed: see the error");
    return st;
  }
  if (!strcmp (*src_acct, tgt_acct))
    finding (
        f, "error", "TargetAccountIsSource",
        "the target credentials belong to the source account %s; drop targetAccessKeyId/targetSecretAccessKey for a same-account migration",
        *src_acct);
  return PALLET_OK;
}

/* Region and target zone. */
static int
check_zone (struct findings *f, int conversion)
{
  struct ec2 *s = f->s;
  int exists = 0, st;
  if ((st = zone_exists (s, s->tgt, *s->target_az ? s->target_az : "*", &exists)) != PALLET_OK)
    return st;
  if (!*s->target_az && conversion)
    ; /* the PVCs are wherever they are */
  else if (!*s->target_az)
    finding (
        f, "error", "TargetZoneMissing",
        "the provider has no target-az setting; set spec.settings.target-az to the zone of the cluster's worker nodes (kubectl get nodes -L topology.kubernetes.io/zone)");
  else if (!exists)
    finding (
        f, "error", "TargetZoneNotFound",
        "target-az %s is not a zone of region %s; pick one listed by aws ec2 describe-availability-zones --region %s",
        s->target_az, s->target_region, s->target_region);
  return PALLET_OK;
}

/* The EBS volumes of the block devices, appended to vols. */
static int
describe_volumes (struct ec2 *s, const json_t *bdms, json_t *vols)
{
  if (json_array_size (bdms) == 0)
    return PALLET_OK;
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  size_t i;
  json_t *b;
  int n = 0;
  json_array_foreach (bdms, i, b) {
    if (!*ec2_str (b, "volumeId"))
      continue;
    char key[32];
    snprintf (key, sizeof key, "VolumeId.%d", ++n);
    Pallet_aws_params_add (p, key, ec2_str (b, "volumeId"));
  }
  int r = Pallet_aws_ec2_describe_volumes (s->src, p, collect_all, vols);
  Pallet_aws_params_free (p);
  return r < 0 ? ec2_aws_fail (s, s->src, "describing the instance's volumes") : PALLET_OK;
}

/* Volume records in BlockDeviceMapping order (disk index = position), with
 * the storage findings of a plan that creates volumes. */
static json_t *
volume_records (struct findings *f, const struct ec2_input *in, const json_t *facts,
                const json_t *vols, int conversion)
{
  struct ec2 *s = f->s;
  json_t *records = json_array ();
  size_t i;
  json_t *b;
  const char *root = ec2_str (facts, "rootDeviceName");
  json_array_foreach (json_object_get (facts, "blockDevices"), i, b) {
    const char *vid = ec2_str (b, "volumeId");
    size_t j;
    json_t *v, *vol = NULL;
    json_array_foreach (vols, j, v)
      if (!strcmp (ec2_str (v, "volumeId"), vid))
        vol = v;
    if (!vol)
      continue;
    const char *vtype = ec2_str (vol, "volumeType");
    json_t *rec = json_pack (
        "{s:s,s:s,s:I,s:s,s:b,s:I,s:b}", "sourceVolumeId", vid, "deviceName",
        ec2_str (b, "deviceName"), "sizeGiB", (json_int_t) ec2_int (vol, "size", 0), "volumeType",
        vtype, "encrypted", ec2_bool (vol, "encrypted"), "diskIndex",
        (json_int_t) json_array_size (records), "boot", !strcmp (ec2_str (b, "deviceName"), root));
    long long iops = ec2_int (vol, "iops", 0), tput = ec2_int (vol, "throughput", 0);
    if (iops > 0)
      json_object_set_new (rec, "iops", json_integer (iops));
    if (tput > 0)
      json_object_set_new (rec, "throughput", json_integer (tput));
    if (*ec2_str (vol, "kmsKeyId"))
      json_object_set_new (rec, "kmsKeyId", json_string (ec2_str (vol, "kmsKeyId")));
    json_array_append_new (records, rec);
    if (conversion)
      continue; /* nothing is created in AWS or in storage */
    if (!map_covers (json_object_get (in->plan, "storageMap"), vtype))
      finding (
          f, "error", "StorageNotMapped",
          "volume %s has type %s, which the StorageMap does not map; add a map entry with source.name: %s",
          vid, vtype, vtype);
    if (ec2_bool (vol, "encrypted") && (s->cross_account || s->cross_region) && !s->target_kms_key)
      finding (
          f, "error", "EncryptedVolumeNeedsTargetKey",
          "volume %s is encrypted with %s; a %s migration needs a KMS key usable in the target: set target-kms-key-id (and share the source key with the target account)",
          vid,
          *ec2_str (vol, "kmsKeyId") ? ec2_str (vol, "kmsKeyId") : "the account's default EBS key",
          s->cross_account ? "cross-account" : "cross-region");
  }
  return records;
}

/* What the records need beyond AWS: the existing PVCs of a conversion-only
 * plan, or the KMS keys of a snapshot-mode one. */
static int
check_records (struct findings *f, struct ec2_input *in, json_t *state, json_t *records,
               int conversion)
{
  struct ec2 *s = f->s;
  int st = PALLET_OK;
  if (conversion && json_array_size (records) > 0) {
    if ((st = conversion_pvcs (f, in, records)) != PALLET_OK)
      return st;
    json_object_set_new (state, "conversionOnly", json_true ());
    if (*s->target_az)
      json_object_set_new (state, "targetAZ", json_string (s->target_az));
  }
  else if (!conversion) {
    const char *why = "";
    if (ec2_copy_mode_wanted (s, in->plan, &why) == 0)
      st = kms_check (f, records);
  }
  return st;
}

/* Networks: every ENI's subnet must be mapped. */
static void
check_networks (struct findings *f, const struct ec2_input *in, const json_t *facts)
{
  size_t i;
  json_t *nic;
  json_array_foreach (json_object_get (facts, "networkInterfaces"), i, nic) {
    const char *subnet = ec2_str (nic, "subnetId");
    if (*subnet && !map_covers (json_object_get (in->plan, "networkMap"), subnet))
      finding (
          f, "error", "NetworkNotMapped",
          "network interface %s is on subnet %s, which the NetworkMap does not map; add a map entry with source.id: %s",
          ec2_str (nic, "networkInterfaceId"), subnet, subnet);
  }
}

static int
collect_name (void *opaque, json_t *item, const json_t *context)
{
  (void) context;
  json_t *names = opaque;
  const json_t *t;
  size_t i;
  json_array_foreach (json_object_get (item, "tagSet"), i, t)
    if (!strcmp (ec2_str (t, "key"), "Name"))
      json_object_set_new (names, ec2_str (item, "instanceId"), json_string (ec2_str (t, "value")));
  return 0;
}

/* Looks up, in one DescribeInstances, the Name tags of the plan's VMs
 * given by id that no earlier validate of this handle looked up (a
 * filter: a missing id is the other VM's own validate finding). */
static void
look_up_names (struct ec2 *s, const json_t *vms)
{
  const json_t *vm;
  size_t i, n = 0;
  const char **ids = calloc (json_array_size (vms) + 1, sizeof *ids);
  json_array_foreach (vms, i, vm)
    if (*ec2_str (vm, "id") && !*ec2_str (vm, "targetName")
        && !json_object_get (s->source_names, ec2_str (vm, "id")))
      ids[n++] = ec2_str (vm, "id");
  struct Pallet_aws_params *p = n > 0 ? Pallet_aws_params_new () : NULL;
  if (p && Pallet_aws_params_add_filter (p, "instance-id", ids, n) == 0) {
    json_t *names = json_object ();
    if (Pallet_aws_ec2_describe_instances (s->src, p, collect_name, names) == 0)
      for (size_t k = 0; k < n; k++) {
        json_t *nm = json_object_get (names, ids[k]);
        json_object_set_new (s->source_names, ids[k], nm ? json_incref (nm) : json_null ());
      }
    json_decref (names);
  }
  Pallet_aws_params_free (p);
  free (ids);
}

/* A copy of the plan whose vms[] entries given by id carry their
 * instance's Name tag as sourceName, so two instances whose Names clean
 * up to the same label are told apart. */
static json_t *
plan_with_names (struct ec2 *s, const json_t *plan)
{
  json_t *copy = json_deep_copy (plan), *vms = json_object_get (copy, "vms"), *vm;
  size_t i;
  if (json_array_size (vms) < 2)
    return copy;
  look_up_names (s, vms);
  json_array_foreach (vms, i, vm) {
    json_t *nm = json_object_get (s->source_names, ec2_str (vm, "id"));
    if (json_is_string (nm) && !*ec2_str (vm, "targetName"))
      json_object_set (vm, "sourceName", nm);
  }
  return copy;
}

static void
check_target_name (struct findings *f, const struct ec2_input *in, json_t *state)
{
  char *name = NULL, *err = NULL;
  json_t *notes = json_array ();
  json_t *plan = plan_with_names (f->s, in->plan);
  /* Chosen afresh here; later steps keep what validate recorded. */
  json_object_del (state, "targetName");
  if (Pallet_ec2_vm_name (plan, in->vm, state, notes, &name, &err) != PALLET_OK)
    finding (f, "error", "TargetNameInvalid", "%s", err ? err : "no valid target name");
  else {
    size_t i;
    json_t *note;
    json_array_foreach (notes, i, note)
      finding (f, "info", "TargetNameSanitised", "%s", json_string_value (note));
    json_object_set_new (state, "targetName", json_string (name));
  }
  free (name);
  free (err);
  json_decref (notes);
  json_decref (plan);
}

/* Which transfer mode this VM gets, and why (or the bad setting). */
static void
check_transfer_mode (struct findings *f, const struct ec2_input *in)
{
  const char *why = "";
  int mode = ec2_copy_mode_wanted (f->s, in->plan, &why);
  if (mode < 0)
    finding (f, "error", "TransferModeInvalid", "%s", why);
  else
    finding (f, "info", "TransferMode", "transfer mode %s: %s", mode ? "copy" : "zero copy", why);
}

/* The plan's Pod fields (convertor*, transferNetwork, serviceAccount),
 * checked here so a bad one fails before anything is touched. */
static void
check_pod_fields (struct findings *f, const struct ec2_input *in)
{
  const json_t *spec = json_object_get (in->plan, "spec");
  const char *zone =
      *f->s->target_az && !json_is_true (json_object_get (spec, "skipZoneNodeSelector"))
          ? f->s->target_az
          : NULL;
  char *err = NULL;
  if (Pallet_ec2_pod_fields_check (in->plan, zone, &err) != PALLET_OK)
    finding (f, "error", "PodFieldsInvalid", "%s", err ? err : "out of memory");
  free (err);
}

/* The plan's pallet.dev/ annotations, verify-boot and the first-boot
 * scripts: bad names and values fail validation; where they would not
 * take effect, a warning says so. */
static void
check_guest_options (struct findings *f, const struct ec2_input *in, int conversion)
{
  char why[1024];
  const char *how = "";
  int mode;
  unsigned timeout;
  size_t nscripts = 0;
  int skip = json_is_true (json_object_get (in->plan, "skipGuestConversion"));

  if (ec2_annotations_check (in->plan, why, sizeof why) == -1)
    finding (f, "error", "PlanAnnotationUnknown", "%s", why);
  if (ec2_boot_settings (f->s, in->plan, &mode, &timeout, why, sizeof why) == -1)
    finding (f, "error", "VerifyBootInvalid", "%s", why);
  if (ec2_scripts_check (f->s, in->plan, &nscripts, why, sizeof why) == -1)
    finding (f, "error", "CustomizationScriptsInvalid", "%s", why);
  else if (nscripts > 0 && skip)
    finding (f, "warning", "CustomizationScriptsNotRun",
             "the plan sets skipGuestConversion: its %zu customization script%s will not be "
             "installed in the guest",
             nscripts, nscripts == 1 ? "" : "s");
  /* Only disks this host holds (copy mode) are converted and booted here. */
  int copy = conversion ? 0 : ec2_copy_mode_wanted (f->s, in->plan, &how);
  /* In cluster mode the host checks the boot itself, on the VM it started
   * (build_vm's pallet.dev/verify-boot annotations). */
  int host_boots = ec2_cluster_applies (f->s);
  if (copy == 0 && (nscripts > 0 || (mode > PALLET_CONVERT_BOOT_OFF && !host_boots)))
    finding (f, "warning", "GuestOptionsNeedCopyMode",
             "verify-boot and customization scripts apply to disks this host converts "
             "(transfer-mode: copy); %s the conversion runs in the cluster without them",
             conversion ? "in a conversion-only plan" : "in zero copy mode");
}

static void
check_migration_type (struct findings *f, const struct ec2_input *in)
{
  const char *ptype = ec2_str (in->plan, "type");
  const char *why = "";
  if (!strcmp (ptype, "warm")) {
    if (ec2_copy_mode_wanted (f->s, in->plan, &why) != 1)
      finding (f, "error", "WarmNeedsCopyMode", "%s", EC2_WARM_NEEDS_COPY);
  }
  else if (*ptype && strcmp (ptype, "cold") && strcmp (ptype, "conversion"))
    finding (f, "error", "MigrationTypeNotSupported",
             "plan type %s is not supported by provider ec2; use type: cold or warm", ptype);
}

int
ec2_validate (void *handle, struct pallet_call *call, const char *input_json)
{
  struct ec2 *s = handle;
  struct ec2_input in;
  ec2_begin (s, call);
  if (ec2_input_parse (s, "validate", input_json, &in) < 0)
    return PALLET_E_INVALID;
  struct findings f = { s, in.vm_id ? in.vm_id : in.vm_name, 0 };
  int st;
  json_t *inst = NULL, *vols = NULL, *state = json_deep_copy (in.state);
  const char *src_acct;
  int conversion = ec2_plan_is_conversion (in.plan);
  if ((st = check_accounts (&f, &src_acct)) != PALLET_OK
      || (st = check_zone (&f, conversion)) != PALLET_OK)
    goto out;

  /* The instance. */
  st = ec2_describe_instance (s, in.vm_id, in.vm_name, &inst);
  if (st == PALLET_E_NOT_FOUND) {
    finding (&f, "error", "InstanceNotFound", "instance %s was not found in region %s",
             in.vm_id ? in.vm_id : in.vm_name, s->region);
    st = PALLET_OK;
    goto out;
  }
  if (st != PALLET_OK)
    goto out;
  const char *istate = ec2_str (json_object_get (inst, "instanceState"), "name");
  if (!strcmp (istate, "terminated") || !strcmp (istate, "shutting-down"))
    finding (&f, "error", "InstanceTerminated", "instance %s is %s and cannot be migrated",
             ec2_str (inst, "instanceId"), istate);
  const json_t *itype = NULL;
  if ((st = ec2_instance_type (s, ec2_str (inst, "instanceType"), &itype)) != PALLET_OK)
    goto out;
  json_t *facts = ec2_instance_facts (inst, itype);
  json_object_set_new (state, "instance", facts);
  if (!in.vm_id)
    in.vm_id = ec2_str (facts, "instanceId");
  f.vm = in.vm_id;

  /* Storage: only EBS moves.  Instance store is named. */
  long long store = ec2_int (itype, "instanceStoreGiB", 0);
  if (store > 0)
    finding (
        &f, !strcmp (s->instance_store, "error") ? "error" : "warning", "InstanceStoreNotMigrated",
        "instance type %s has %lld GB of instance store; its data is not migrated (set instance-store: warn to accept, error to refuse)",
        ec2_str (inst, "instanceType"), store);
  json_t *bdms = json_object_get (facts, "blockDevices");
  if (json_array_size (bdms) == 0)
    finding (&f, "error", "NoEBSVolumes",
             "instance %s has no EBS volumes; there is nothing to migrate", in.vm_id);
  vols = json_array ();
  if ((st = describe_volumes (s, bdms, vols)) != PALLET_OK)
    goto out;
  json_t *records = volume_records (&f, &in, facts, vols, conversion);
  if ((st = check_records (&f, &in, state, records, conversion)) != PALLET_OK) {
    json_decref (records);
    goto out;
  }
  json_object_set_new (state, "volumes", records);
  check_networks (&f, &in, facts);
  check_target_name (&f, &in, state);
  check_migration_type (&f, &in);
  check_pod_fields (&f, &in);
  if (!conversion)
    check_transfer_mode (&f, &in);
  check_guest_options (&f, &in, conversion);

  json_object_set_new (state, "sourceAccount", json_string (src_acct));
  if (*in.migration_uid)
    json_object_set_new (state, "migrationUID", json_string (in.migration_uid));
  st = PALLET_OK;
out:
  if (st == PALLET_OK && f.errors) {
    pallet_error (call, PALLET_E_INVALID, "validate %s: %d rule%s failed; see the findings", f.vm,
                  f.errors, f.errors == 1 ? "" : "s");
    st = PALLET_E_INVALID;
  }
  else if (st == PALLET_OK)
    ec2_emit_state (s, state);
  json_decref (inst);
  json_decref (vols);
  json_decref (state);
  ec2_input_free (&in);
  return st;
}
