/* SPDX-License-Identifier: Apache-2.0 */
/* provider-ec2: AWS EC2 -> KubeVirt.  The vtable, the session, and the
 * helpers every op shares. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "ec2.h"
#include "pallet-kube.h"
#include "pallet-convert.h"

/* ---- JSON helpers ---- */

const char *
ec2_str (const json_t *o, const char *key)
{
  const char *v = json_string_value (json_object_get (o, key));
  return v ? v : "";
}

/* Levenshtein distance, for "did you mean"; 99 for names of 32 bytes or more. */
size_t
ec2_edit_distance (const char *a, const char *b)
{
  size_t n = strlen (b), row[32];
  if (n >= 32 || strlen (a) >= 32)
    return 99;
  for (size_t j = 0; j <= n; j++)
    row[j] = j;
  for (size_t i = 1; a[i - 1]; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= n; j++) {
      size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      if (up + 1 < best)
        best = up + 1;
      diag = up;
      row[j] = best;
    }
  }
  return row[n];
}

long long
ec2_int (const json_t *o, const char *key, long long def)
{
  return Pallet_aws_json_int (o, key, def);
}

int
ec2_bool (const json_t *o, const char *key)
{
  json_t *v = json_object_get (o, key);
  if (json_is_boolean (v))
    return json_is_true (v);
  return json_is_string (v) && strcmp (json_string_value (v), "true") == 0;
}

/* ---- Calls ---- */

static void
aws_log (void *opaque, int level, const char *msg)
{
  struct ec2 *s = opaque;
  if (s->call)
    pallet_log (s->call, level, "%s", msg);
}

static int
aws_cancelled (void *opaque)
{
  struct ec2 *s = opaque;
  return s->call ? pallet_cancelled (s->call) : 0;
}

/* The cluster the host applies to, unless the settings name one: then
 * the StorageClasses (transfer mode) and PVCs (conversion-only plans) are
 * read where the objects will go, with no second configuration. */
static char *
host_param_dup (struct pallet_call *call, const char *key)
{
  const char *v = call->host->get_param (call, key);
  return v ? strdup (v) : NULL;
}

static void
adopt_host_cluster (struct ec2 *s, struct pallet_call *call)
{
  if (s->kube_api_url || !call->host->get_param)
    return;
  const char *url = call->host->get_param (call, "cluster.api-url");
  if (!url || !*url)
    return;
  s->host_cluster.api_url = host_param_dup (call, "cluster.api-url");
  s->host_cluster.token = host_param_dup (call, "cluster.token");
  s->host_cluster.ca_pem = host_param_dup (call, "cluster.ca-pem");
  s->host_cluster.ca_file = host_param_dup (call, "cluster.ca-file");
  s->host_cluster.client_cert_pem = host_param_dup (call, "cluster.client-cert-pem");
  s->host_cluster.client_key_pem = host_param_dup (call, "cluster.client-key-pem");
  s->host_cluster.source = host_param_dup (call, "cluster.source");
  const char *insecure = call->host->get_param (call, "cluster.insecure-skip-verify");
  s->kube_api_url = s->host_cluster.api_url;
  s->kube_token = s->host_cluster.token;
  s->kube_ca_pem = s->host_cluster.ca_pem;
  s->kube_ca_file = s->host_cluster.ca_file;
  s->kube_client_cert_pem = s->host_cluster.client_cert_pem;
  s->kube_client_key_pem = s->host_cluster.client_key_pem;
  s->kube_source = s->host_cluster.source ? s->host_cluster.source : "the host's cluster";
  s->kube_insecure = insecure && !strcmp (insecure, "true");
}

/* Frees a copy that held a credential, wiping it first. */
static void
free_secret (char *v)
{
  if (v)
    OPENSSL_cleanse (v, strlen (v));
  free (v);
}

void
ec2_begin (struct ec2 *s, struct pallet_call *call)
{
  s->call = call;
  adopt_host_cluster (s, call);
}

int
ec2_cluster_applies (const struct ec2 *s)
{
  const struct pallet_call *call = s->call;
  const char *v = call && call->host->get_param
                      ? call->host->get_param ((struct pallet_call *) call, "cluster.apply")
                      : NULL;
  return v && !strcmp (v, "true");
}

void
ec2_kube_config (const struct ec2 *s, struct Pallet_kube_config *kc)
{
  *kc = (struct Pallet_kube_config){
    .api_url = s->kube_api_url,
    .token = s->kube_token,
    .ca_file = s->kube_ca_file,
    .ca_pem = s->kube_ca_pem,
    .insecure = s->kube_insecure,
    .client_cert_pem = s->kube_client_cert_pem,
    .client_key_pem = s->kube_client_key_pem,
    .url_source = s->kube_source,
    .token_source = s->kube_source,
    .ca_source = s->kube_source,
  };
}

int
ec2_aws_fail (struct ec2 *s, struct Pallet_aws_client *c, const char *what)
{
  const struct Pallet_aws_error *e = Pallet_aws_last_error (c);
  int st = e && e->status ? e->status : PALLET_E_FAILED;
  pallet_error (s->call, st, "%s: %s", what, Pallet_aws_errmsg (c));
  return st;
}

