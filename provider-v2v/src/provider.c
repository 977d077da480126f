/* SPDX-License-Identifier: Apache-2.0 */
/* provider-v2v: open/close, the per-VM input, and the source's facts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "v2v.h"
#include "pallet-v2v-vsphere.h"
#include "pallet-v2v-kubevirt.h"

const char *
v2v_str (const json_t *o, const char *k)
{
  const char *v = json_string_value (json_object_get (o, k));
  return v ? v : "";
}

int
v2v_emit (struct v2v *s, int kind, const json_t *obj)
{
  char *t = json_dumps (obj, JSON_COMPACT | JSON_SORT_KEYS);
  if (!t) {
    pallet_error (s->call, PALLET_E_NOMEM, "out of memory serialising output");
    return -1;
  }
  int r = pallet_emit (s->call, kind, t);
  free (t);
  return r;
}

int
v2v_input_parse (struct v2v *s, const char *op, const char *json, struct v2v_input *in)
{
  json_error_t e;
  memset (in, 0, sizeof *in);
  in->root = json ? json_loads (json, JSON_REJECT_DUPLICATES, &e) : NULL;
  in->plan = json_object_get (in->root, "plan");
  in->vm = json_object_get (in->root, "vm");
  in->state = json_object_get (in->root, "state");
  in->options = json_object_get (in->root, "options");
  const char *why = !in->root                    ? "is not JSON"
                    : !json_is_object (in->plan) ? "has no \"plan\" object"
                    : !json_is_object (in->vm)   ? "has no \"vm\" object"
                    : (in->state && !json_is_object (in->state) && !json_is_null (in->state))
                        ? "has a \"state\" that is not an object"
                    : (in->options && !json_is_object (in->options) && !json_is_null (in->options))
                        ? "has \"options\" that are not an object"
                        : NULL;
  in->key = *v2v_str (in->vm, "name") ? v2v_str (in->vm, "name") : v2v_str (in->vm, "id");
  if (!why && !*in->key)
    why = "names no VM (vm.name or vm.id)";
  if (why) {
    pallet_error (
        s->call, PALLET_E_INVALID,
        "%s %s: the input %s; pass {\"plan\":{...},\"vm\":{\"name\":...},\"state\":{...}}",
        s->type_name, op, why);
    json_decref (in->root);
    in->root = NULL;
    return -1;
  }
  if (!json_is_object (in->state)) {
    in->state = json_object ();
    json_object_set_new (in->root, "state", in->state);
  }
  in->migration_uid = v2v_str (in->options, "migrationUID");
  if (!*in->migration_uid)
    in->migration_uid = v2v_str (in->state, "migrationUID");
  in->rollback = json_is_true (json_object_get (in->options, "rollback"));
  return 0;
}

void
v2v_input_free (struct v2v_input *in)
{
  json_decref (in->root);
  memset (in, 0, sizeof *in);
}

/* ---- open ---- */

static const char *const common_settings[] = { "output-dir", "v2v-timeout", "virt-v2v", NULL };
static const char *const vsphere_settings[] = { "sdkEndpoint",
                                                "host-path",
                                                "transport",
                                                "vddk-libdir",
                                                "vddk-config",
                                                "vddkInitImage",
                                                "power-off",
                                                "kube-api-url",
                                                "kube-insecure-skip-verify",
                                                "pvc-list-file",
                                                "pvc-device-dir",
                                                "virt-v2v-in-place",
                                                NULL };

static int
known (const char *k, const char *const *list)
{
  for (size_t i = 0; list[i]; i++)
    if (!strcmp (k, list[i]))
      return 1;
  return 0;
}

static int
check_settings (struct v2v *s, const json_t *settings)
{
  const char *k;
  json_t *v;
  json_object_foreach ((json_t *) settings, k, v) {
    if (known (k, common_settings) || (s->type == V2V_VSPHERE && known (k, vsphere_settings)))
      continue;
    pallet_error (
        s->call, PALLET_E_INVALID,
        "%s open: unknown setting '%s'; settings of this type: output-dir, v2v-timeout, virt-v2v%s",
        s->type_name, k,
        s->type == V2V_VSPHERE
            ? ", sdkEndpoint, host-path, transport, vddk-libdir, vddk-config, power-off, "
              "kube-api-url, kube-insecure-skip-verify, pvc-list-file, pvc-device-dir, "
              "virt-v2v-in-place"
            : "");
    return -1;
  }
  return 0;
}

static const char *
setting (const json_t *settings, const char *k)
{
  const char *v = json_string_value (json_object_get (settings, k));
  return v && *v ? v : NULL;
}