int
ec2_emit_state (struct ec2 *s, json_t *state)
{
  char *t = json_dumps (state, JSON_COMPACT | JSON_SORT_KEYS);
  if (!t) {
    pallet_error (s->call, PALLET_E_NOMEM, "ec2: out of memory serialising the VM state");
    return -1;
  }
  int r = pallet_emit (s->call, PALLET_EMIT_STATE, t);
  free (t);
  return r;
}

int
ec2_emit_item (struct ec2 *s, json_t *item)
{
  char *t = item ? json_dumps (item, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref (item);
  if (!t) {
    pallet_error (s->call, PALLET_E_NOMEM, "ec2: out of memory serialising an output item");
    return -1;
  }
  int r = pallet_emit (s->call, PALLET_EMIT_ITEM, t);
  free (t);
  return r;
}

int
ec2_input_parse (struct ec2 *s, const char *op, const char *input_json, struct ec2_input *in)
{
  memset (in, 0, sizeof *in);
  json_error_t jerr;
  if (!input_json) {
    pallet_error (s->call, PALLET_E_INVALID, "ec2 %s: no input JSON given", op);
    return -1;
  }
  in->root = json_loads (input_json, JSON_REJECT_DUPLICATES, &jerr);
  if (!in->root) {
    pallet_error (s->call, PALLET_E_INVALID,
                  "ec2 %s: the input is not valid JSON (line %d, column %d: %s); "
                  "pass {\"plan\":{...},\"vm\":{...},\"state\":{...}}",
                  op, jerr.line, jerr.column, jerr.text);
    return -1;
  }
  if (!json_is_object (in->root)) {
    pallet_error (s->call, PALLET_E_INVALID, "ec2 %s: the input must be a JSON object", op);
    goto bad;
  }
  in->plan = json_object_get (in->root, "plan");
  in->vm = json_object_get (in->root, "vm");
  in->state = json_object_get (in->root, "state");
  in->options = json_object_get (in->root, "options");
  if (!json_is_object (in->plan)) {
    pallet_error (s->call, PALLET_E_INVALID,
                  "ec2 %s: input.plan: expected an object (the normalized plan)", op);
    goto bad;
  }
  if (!json_is_object (in->vm)) {
    pallet_error (s->call, PALLET_E_INVALID,
                  "ec2 %s: input.vm: expected an object with \"id\" or \"name\"", op);
    goto bad;
  }
  if (in->state && !json_is_null (in->state) && !json_is_object (in->state)) {
    pallet_error (s->call, PALLET_E_INVALID,
                  "ec2 %s: input.state: expected an object (or {} at first)", op);
    goto bad;
  }
  if (in->options && !json_is_null (in->options) && !json_is_object (in->options)) {
    pallet_error (s->call, PALLET_E_INVALID, "ec2 %s: input.options: expected an object", op);
    goto bad;
  }
  json_t *id = json_object_get (in->vm, "id"), *name = json_object_get (in->vm, "name");
  if (json_is_null (id))
    id = NULL;
  if (json_is_null (name))
    name = NULL;
  if ((id && !json_is_string (id)) || (name && !json_is_string (name))
      || (!json_is_string (id) && !json_is_string (name))) {
    pallet_error (
        s->call, PALLET_E_INVALID,
        "ec2 %s: input.vm: needs \"id\" (an instance id, i-...) or \"name\" (its Name tag) as a string",
        op);
    goto bad;
  }
  in->vm_id = json_string_value (id);
  in->vm_name = json_string_value (name);
  if (in->vm_id && strncmp (in->vm_id, "i-", 2) != 0) {
    pallet_error (
        s->call, PALLET_E_INVALID,
        "ec2 %s: vm id \"%.80s\" is not an EC2 instance id; use the form i-0123456789abcdef0", op,
        in->vm_id);
    goto bad;
  }
  /* State may name the instance once validate found it by name. */
  if (!in->vm_id && json_is_object (in->state)) {
    const char *sid = ec2_str (json_object_get (in->state, "instance"), "instanceId");
    if (*sid)
      in->vm_id = sid;
  }
  in->migration_uid = ec2_str (in->options, "migrationUID");
  if (!*in->migration_uid)
    in->migration_uid = ec2_str (in->state, "migrationUID");
  in->plan_uid = ec2_str (in->plan, "uid");
  if (!*in->plan_uid)
    in->plan_uid = ec2_str (in->plan, "name");
  in->rollback = ec2_bool (in->options, "rollback");
  in->succeeded = ec2_bool (in->options, "succeeded");
  if (!in->state || json_is_null (in->state)) {
    in->state = json_object ();
    json_object_set_new (in->root, "state", in->state);
  }
  return 0;
bad:
  json_decref (in->root);
  in->root = NULL;
  return -1;
}

void
ec2_input_free (struct ec2_input *in)
{
  json_decref (in->root);
  memset (in, 0, sizeof *in);
}

/* ---- Accounts, instances, instance types ---- */

static int
account_of (struct ec2 *s, struct Pallet_aws_client *c, char **cache, const char **out,
            const char *which)
{
  if (!*cache) {
    json_t *id = NULL;
    if (Pallet_aws_sts_get_caller_identity (c, &id) < 0) {
      char what[96];
      snprintf (what, sizeof what, "checking the %s credentials with STS GetCallerIdentity", which);
      return ec2_aws_fail (s, c, what);
    }
    *cache = strdup (ec2_str (id, "Account"));
    json_decref (id);
    if (!*cache)
      return PALLET_E_NOMEM;
  }
  *out = *cache;
  return PALLET_OK;
}

int
ec2_source_account (struct ec2 *s, const char **out)
{
  return account_of (s, s->src, &s->source_account, out, "source");
}

int
ec2_target_account (struct ec2 *s, const char **out)
{
  if (!s->cross_account)
    return ec2_source_account (s, out);
  return account_of (s, s->tgt, &s->target_account, out, "target");
}

static int
collect_one (void *opaque, json_t *item, const json_t *context)
{
  (void) context;
  json_t **slot = opaque;
  if (!*slot) {
    json_incref (item);
    *slot = item;
  }
  return 0;
}

int
ec2_describe_instance (struct ec2 *s, const char *id, const char *name, json_t **out)
{
  *out = NULL;
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  if (!p)
    return PALLET_E_NOMEM;
  if (id)
    Pallet_aws_params_add (p, "InstanceId.1", id);
  else {
    const char *v[] = { name };
    Pallet_aws_params_add_filter (p, "tag:Name", v, 1);
  }
  int r = Pallet_aws_ec2_describe_instances (s->src, p, collect_one, out);
  Pallet_aws_params_free (p);
  if (r < 0) {
    const struct Pallet_aws_error *e = Pallet_aws_last_error (s->src);
    if (e && e->code && strcmp (e->code, "InvalidInstanceID.Malformed") == 0) {
      pallet_error (s->call, PALLET_E_INVALID,
                    "instance id %s is malformed (%s); use the form i-0123456789abcdef0", id,
                    e->message);
      return PALLET_E_INVALID;
    }
    if (e && e->code && strncmp (e->code, "InvalidInstanceID", 17) == 0) {
      pallet_error (
          s->call, PALLET_E_NOT_FOUND,
          "instance %s not found in region %s (%s); check the plan's vm id and the provider's region",
          id, s->region, e->code);
      return PALLET_E_NOT_FOUND;
    }
    return ec2_aws_fail (s, s->src, "describing the instance");
  }
  if (!*out) {
    pallet_error (
        s->call, PALLET_E_NOT_FOUND,
        "instance %s%s%s not found in region %s; check the plan's vm entry and the provider's region",
        id ? id : "named \"", id ? "" : name, id ? "" : "\"", s->region);
    return PALLET_E_NOT_FOUND;
  }
  return PALLET_OK;
}

int
ec2_instance_type (struct ec2 *s, const char *type, const json_t **out)
{
  json_t *cached = json_object_get (s->itypes, type);
  if (cached) {
    *out = cached;
    return PALLET_OK;
  }
  json_t *it = NULL;
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  if (!p)
    return PALLET_E_NOMEM;
  Pallet_aws_params_add (p, "InstanceType.1", type);
  int r = Pallet_aws_ec2_describe_instance_types (s->src, p, collect_one, &it);
  Pallet_aws_params_free (p);
  if (r < 0)
    return ec2_aws_fail (s, s->src, "describing the instance type");
  if (!it) {
    pallet_error (s->call, PALLET_E_NOT_FOUND,
                  "instance type %s is unknown to DescribeInstanceTypes in %s; cannot size the VM",
                  type, s->region);
    return PALLET_E_NOT_FOUND;
  }
  json_t *bm = json_object_get (it, "supportedBootModes");
  json_t *facts = json_pack (
      "{s:I,s:I,s:I,s:O}", "vcpus",
      (json_int_t) ec2_int (json_object_get (it, "vCpuInfo"), "defaultVCpus", 0), "memoryMiB",
      (json_int_t) ec2_int (json_object_get (it, "memoryInfo"), "sizeInMiB", 0), "instanceStoreGiB",
      (json_int_t) ec2_int (json_object_get (it, "instanceStorageInfo"), "totalSizeInGB", 0),
      "supportedBootModes", json_is_array (bm) ? bm : json_array ());
  json_decref (it);
  if (!facts)
    return PALLET_E_NOMEM;
  json_object_set_new (s->itypes, type, facts);
  *out = facts;
  return PALLET_OK;
}

const char *
ec2_power_state (const char *state_name)
{
  if (!strcmp (state_name, "running") || !strcmp (state_name, "pending"))
    return "On";
  if (!strcmp (state_name, "stopped") || !strcmp (state_name, "stopping")
      || !strcmp (state_name, "shutting-down") || !strcmp (state_name, "terminated"))
    return "Off";
  return "Unknown";
}

static json_t *
tags_object (const json_t *tagset)
{
  json_t *o = json_object ();
  size_t i;
  json_t *t;
  json_array_foreach (tagset, i, t)
    json_object_set_new (o, ec2_str (t, "key"), json_string (ec2_str (t, "value")));
  return o;
}

json_t *
ec2_instance_facts (const json_t *inst, const json_t *itype)
{
  json_t *tags = tags_object (json_object_get (inst, "tagSet"));
  const char *state = ec2_str (json_object_get (inst, "instanceState"), "name");
  const char *platform = ec2_str (inst, "platform");
  json_t *f = json_pack (
      "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o}", "instanceId",
      ec2_str (inst, "instanceId"), "name", ec2_str (tags, "Name"), "instanceType",
      ec2_str (inst, "instanceType"), "state", state, "powerState", ec2_power_state (state),
      "platform", *platform ? platform : "linux", "bootMode", ec2_str (inst, "bootMode"),
      "availabilityZone", ec2_str (json_object_get (inst, "placement"), "availabilityZone"),
      "vpcId", ec2_str (inst, "vpcId"), "subnetId", ec2_str (inst, "subnetId"), "rootDeviceName",
      ec2_str (inst, "rootDeviceName"), "tags", tags);
  if (!f)
    return NULL;
  if (itype) {
    json_object_set (f, "vcpus", json_object_get (itype, "vcpus"));
    json_object_set (f, "memoryMiB", json_object_get (itype, "memoryMiB"));
    json_object_set (f, "instanceStoreGiB", json_object_get (itype, "instanceStoreGiB"));
    json_object_set (f, "supportedBootModes", json_object_get (itype, "supportedBootModes"));
  }
  json_t *nics = json_array ();
  size_t i;
  json_t *n;
  json_array_foreach (json_object_get (inst, "networkInterfaceSet"), i, n) {
    json_array_append_new (nics, json_pack ("{s:s,s:I,s:s,s:s,s:s,s:s}", "networkInterfaceId",
                                            ec2_str (n, "networkInterfaceId"), "deviceIndex",
                                            (json_int_t) ec2_int (json_object_get (n, "attachment"),
                                                                  "deviceIndex", (long long) i),
                                            "macAddress", ec2_str (n, "macAddress"), "subnetId",
                                            ec2_str (n, "subnetId"), "vpcId", ec2_str (n, "vpcId"),
                                            "privateIpAddress", ec2_str (n, "privateIpAddress")));
  }
  json_object_set_new (f, "networkInterfaces", nics);
  json_t *bdms = json_array ();
  json_array_foreach (json_object_get (inst, "blockDeviceMapping"), i, n) {
    json_t *ebs = json_object_get (n, "ebs");
    json_array_append_new (bdms, json_pack ("{s:s,s:s}", "deviceName", ec2_str (n, "deviceName"),
                                            "volumeId", ec2_str (ebs, "volumeId")));
  }
  json_object_set_new (f, "blockDevices", bdms);
  return f;
}

uint32_t
ec2_poll_ms_from (json_t *state, const char *counter, uint32_t min_ms)
{
  /* min_ms, then half as long again each poll, up to 30 s: the count
   * lives in the state, so a resumed wait does not start from the bottom. */
  long long n = ec2_int (state, counter, 0);
  json_object_set_new (state, counter, json_integer (n + 1));
  uint32_t ms = min_ms;
  for (long long i = 0; i < n && ms < EC2_POLL_MAX_MS; i++)
    ms = ms * 3 / 2;
  return ms > EC2_POLL_MAX_MS ? EC2_POLL_MAX_MS : ms;
}

uint32_t
ec2_poll_ms (json_t *state, const char *counter)
{
  return ec2_poll_ms_from (state, counter, EC2_POLL_MIN_MS);
}

void
ec2_client_token (const char *migration_uid, const char *key, char out[65])
{
  unsigned char md[32];
  unsigned int len = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  if (ctx && EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL)
      && EVP_DigestUpdate (ctx, migration_uid, strlen (migration_uid))
      && EVP_DigestUpdate (ctx, "\n", 1) && EVP_DigestUpdate (ctx, key, strlen (key))
      && EVP_DigestFinal_ex (ctx, md, &len)) {
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
      out[2 * i] = hex[md[i] >> 4];
      out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
  }
  else
    Pallet_aws_uuid (out); /* still unique, only not stable across crashes */
  EVP_MD_CTX_free (ctx);
}

int
ec2_add_tags (struct Pallet_aws_params *p, const char *resource_type, const struct ec2_input *in,
              const struct Pallet_aws_tag *extra, size_t nextra)
{
  struct Pallet_aws_tag tags[12];
  size_t n = 0;
  const char *name = ec2_str (json_object_get (in->state, "instance"), "name");
  /* AWS tag values hold at most 256 characters. */
  char vm_name[257];
  snprintf (vm_name, sizeof vm_name, "%s", *name ? name : (in->vm_name ? in->vm_name : in->vm_id));
  tags[n++] = (struct Pallet_aws_tag){ EC2_TAG_VM_ID, in->vm_id };
  tags[n++] = (struct Pallet_aws_tag){ EC2_TAG_VM_NAME, vm_name };
  tags[n++] = (struct Pallet_aws_tag){ EC2_TAG_PLAN, in->plan_uid };
  tags[n++] = (struct Pallet_aws_tag){ EC2_TAG_MIGRATION, in->migration_uid };
  for (size_t i = 0; i < nextra && n < 12; i++)
    tags[n++] = extra[i];
  return Pallet_aws_params_add_tag_spec (p, resource_type, tags, n);
}

/* ---- open / close ---- */

static const char *
setting (const json_t *settings, const json_t *secret, const char *key)
{
  const char *v = json_string_value (json_object_get (settings, key));
  if (!v)
    v = json_string_value (json_object_get (secret, key));
  return v && *v ? v : NULL;
}