/* https://HOST[:PORT][/sdk] -> host and port. */
static int
split_url (const char *url, char *host, size_t cap, int *port)
{
  const char *p = strstr (url, "://");
  p = p ? p + 3 : url;
  const char *at = strchr (p, '@');
  const char *slash = strchr (p, '/');
  if (at && (!slash || at < slash))
    p = at + 1;
  size_t n = strcspn (p, ":/?");
  if (n == 0 || n >= cap)
    return -1;
  memcpy (host, p, n);
  host[n] = '\0';
  *port = p[n] == ':' ? atoi (p + n + 1) : 0;
  return 0;
}

/* Conversion-only plans: the PVC listing and the devices. */
static void
open_conversion (struct v2v *s, const json_t *settings)
{
  const json_t *secret = json_object_get (s->config, "secret");
  s->kube_api_url = setting (settings, "kube-api-url");
  s->kube_token = setting (secret, "kubeToken");
  s->kube_ca_pem = setting (secret, "kube-ca.crt");
  json_t *ki = json_object_get (settings, "kube-insecure-skip-verify");
  s->kube_insecure =
      json_is_true (ki) || !strcmp (v2v_str (settings, "kube-insecure-skip-verify"), "true");
  s->pvc_list_file = setting (settings, "pvc-list-file");
  s->pvc_device_dir = setting (settings, "pvc-device-dir");
  s->virt_v2v_in_place = setting (settings, "virt-v2v-in-place")
                             ? setting (settings, "virt-v2v-in-place")
                             : "virt-v2v-in-place";
}

static int
open_vsphere (struct v2v *s, const char *url, const json_t *settings)
{
  char host[256];
  int port = 0;
  if (!*url || split_url (url, host, sizeof host, &port) < 0) {
    pallet_error (s->call, PALLET_E_INVALID,
                  "vsphere open: the Provider's url '%s' is not https://HOST[:PORT]/sdk", url);
    return -1;
  }
  const char *ep = setting (settings, "sdkEndpoint");
  if (ep && strcmp (ep, "vcenter") && strcmp (ep, "esxi")) {
    pallet_error (s->call, PALLET_E_INVALID, "vsphere open: sdkEndpoint '%s': use vcenter or esxi",
                  ep);
    return -1;
  }
  s->input = ep && !strcmp (ep, "esxi") ? PALLET_V2V_IN_ESX : PALLET_V2V_IN_VPX;
  const char *tr = setting (settings, "transport");
  if (tr && strcmp (tr, "https") && strcmp (tr, "vddk")) {
    pallet_error (s->call, PALLET_E_INVALID, "vsphere open: transport '%s': use https or vddk", tr);
    return -1;
  }
  s->transport = tr && !strcmp (tr, "vddk") ? PALLET_V2V_VDDK : PALLET_V2V_HTTPS;
  json_t *po = json_object_get (settings, "power-off");
  s->power_off = !po || json_is_true (po) || !strcmp (v2v_str (settings, "power-off"), "true");
  s->vddk_libdir = setting (settings, "vddk-libdir");
  open_conversion (s, settings);
  s->vddk_config = setting (settings, "vddk-config");
  if (setting (settings, "vddkInitImage"))
    json_array_append_new (
        s->advisories,
        json_string (
            "vddkInitImage is Forklift's VDDK container image for cluster mode; here set vddk-libdir to the unpacked library"));
  char *err = NULL;
  s->uri = pallet_v2v_uri (s->input, s->user, host, port, setting (settings, "host-path"),
                           s->insecure, &err);
  if (!s->uri) {
    pallet_error (s->call, PALLET_E_INVALID, "vsphere open: %s", err);
    free (err);
    return -1;
  }
  return 0;
}

static int
open_xen (struct v2v *s, const char *url)
{
  char host[256];
  int port = 0;
  if (!*url || split_url (url, host, sizeof host, &port) < 0) {
    pallet_error (s->call, PALLET_E_INVALID,
                  "xen open: the Provider's url '%s' is not xen+ssh://USER@DOM0", url);
    return -1;
  }
  const char *at = strchr (url, '@');
  char user[128] = "";
  if (at && strstr (url, "://") && at > strstr (url, "://"))
    snprintf (user, sizeof user, "%.*s", (int) (at - strstr (url, "://") - 3),
              strstr (url, "://") + 3);
  char *err = NULL;
  s->input = PALLET_V2V_IN_XEN;
  s->uri = pallet_v2v_uri (PALLET_V2V_IN_XEN, *user ? user : s->user, host, port, NULL, 0, &err);
  if (!s->uri) {
    pallet_error (s->call, PALLET_E_INVALID, "xen open: %s", err);
    free (err);
    return -1;
  }
  return 0;
}