static int
is_aws_url (const char *url)
{
  const char *host = strstr (url, "://");
  host = host ? host + 3 : url;
  const char *end = host + strcspn (host, ":/");
  static const char *const suffixes[] = { ".amazonaws.com", ".amazonaws.com.cn" };
  for (size_t i = 0; i < 2; i++) {
    size_t n = strlen (suffixes[i]);
    if ((size_t) (end - host) >= n && strncmp (end - n, suffixes[i], n) == 0)
      return 1;
  }
  return 0;
}

static void ec2_close (void *handle);

/* The config as open() gets it; NULL (reported) unless it is an object
 * whose parts are objects.  Its "_settings" is spec.settings overlaid with
 * config.settings: our own settings win over the Provider's. */
static json_t *
parse_config (struct pallet_call *call, const char *config_json)
{
  json_error_t jerr;
  json_t *cfg = config_json ? json_loads (config_json, JSON_REJECT_DUPLICATES, &jerr) : NULL;
  if (!cfg) {
    pallet_error (
        call, PALLET_E_INVALID,
        "ec2 open: the config is not valid JSON (%s); pass {\"provider\":{...},\"secret\":{...}}",
        config_json ? jerr.text : "none given");
    return NULL;
  }
  if (!json_is_object (cfg)) {
    pallet_error (call, PALLET_E_INVALID, "ec2 open: the config must be a JSON object");
    json_decref (cfg);
    return NULL;
  }
  json_t *provider = json_object_get (cfg, "provider");
  json_t *secret = json_object_get (cfg, "secret");
  json_t *extra = json_object_get (cfg, "settings");
  json_t *settings = json_object_get (json_object_get (provider, "spec"), "settings");
  if ((provider && !json_is_object (provider)) || (secret && !json_is_object (secret))
      || (extra && !json_is_object (extra)) || (settings && !json_is_object (settings))) {
    pallet_error (
        call, PALLET_E_INVALID,
        "ec2 open: config.provider, config.secret, config.settings and provider.spec.settings must be objects");
    json_decref (cfg);
    return NULL;
  }
  json_t *merged = json_object ();
  if (settings)
    json_object_update (merged, settings);
  if (extra)
    json_object_update (merged, extra);
  json_object_set_new (cfg, "_settings", merged);
  return cfg;
}

/* The Provider's type and the Secret's key pairs. */
static int
check_provider_and_secret (struct pallet_call *call, const json_t *spec, const json_t *secret)
{
  const char *type = ec2_str (spec, "type");
  if (*type && strcmp (type, "ec2") != 0) {
    pallet_error (call, PALLET_E_INVALID,
                  "ec2 open: Provider spec.type is \"%s\"; this provider handles type \"ec2\"",
                  type);
    return -1;
  }
  const char *sak = ec2_str (secret, "secretAccessKey"), *akid = ec2_str (secret, "accessKeyId");
  if ((*sak != 0) != (*akid != 0)) {
    pallet_error (
        call, PALLET_E_INVALID,
        "ec2 open: the Secret has %s but not %s; give both accessKeyId and secretAccessKey, or neither to use the environment or ~/.aws",
        *akid ? "accessKeyId" : "secretAccessKey", *akid ? "secretAccessKey" : "accessKeyId");
    return -1;
  }
  const char *tak = ec2_str (secret, "targetAccessKeyId"),
             *tsk = ec2_str (secret, "targetSecretAccessKey");
  if ((*tak != 0) != (*tsk != 0)) {
    pallet_error (
        call, PALLET_E_INVALID,
        "ec2 open: the Secret has only one of targetAccessKeyId and targetSecretAccessKey; give both for a cross-account migration, or neither");
    return -1;
  }
  return 0;
}

/* Settings of the AWS clients, from the settings or the Secret. */
enum setting_type { SET_STRING, SET_INT, SET_SIZE, SET_TRUE };
static const struct {
  const char *name;
  enum setting_type type;
  size_t offset; /* in struct Pallet_aws_config */
} aws_settings[] = {
  { "region", SET_STRING, offsetof (struct Pallet_aws_config, region) },
  { "endpoint-url", SET_STRING, offsetof (struct Pallet_aws_config, endpoint_url) },
  { "ec2-endpoint", SET_STRING, offsetof (struct Pallet_aws_config, ec2_endpoint) },
  { "ebs-endpoint", SET_STRING, offsetof (struct Pallet_aws_config, ebs_endpoint) },
  { "sts-endpoint", SET_STRING, offsetof (struct Pallet_aws_config, sts_endpoint) },
  { "kms-endpoint", SET_STRING, offsetof (struct Pallet_aws_config, kms_endpoint) },
  { "ca-bundle", SET_STRING, offsetof (struct Pallet_aws_config, ca_bundle) },
  { "max-attempts", SET_INT, offsetof (struct Pallet_aws_config, max_attempts) },
  { "max-response-bytes", SET_SIZE, offsetof (struct Pallet_aws_config, max_response_bytes) },
  { "insecureSkipVerify", SET_TRUE, offsetof (struct Pallet_aws_config, insecure) },
};