static int
open_path (struct v2v *s, const char *url)
{
  const char *p = !strncmp (url, "file://", 7) ? url + 7 : url;
  if (*p != '/') {
    pallet_error (
        s->call, PALLET_E_INVALID,
        "%s open: the Provider's url '%s' must be an absolute path (or file:///path) to the %s",
        s->type_name, url,
        s->type == V2V_OVA ? ".ova file or a directory of them" : "directory of disk images");
    return -1;
  }
  s->path = p;
  s->input = s->type == V2V_OVA ? PALLET_V2V_IN_OVA : PALLET_V2V_IN_DISK;
  return 0;
}

static int
open_type (struct v2v *s, const json_t *provider, const json_t *secret, const json_t *settings)
{
  const json_t *spec =
      json_object_get (provider, "spec") ? json_object_get (provider, "spec") : provider;
  const char *type = v2v_str (spec, "type");
  if (*type && strcmp (type, s->type_name)) {
    pallet_error (s->call, PALLET_E_INVALID,
                  "%s open: the Provider's type is '%s'; load pallet-provider-%s instead",
                  s->type_name, type, type);
    return -1;
  }
  if (check_settings (s, settings) < 0)
    return -1;
  s->user = *v2v_str (secret, "user") ? v2v_str (secret, "user") : "root";
  s->password = json_string_value (json_object_get (secret, "password"));
  json_t *ins = json_object_get (secret, "insecureSkipVerify");
  s->insecure = json_is_true (ins) || !strcmp (v2v_str (secret, "insecureSkipVerify"), "true");
  s->thumbprint = json_string_value (json_object_get (secret, "thumbprint"));
  if (*v2v_str (secret, "cacert") && !s->insecure)
    json_array_append_new (
        s->advisories,
        json_string (
            "the Secret's cacert is not passed on (libvirt's ESX driver and virt-v2v use the system trust store): add the CA there"));
  s->output_dir = setting (settings, "output-dir");
  s->virt_v2v = setting (settings, "virt-v2v") ? setting (settings, "virt-v2v") : "virt-v2v";
  /* an integer, or a string of digits (Kubernetes maps hold strings) */
  json_t *tj = json_object_get (settings, "v2v-timeout");
  char tbuf[32];
  const char *t = setting (settings, "v2v-timeout");
  if (json_is_integer (tj)) {
    snprintf (tbuf, sizeof tbuf, "%lld", (long long) json_integer_value (tj));
    t = tbuf;
  }
  s->timeout_s = t ? (unsigned) strtoul (t, NULL, 10) : 4 * 3600;
  if (t && (s->timeout_s == 0 || strspn (t, "0123456789") != strlen (t))) {
    pallet_error (s->call, PALLET_E_INVALID,
                  "%s open: v2v-timeout '%s' is not a positive number of seconds", s->type_name, t);
    return -1;
  }
  const char *url = v2v_str (spec, "url");
  switch (s->type) {
  case V2V_VSPHERE: return open_vsphere (s, url, settings);
  case V2V_XEN: return open_xen (s, url);
  default: return open_path (s, url);
  }
}

void *
v2v_open (struct pallet_call *call, const char *config_json, int type)
{
  static const char *const names[] = { "", "vsphere", "ova", "xen", "disk" };
  json_error_t e;
  json_t *cfg = config_json ? json_loads (config_json, JSON_REJECT_DUPLICATES, &e) : NULL;
  if (!json_is_object (cfg)) {
    pallet_error (
        call, PALLET_E_INVALID,
        "%s open: the config is not a JSON object; pass {\"provider\":{...},\"secret\":{...}}",
        names[type]);
    json_decref (cfg);
    return NULL;
  }
  struct v2v *s = calloc (1, sizeof *s);
  if (!s) {
    json_decref (cfg);
    pallet_error (call, PALLET_E_NOMEM, "out of memory");
    return NULL;
  }
  s->call = call;
  s->type = type;
  s->type_name = names[type];
  s->config = cfg;
  s->advisories = json_array ();
  json_t *provider = json_object_get (cfg, "provider");
  json_t *spec = json_object_get (provider, "spec") ? json_object_get (provider, "spec") : provider;
  const char *bad = NULL;
  static const char *const objs[] = { "provider", "secret", "settings" };
  for (size_t i = 0; i < 3; i++) {
    json_t *o = json_object_get (cfg, objs[i]);
    if (o && !json_is_object (o) && !json_is_null (o))
      bad = objs[i];
  }
  if (!bad && spec && !json_is_object (spec))
    bad = "provider.spec";
  if (!bad && json_object_get (spec, "settings")
      && !json_is_object (json_object_get (spec, "settings"))
      && !json_is_null (json_object_get (spec, "settings")))
    bad = "provider.spec.settings";
  if (bad) {
    pallet_error (call, PALLET_E_INVALID, "%s open: config.%s must be an object", names[type], bad);
    v2v_close (s);
    return NULL;
  }
  json_t *merged = json_object ();
  if (json_is_object (json_object_get (spec, "settings")))
    json_object_update (merged, json_object_get (spec, "settings"));
  if (json_is_object (json_object_get (cfg, "settings")))
    json_object_update (merged, json_object_get (cfg, "settings"));
  json_object_set_new (cfg, "_settings", merged);
  if (open_type (s, provider, json_object_get (cfg, "secret"), merged) < 0) {
    v2v_close (s);
    return NULL;
  }
  s->call = NULL;
  return s;
}