/* Settings kept as strings in the session: from the settings, and the
 * Secret too where from_secret is set. */
static const struct {
  const char *name;
  bool from_secret;
  size_t offset; /* of a const char * in struct ec2 */
  const char *dflt;
} session_settings[] = {
  { "target-az", true, offsetof (struct ec2, target_az), "" },
  { "target-kms-key-id", true, offsetof (struct ec2, target_kms_key), NULL },
  { "instance-store", true, offsetof (struct ec2, instance_store), "warn" },
  /* Conversion-only plans: the Kubernetes API that lists the PVCs. */
  { "kube-api-url", false, offsetof (struct ec2, kube_api_url), NULL },
  { "pvc-list-file", false, offsetof (struct ec2, pvc_list_file), NULL },
  /* The cluster-mode conversion Pod. */
  { "conversion-image", false, offsetof (struct ec2, conversion_image), NULL },
  { "conversion-cpu-request", false, offsetof (struct ec2, conversion_cpu), NULL },
  { "conversion-memory-request", false, offsetof (struct ec2, conversion_memory), NULL },
};

static void
apply_aws_settings (struct Pallet_aws_config *cfg, const json_t *merged, const json_t *secret)
{
  for (size_t i = 0; i < sizeof aws_settings / sizeof aws_settings[0]; i++) {
    const char *v = setting (merged, secret, aws_settings[i].name);
    void *field = (char *) cfg + aws_settings[i].offset;
    if (!v)
      continue;
    switch (aws_settings[i].type) {
    case SET_STRING: *(const char **) field = v; break;
    case SET_INT: *(int *) field = atoi (v); break;
    case SET_SIZE: *(size_t *) field = (size_t) strtoull (v, NULL, 10); break;
    case SET_TRUE:
      if (strcmp (v, "true") == 0)
        *(int *) field = 1;
      break;
    }
  }
}

/* The source client and, for another account or region, the target's. */
static int
open_clients (struct ec2 *s, struct pallet_call *call, const json_t *spec, const json_t *merged,
              const json_t *secret)
{
  s->src_cfg.log = aws_log;
  s->src_cfg.log_opaque = s;
  s->src_cfg.cancelled = aws_cancelled;
  s->src_cfg.cancel_opaque = s;
  Pallet_aws_config_from_secret (&s->src_cfg, secret);
  const char *url = ec2_str (spec, "url");
  if (*url && !is_aws_url (url))
    s->src_cfg.endpoint_url = url; /* a non-AWS endpoint serves every service */
  apply_aws_settings (&s->src_cfg, merged, secret);
  const char *ca_pem = ec2_str (secret, "ca.crt");
  if (*ca_pem && !s->src_cfg.ca_bundle)
    s->src_cfg.ca_pem = ca_pem;
  char *err = NULL;
  s->src = Pallet_aws_client_new (&s->src_cfg, &err);
  if (!s->src) {
    pallet_error (call, PALLET_E_INVALID, "ec2 open: source AWS client: %s", err ? err : "failed");
    free (err);
    return -1;
  }
  s->region = Pallet_aws_region (s->src);

  s->tgt_cfg = s->src_cfg;
  const char *tak = ec2_str (secret, "targetAccessKeyId");
  const char *tregion = setting (merged, secret, "target-region");
  s->cross_account = *tak != 0;
  s->cross_region = tregion && strcmp (tregion, s->region) != 0;
  if (s->cross_account) {
    const char *tst = ec2_str (secret, "targetSessionToken");
    s->tgt_cfg.access_key_id = tak;
    s->tgt_cfg.secret_access_key = ec2_str (secret, "targetSecretAccessKey");
    s->tgt_cfg.session_token = *tst ? tst : NULL;
    s->tgt_cfg.profile = NULL;
  }
  if (s->cross_region)
    s->tgt_cfg.region = tregion;
  s->tgt = s->src;
  if (s->cross_account || s->cross_region) {
    s->tgt = Pallet_aws_client_new (&s->tgt_cfg, &err);
    if (!s->tgt) {
      pallet_error (call, PALLET_E_INVALID, "ec2 open: target AWS client: %s",
                    err ? err : "failed");
      free (err);
      return -1;
    }
  }
  s->target_region = Pallet_aws_region (s->tgt);
  return 0;
}

/* keep-snapshots-until-boot: unset (-1) means "by transfer mode". */
static int
keep_setting (struct ec2 *s, struct pallet_call *call, const json_t *merged)
{
  const json_t *v = json_object_get (merged, "keep-snapshots-until-boot");
  const char *str = json_string_value (v);
  s->keep_until_boot = -1;
  if (!v || json_is_null (v))
    return 0;
  if (json_is_boolean (v) || (str && (!strcmp (str, "true") || !strcmp (str, "false")))) {
    s->keep_until_boot = json_is_true (v) || (str && !strcmp (str, "true"));
    return 0;
  }
  pallet_error (call, PALLET_E_INVALID,
                "ec2 open: setting keep-snapshots-until-boot is %s%s%s; use true or false",
                str ? "\"" : "", str ? str : "not a boolean", str ? "\"" : "");
  return -1;
}

static int
open_settings (struct ec2 *s, struct pallet_call *call, const json_t *merged, const json_t *secret)
{
  for (size_t i = 0; i < sizeof session_settings / sizeof session_settings[0]; i++) {
    const char *v =
        setting (merged, session_settings[i].from_secret ? secret : NULL, session_settings[i].name);
    *(const char **) ((char *) s + session_settings[i].offset) = v ? v : session_settings[i].dflt;
  }
  if (strcmp (s->instance_store, "warn") && strcmp (s->instance_store, "error")) {
    pallet_error (call, PALLET_E_INVALID,
                  "ec2 open: setting instance-store is \"%s\"; use \"warn\" or \"error\"",
                  s->instance_store);
    return -1;
  }
  /* The token comes from the Secret only, never from settings. */
  s->kube_token = setting (NULL, secret, "kubeToken");
  s->kube_insecure = ec2_bool (merged, "kube-insecure-skip-verify"); /* "true" or true */
  const char *kube_ca = ec2_str (secret, "kube-ca.crt");
  s->kube_ca_pem = *kube_ca ? kube_ca : NULL;
  s->force_tcg = ec2_bool (merged, "force-tcg");
  return keep_setting (s, call, merged);
}

static void *
ec2_open (struct pallet_call *call, const char *config_json)
{
  json_t *cfg = parse_config (call, config_json);
  if (!cfg)
    return NULL;
  json_t *secret = json_object_get (cfg, "secret");
  json_t *spec = json_object_get (json_object_get (cfg, "provider"), "spec");
  json_t *merged = json_object_get (cfg, "_settings");
  struct ec2 *s = calloc (1, sizeof *s);
  if (!s) {
    json_decref (cfg);
    pallet_error (call, PALLET_E_NOMEM, "ec2 open: out of memory");
    return NULL;
  }
  s->call = call;
  s->config = cfg;
  s->itypes = json_object ();
  s->source_names = json_object ();
  s->transfer_mode = EC2_MODE_UNDECIDED;
  if (check_provider_and_secret (call, spec, secret) != 0
      || open_clients (s, call, spec, merged, secret) < 0
      || open_settings (s, call, merged, secret) != 0) {
    ec2_close (s);
    return NULL;
  }
  s->call = NULL;
  return s;
}

static void
ec2_close (void *handle)
{
  struct ec2 *s = handle;
  if (!s)
    return;
  if (s->tgt && s->tgt != s->src)
    Pallet_aws_client_free (s->tgt);
  Pallet_aws_client_free (s->src);
  free (s->source_account);
  free (s->target_account);
  json_decref (s->itypes);
  json_decref (s->source_names);
  free (s->transfer_why);
  free (s->host_cluster.api_url);
  free_secret (s->host_cluster.token);
  free (s->host_cluster.ca_pem);
  free (s->host_cluster.ca_file);
  free (s->host_cluster.client_cert_pem);
  free_secret (s->host_cluster.client_key_pem);
  free (s->host_cluster.source);
  json_decref (s->config);
  free (s);
}

/* Every setting ec2 reads from config.settings or the Provider's
 * spec.settings (ABI 1.1): the host refuses any other. */