void
v2v_close (void *handle)
{
  struct v2v *s = handle;
  if (!s)
    return;
  free (s->uri);
  json_decref (s->advisories);
  json_decref (s->config);
  free (s);
}

/* ---- Source facts ---- */

static int
exists (const char *p)
{
  struct stat st;
  return stat (p, &st) == 0;
}

char *
v2v_source_file (struct v2v *s, const char *key)
{
  static const char *const ova_ext[] = { "", ".ova", NULL };
  static const char *const disk_ext[] = { "", ".img", ".raw", ".qcow2", NULL };
  const char *const *ext = s->type == V2V_OVA ? ova_ext : disk_ext;
  struct stat st;
  char p[4096];
  if (strchr (key, '/') || !strcmp (key, "..") || !strcmp (key, "."))
    return NULL; /* a name, never a path */
  if (s->type == V2V_OVA && stat (s->path, &st) == 0 && !S_ISDIR (st.st_mode))
    return strdup (s->path); /* the url is the .ova itself */
  for (size_t i = 0; ext[i]; i++) {
    snprintf (p, sizeof p, "%s/%s%s", s->path, key, ext[i]);
    if (exists (p) && (stat (p, &st) == 0 && (s->type == V2V_OVA || !S_ISDIR (st.st_mode))))
      return strdup (p);
  }
  return NULL;
}

static int
file_facts (struct v2v *s, const char *key, json_t **facts, char **err)
{
  char *f = v2v_source_file (s, key);
  if (!f) {
    char m[1024];
    snprintf (m, sizeof m,
              "no %s named '%s' in %s; check the plan's vms[].name and the Provider's url",
              s->type == V2V_OVA ? "OVA" : "disk image", key, s->path);
    *err = strdup (m);
    return PALLET_E_NOT_FOUND;
  }
  *facts = json_pack ("{s:s,s:s,s:[{s:s,s:s}],s:[],s:s}", "name", key, "id", key, "disks", "file",
                      f, "datastore", "", "nics", "powerState", "Off");
  free (f);
  return PALLET_OK;
}

int
v2v_source_facts (struct v2v *s, const char *key, json_t **facts, char **err)
{
  *facts = NULL;
  *err = NULL;
  if (s->type == V2V_OVA || s->type == V2V_DISK)
    return file_facts (s, key, facts, err);
  struct pallet_v2v_vsphere *v;
  int st = pallet_v2v_vsphere_open (s->uri, s->user, s->password ? s->password : "", &v, err);
  if (st == PALLET_OK) {
    st = pallet_v2v_vsphere_vm (v, key, facts, err);
    pallet_v2v_vsphere_close (v);
  }
  return st;
}

char *
v2v_vm_dir (struct v2v *s, const char *vmname)
{
  const char *base = s->output_dir;
  char buf[4096];
  if (!base) {
    const char *w = s->call->host->get_param (s->call, "work.dir");
    if (!w) {
      pallet_error (s->call, PALLET_E_INVALID,
                    "%s: the host gives no work.dir; set the Provider setting output-dir",
                    s->type_name);
      return NULL;
    }
    snprintf (buf, sizeof buf, "%s/v2v", w);
    base = buf;
  }
  char p[8192];
  mkdir (base, 0700);
  snprintf (p, sizeof p, "%s/%s", base, vmname);
  if (mkdir (p, 0700) < 0 && errno != EEXIST) {
    pallet_error (s->call, PALLET_E_IO, "%s: cannot create the output directory %s: %s",
                  s->type_name, p, strerror (errno));
    return NULL;
  }
  return strdup (p);
}