static const struct pallet_setting ec2_settings[] = {
  { "region", PALLET_SETTING_STRING, NULL, "the source region (else AWS_REGION, ~/.aws)" },
  { "target-az", PALLET_SETTING_STRING, NULL,
    "the zone the new volumes are created in: the worker nodes' zone" },
  { "target-region", PALLET_SETTING_STRING, NULL,
    "the cluster's region, when it is not the source region" },
  { "target-kms-key-id", PALLET_SETTING_STRING, NULL,
    "the KMS key for volumes created in the target (encrypted volumes)" },
  { "instance-store", PALLET_SETTING_STRING, "warn",
    "warn or error: what validate does with instance-store volumes" },
  { "tag-snapshot-volumes", PALLET_SETTING_JSON, "false",
    "true or false: also tag each source snapshot with forklift.konveyor.io/volume" },
  { "transfer-mode", PALLET_SETTING_STRING, NULL,
    "copy or zero-copy; unset: from the cluster's StorageClass provisioners (kube-api-url), "
    "else zero copy" },
  { "copy-target-dir", PALLET_SETTING_STRING, NULL,
    "copy mode: the directory of the raw disk files (default WORK_DIR/disks)" },
  { "copy-workers", PALLET_SETTING_STRING, "8",
    "copy mode: parallel block fetches per volume (a number, as a string)" },
  { "copy-max-rps", PALLET_SETTING_STRING, "950",
    "copy mode: GetSnapshotBlock requests per second (a number, as a string)" },
  { "copy-image", PALLET_SETTING_STRING, EC2_COPY_DEFAULT_IMAGE,
    "the image of the cluster copy Pod (packaging/images/pallet-ebs-copy)" },
  { "copy-service-account", PALLET_SETTING_STRING, NULL,
    "the copy Pod's service account (IRSA); then no credentials Secret is written" },
  { "precopy-interval", PALLET_SETTING_JSON, NULL,
    "warm plans: minutes between precopy rounds (a number or a string)" },
  { "endpoint-url", PALLET_SETTING_STRING, NULL, "one endpoint for every AWS service" },
  { "ec2-endpoint", PALLET_SETTING_STRING, NULL, "the EC2 endpoint" },
  { "ebs-endpoint", PALLET_SETTING_STRING, NULL, "the EBS direct APIs endpoint" },
  { "sts-endpoint", PALLET_SETTING_STRING, NULL, "the STS endpoint" },
  { "kms-endpoint", PALLET_SETTING_STRING, NULL, "the KMS endpoint" },
  { "ca-bundle", PALLET_SETTING_STRING, NULL,
    "a PEM file of CAs to trust (the Secret's ca.crt works too)" },
  { "insecureSkipVerify", PALLET_SETTING_STRING, NULL,
    "\"true\" turns TLS verification off (test endpoints only)" },
  { "max-attempts", PALLET_SETTING_STRING, "5",
    "attempts per AWS request, throttling and 5xx included (a number, as a string)" },
  { "max-response-bytes", PALLET_SETTING_STRING, NULL,
    "the largest AWS response body accepted (a number, as a string)" },
  { "kube-api-url", PALLET_SETTING_STRING, NULL,
    "the cluster's API server URL: conversion-only plans list their PVCs there, and "
    "the transfer mode follows its StorageClasses" },
  { "kube-insecure-skip-verify", PALLET_SETTING_BOOL, "false",
    "true turns TLS verification of the API server off (test clusters only)" },
  { "pvc-list-file", PALLET_SETTING_STRING, NULL,
    "conversion-only plans, offline: a file holding kubectl get pvc -o json" },
  { "conversion-image", PALLET_SETTING_STRING, PALLET_CONVERT_DEFAULT_IMAGE,
    "the image of the conversion Pod (packaging/images/pallet-convert)" },
  { "conversion-cpu-request", PALLET_SETTING_STRING, "1", "the conversion Pod's CPU request" },
  { "conversion-memory-request", PALLET_SETTING_STRING, "2Gi",
    "the conversion Pod's memory request" },
  { "keep-snapshots-until-boot", PALLET_SETTING_BOOL, NULL,
    "true or false: after a successful migrate keep the EBS snapshots until `pallet cleanup`, "
    "run once the VM has booted (default true for zero copy, false for copy)" },
  { "force-tcg", PALLET_SETTING_BOOL, "false", "true runs libguestfs under TCG (no KVM)" },
  { "fix-device-names", PALLET_SETTING_BOOL, "true",
    "false skips rewriting the guest's /dev/nvme*, /dev/xvd*, /dev/sd* names to UUID= before "
    "conversion" },
  { "verify-boot", PALLET_SETTING_STRING, "false",
    "true, false or warn: boot the converted disks under QEMU to a login prompt "
    "(plan annotation pallet.dev/verify-boot overrides)" },
  { "verify-boot-timeout", PALLET_SETTING_STRING, "300",
    "seconds the boot check waits for a login prompt (pallet.dev/verify-boot-timeout)" },
  { "boot-pattern", PALLET_SETTING_STRING, NULL,
    "cluster mode: the serial console line (extended regex) that shows the VM booted, instead "
    "of the host's default login:|Cloud-init .* finished (pallet.dev/boot-pattern)" },
  { "firstboot-scripts", PALLET_SETTING_STRING, NULL,
    "comma-separated local shell scripts run once at the guest's first boot, in name order "
    "(pallet.dev/firstboot-scripts)" },
  { NULL, 0, NULL, NULL }
};

/* libcurl's process-wide state, once per load (ABI 1.1 load/unload);
 * curl_global_init counts, so the aws library's own lazy init pairs up. */
static int
ec2_load (void)
{
  return curl_global_init (CURL_GLOBAL_DEFAULT) == CURLE_OK ? PALLET_OK : PALLET_E_NOMEM;
}

static void
ec2_unload (void)
{
  curl_global_cleanup ();
}

PALLET_PROVIDER_DEFINE (
    ec2_provider, .name = "ec2", .version = "0.1.0",
    .description = "AWS EC2 -> KubeVirt: EBS snapshots re-created as volumes in the cluster's zone",
    .thread_model = PALLET_THREAD_MODEL_SERIALIZE_PER_HANDLE, .cancel_bound_ms = 2000,
    .capabilities = PALLET_CAP_COLD_MIGRATION | PALLET_CAP_WARM_MIGRATION | PALLET_CAP_ZERO_COPY
                    | PALLET_CAP_COPY | PALLET_CAP_CROSS_ACCOUNT | PALLET_CAP_CROSS_REGION
                    | PALLET_CAP_GUEST_CONVERSION,
    .open = ec2_open, .close = ec2_close, .validate = ec2_validate, .inventory = ec2_inventory,
    .prepare_source = ec2_prepare_source_entry, .transfer = ec2_transfer_entry,
    .convert = ec2_convert_entry, .build_vm = ec2_build_vm, .cleanup = ec2_cleanup,
    .load = ec2_load, .unload = ec2_unload, .settings = ec2_settings);
