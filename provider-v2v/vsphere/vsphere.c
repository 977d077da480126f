/* SPDX-License-Identifier: Apache-2.0 */
/* vSphere inventory through libvirt's ESX driver. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <pallet/provider.h>
#include "pallet-v2v-vsphere.h"
#include "v2v-error.h"

struct pallet_v2v_vsphere {
  virConnectPtr conn;
  const char *user, *password; /* borrowed for the auth callback only */
};

/* libvirt reports through its own last-error; a library never prints, so
 * its default handler (stderr) is replaced by one that keeps quiet. */
static void
quiet (void *opaque, virErrorPtr e)
{
  (void) opaque;
  (void) e;
}

static const char *
last_error (void)
{
  virErrorPtr e = virGetLastError ();
  return e && e->message ? e->message : "unknown libvirt error";
}

static int
auth_cb (virConnectCredentialPtr cred, unsigned int ncred, void *opaque)
{
  struct pallet_v2v_vsphere *v = opaque;
  for (unsigned i = 0; i < ncred; i++) {
    const char *val = NULL;
    if (cred[i].type == VIR_CRED_AUTHNAME)
      val = v->user;
    else if (cred[i].type == VIR_CRED_PASSPHRASE || cred[i].type == VIR_CRED_NOECHOPROMPT)
      val = v->password;
    if (!val)
      return -1;
    cred[i].result = strdup (val);
    if (!cred[i].result)
      return -1;
    cred[i].resultlen = (unsigned) strlen (val);
  }
  return 0;
}

static int
classify (const char *msg)
{
  if (strstr (msg, "Login failure") || strstr (msg, "incorrect user name or password")
      || strstr (msg, "InvalidLogin"))
    return PALLET_E_AUTH;
  if (strstr (msg, "certificate") || strstr (msg, "SSL") || strstr (msg, "TLS"))
    return PALLET_E_FAILED;
  if (strstr (msg, "Could not resolve") || strstr (msg, "Couldn't connect")
      || strstr (msg, "Connection refused") || strstr (msg, "Timeout"))
    return PALLET_E_TRANSIENT;
  if (strstr (msg, "Path") || strstr (msg, "path") || strstr (msg, "Could not find"))
    return PALLET_E_INVALID;
  return PALLET_E_FAILED;
}

static const char *
hint (int code)
{
  switch (code) {
  case PALLET_E_AUTH: return "check the Secret's user and password";
  case PALLET_E_FAILED:
    return "give the server's CA (Secret cacert) or set insecureSkipVerify: true in the Secret for a test server";
  case PALLET_E_TRANSIENT: return "check the Provider's url and that the server is reachable";
  default: return "check the Provider's url and the setting host-path (DATACENTER/[CLUSTER/]HOST)";
  }
}

static int open_flags (const char *uri, const char *user, const char *password, unsigned flags,
                       struct pallet_v2v_vsphere **out, char **err);

int
pallet_v2v_vsphere_open (const char *uri, const char *user, const char *password,
                         struct pallet_v2v_vsphere **out, char **err)
{
  return open_flags (uri, user, password, VIR_CONNECT_RO, out, err);
}

static int
open_flags (const char *uri, const char *user, const char *password, unsigned flags,
            struct pallet_v2v_vsphere **out, char **err)
{
  *out = NULL;
  /* libvirt's ESX driver logs a warning to stderr for every property it
   * does not know (dozens per call); a library never prints, and libvirt
   * reads its log settings from the environment once, at its first call.
   * Only errors of the esx modules, unless the user chose otherwise. */
  setenv ("LIBVIRT_LOG_FILTERS", "4:esx", 0);
  virSetErrorFunc (NULL, quiet);
  struct pallet_v2v_vsphere *v = calloc (1, sizeof *v);
  if (!v)
    return Pallet_v2v_failf (err, PALLET_E_NOMEM, "out of memory");
  v->user = user;
  v->password = password;
  int types[] = { VIR_CRED_AUTHNAME, VIR_CRED_PASSPHRASE, VIR_CRED_NOECHOPROMPT };
  virConnectAuth auth = { types, 3, auth_cb, v };
  v->conn = virConnectOpenAuth (uri, &auth, flags);
  v->user = v->password = NULL;
  if (!v->conn) {
    const char *m = last_error ();
    int code = classify (m);
    Pallet_v2v_failf (err, code, "connecting to %s: %s; %s", uri, m, hint (code));
    free (v);
    return code;
  }
  *out = v;
  return PALLET_OK;
}

void
pallet_v2v_vsphere_close (struct pallet_v2v_vsphere *v)
{
  if (!v)
    return;
  if (v->conn)
    virConnectClose (v->conn);
  free (v);
}

/* ---- Domain XML ---- */

static char *
xp_str (xmlXPathContextPtr ctx, const char *expr)
{
  xmlXPathObjectPtr o = xmlXPathEvalExpression ((const xmlChar *) expr, ctx);
  char *r = NULL;
  if (o) {
    xmlChar *s = xmlXPathCastToString (o);
    if (s && *s)
      r = strdup ((const char *) s);
    xmlFree (s);
    xmlXPathFreeObject (o);
  }
  return r;
}

static long long
xp_num (xmlXPathContextPtr ctx, const char *expr)
{
  char *s = xp_str (ctx, expr);
  long long n = s ? strtoll (s, NULL, 10) : 0;
  free (s);
  return n;
}

static void
set_str (json_t *o, const char *k, char *v)
{
  json_object_set_new (o, k, json_string (v ? v : ""));
  free (v);
}

/* "[LocalDS_0] DC0_H0_VM0/disk1.vmdk" -> datastore and file. */
static void
split_ds (json_t *d, const char *file)
{
  const char *e = file && file[0] == '[' ? strchr (file, ']') : NULL;
  if (!e) {
    json_object_set_new (d, "datastore", json_string (""));
    json_object_set_new (d, "vmdk", json_string (file ? file : ""));
    return;
  }
  json_object_set_new (d, "datastore", json_stringn (file + 1, (size_t) (e - file - 1)));
  json_object_set_new (d, "vmdk", json_string (e + 1 + strspn (e + 1, " ")));
}

static json_t *
list_of (xmlXPathContextPtr ctx, const char *expr, const char *const *keys,
         const char *const *exprs, size_t n)
{
  json_t *arr = json_array ();
  xmlXPathObjectPtr o = xmlXPathEvalExpression ((const xmlChar *) expr, ctx);
  xmlNodeSetPtr ns = o ? o->nodesetval : NULL;
  for (int i = 0; ns && i < ns->nodeNr; i++) {
    xmlNodePtr save = ctx->node;
    ctx->node = ns->nodeTab[i];
    json_t *item = json_object ();
    for (size_t k = 0; k < n; k++)
      set_str (item, keys[k], xp_str (ctx, exprs[k]));
    ctx->node = save;
    json_array_append_new (arr, item);
  }
  xmlXPathFreeObject (o);
  return arr;
}

json_t *
pallet_v2v_domain_facts (const char *xml, char **err)
{
  xmlDocPtr doc = xmlReadMemory (xml, (int) strlen (xml), "domain.xml", NULL,
                                 XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  if (!doc) {
    Pallet_v2v_failf (err, 0, "libvirt returned domain XML that does not parse");
    return NULL;
  }
  xmlXPathContextPtr ctx = xmlXPathNewContext (doc);
  xmlXPathRegisterNs (ctx, (const xmlChar *) "vmware",
                      (const xmlChar *) "http://libvirt.org/schemas/domain/vmware/1.0");
  json_t *f = json_object ();
  set_str (f, "name", xp_str (ctx, "string(/domain/name)"));
  set_str (f, "uuid", xp_str (ctx, "string(/domain/uuid)"));
  set_str (f, "id", xp_str (ctx, "string(/domain/vmware:moref)"));
  set_str (f, "datacenter", xp_str (ctx, "string(/domain/vmware:datacenterpath)"));
  json_object_set_new (f, "cpus", json_integer (xp_num (ctx, "string(/domain/vcpu)")));
  json_object_set_new (f, "memoryMiB",
                       json_integer (xp_num (ctx, "string(/domain/memory)") / 1024));
  char *fw = xp_str (ctx, "string(/domain/os/@firmware)");
  char *loader = xp_str (ctx, "string(/domain/os/loader/@type)");
  int efi = (fw && !strcmp (fw, "efi")) || (loader && !strcmp (loader, "pflash"));
  json_object_set_new (f, "firmware", json_string (efi ? "efi" : "bios"));
  free (fw);
  free (loader);
  static const char *const dk[] = { "file", "bus", "target" };
  static const char *const dx[] = { "string(source/@file)", "string(target/@bus)",
                                    "string(target/@dev)" };
  json_t *disks = list_of (ctx, "/domain/devices/disk[@device='disk']", dk, dx, 3), *d;
  size_t i;
  json_array_foreach (disks, i, d)
    split_ds (d, json_string_value (json_object_get (d, "file")));
  json_object_set_new (f, "disks", disks);
  static const char *const nk[] = { "mac", "network", "model" };
  static const char *const nx[] = { "string(mac/@address)",
                                    "string(source/@bridge | source/@network | source/@portgroup)",
                                    "string(model/@type)" };
  json_object_set_new (f, "nics", list_of (ctx, "/domain/devices/interface", nk, nx, 3));
  xmlXPathFreeContext (ctx);
  xmlFreeDoc (doc);
  return f;
}

/* ---- Inventory ---- */

static const char *
power (virDomainPtr d)
{
  int state, reason;
  if (virDomainGetState (d, &state, &reason, 0) < 0)
    return "Unknown";
  return state == VIR_DOMAIN_RUNNING || state == VIR_DOMAIN_PAUSED || state == VIR_DOMAIN_BLOCKED
             ? "On"
         : state == VIR_DOMAIN_SHUTOFF ? "Off"
                                       : "Unknown";
}

static json_t *
facts_of (virDomainPtr d, char **err)
{
  char *xml = virDomainGetXMLDesc (d, 0);
  if (!xml) {
    /* The message first: every libvirt call (virDomainGetName too)
     * resets the thread's last error, freeing the text. */
    char *why = strdup (last_error ());
    Pallet_v2v_failf (err, 0, "reading VM %s: %s", virDomainGetName (d),
                      why ? why : "out of memory");
    free (why);
    return NULL;
  }
  json_t *f = pallet_v2v_domain_facts (xml, err);
  free (xml);
  if (f)
    json_object_set_new (f, "powerState", json_string (power (d)));
  return f;
}

json_t *
pallet_v2v_vsphere_vms (struct pallet_v2v_vsphere *v, char **err)
{
  virDomainPtr *doms = NULL;
  int n = virConnectListAllDomains (v->conn, &doms, 0);
  if (n < 0) {
    Pallet_v2v_failf (err, 0, "listing VMs: %s", last_error ());
    return NULL;
  }
  json_t *arr = json_array ();
  for (int i = 0; i < n; i++) {
    json_t *f = arr ? facts_of (doms[i], err) : NULL;
    if (!f) {
      json_decref (arr);
      arr = NULL;
    }
    else
      json_array_append_new (arr, f);
    virDomainFree (doms[i]);
  }
  free (doms);
  return arr;
}

int
pallet_v2v_vsphere_vm (struct pallet_v2v_vsphere *v, const char *key, json_t **facts, char **err)
{
  *facts = NULL;
  json_t *all = pallet_v2v_vsphere_vms (v, err), *f;
  if (!all)
    return PALLET_E_TRANSIENT;
  size_t i;
  char names[512] = "";
  json_array_foreach (all, i, f) {
    const char *name = json_string_value (json_object_get (f, "name"));
    if (!strcmp (name, key) || !strcasecmp (json_string_value (json_object_get (f, "uuid")), key)
        || !strcmp (json_string_value (json_object_get (f, "id")), key)) {
      *facts = json_incref (f);
      break;
    }
    if (strlen (names) + strlen (name) + 3 < sizeof names)
      snprintf (names + strlen (names), sizeof names - strlen (names), "%s%s", *names ? ", " : "",
                name);
  }
  json_decref (all);
  if (!*facts)
    return Pallet_v2v_failf (
        err, PALLET_E_NOT_FOUND,
        "VM '%s' is not on this host (by name, UUID or moref); VMs there: %s; check the plan's vms[] and the setting host-path",
        key, *names ? names : "none");
  return PALLET_OK;
}

/* Datastores the VMs' disks name but libvirt did not list as pools (the
 * simulator has none; a real host lists them all). */
static void
add_disk_datastores (struct pallet_v2v_vsphere *v, json_t *arr)
{
  json_t *vms = pallet_v2v_vsphere_vms (v, NULL), *vm, *d, *ds;
  size_t i, j, k;
  json_array_foreach (vms, i, vm)
    json_array_foreach (json_object_get (vm, "disks"), j, d) {
      const char *name = json_string_value (json_object_get (d, "datastore"));
      int have = !name || !*name;
      json_array_foreach (arr, k, ds)
        have |= name && !strcmp (name, json_string_value (json_object_get (ds, "name")));
      if (!have)
        json_array_append_new (arr, json_pack ("{s:s,s:s}", "name", name, "seenIn", "vm disks"));
    }
  json_decref (vms);
}

json_t *
pallet_v2v_vsphere_datastores (struct pallet_v2v_vsphere *v, char **err)
{
  virStoragePoolPtr *pools = NULL;
  (void) err;
  /* The simulator answers the pool listing with a fault: the VMs' disks
   * still name their datastores. */
  int n = virConnectListAllStoragePools (v->conn, &pools, 0);
  json_t *arr = json_array ();
  for (int i = 0; i < n; i++) {
    virStoragePoolInfo info;
    char uuid[VIR_UUID_STRING_BUFLEN] = "";
    virStoragePoolGetUUIDString (pools[i], uuid);
    json_t *ds = json_pack ("{s:s,s:s}", "name", virStoragePoolGetName (pools[i]), "uuid", uuid);
    if (virStoragePoolGetInfo (pools[i], &info) == 0) {
      json_object_set_new (ds, "capacityBytes", json_integer ((json_int_t) info.capacity));
      json_object_set_new (ds, "freeBytes", json_integer ((json_int_t) info.available));
    }
    json_array_append_new (arr, ds);
    virStoragePoolFree (pools[i]);
  }
  free (pools);
  add_disk_datastores (v, arr);
  return arr;
}

json_t *
pallet_v2v_vsphere_networks (struct pallet_v2v_vsphere *v, char **err)
{
  virNetworkPtr *nets = NULL;
  int n = virConnectListAllNetworks (v->conn, &nets, 0);
  if (n < 0) {
    Pallet_v2v_failf (err, 0, "listing networks: %s", last_error ());
    return NULL;
  }
  json_t *arr = json_array ();
  for (int i = 0; i < n; i++) {
    json_array_append_new (arr, json_pack ("{s:s}", "name", virNetworkGetName (nets[i])));
    virNetworkFree (nets[i]);
  }
  free (nets);
  return arr;
}

json_t *
pallet_v2v_vsphere_hosts (struct pallet_v2v_vsphere *v, char **err)
{
  char *h = virConnectGetHostname (v->conn);
  virNodeInfo ni;
  if (!h) {
    Pallet_v2v_failf (err, 0, "reading the host: %s", last_error ());
    return NULL;
  }
  json_t *host = json_pack ("{s:s}", "name", h);
  free (h);
  if (virNodeGetInfo (v->conn, &ni) == 0) {
    json_object_set_new (host, "cpus", json_integer (ni.cpus));
    json_object_set_new (host, "memoryMiB", json_integer ((json_int_t) (ni.memory / 1024)));
    json_object_set_new (host, "cpuModel", json_string (ni.model));
  }
  return json_pack ("[o]", host);
}

static virDomainPtr
lookup (struct pallet_v2v_vsphere *v, const char *key)
{
  virDomainPtr d = virDomainLookupByName (v->conn, key);
  if (!d)
    d = virDomainLookupByUUIDString (v->conn, key);
  if (!d) {
    json_t *f = NULL;
    char *e = NULL;
    if (pallet_v2v_vsphere_vm (v, key, &f, &e) == PALLET_OK)
      d = virDomainLookupByName (v->conn, json_string_value (json_object_get (f, "name")));
    json_decref (f);
    free (e);
  }
  return d;
}

int
pallet_v2v_vsphere_domain_xml (struct pallet_v2v_vsphere *v, const char *key, char **xml,
                               char **err)
{
  *xml = NULL;
  virDomainPtr d = lookup (v, key);
  if (!d)
    return Pallet_v2v_failf (err, PALLET_E_NOT_FOUND,
                             "VM '%s' is not on this host (by name, UUID or moref); check the "
                             "plan's vms[] and the setting host-path",
                             key);
  char *x = virDomainGetXMLDesc (d, 0);
  int st = PALLET_OK;
  if (!x)
    st = Pallet_v2v_failf (err, PALLET_E_TRANSIENT, "reading VM %s: %s", key, last_error ());
  else if (!(*xml = strdup (x)))
    st = Pallet_v2v_failf (err, PALLET_E_NOMEM, "out of memory");
  free (x);
  virDomainFree (d);
  return st;
}

int
pallet_v2v_vsphere_set_power (const char *uri, const char *user, const char *password,
                              const char *key, int on, char **err)
{
  struct pallet_v2v_vsphere *v;
  int st = open_flags (uri, user, password, 0, &v, err);
  if (st != PALLET_OK)
    return st;
  virDomainPtr d = lookup (v, key);
  if (!d)
    st = Pallet_v2v_failf (err, PALLET_E_NOT_FOUND, "VM '%s' is not on this host", key);
  else if (on > 0 && virDomainCreate (d) < 0)
    st = Pallet_v2v_failf (err, PALLET_E_FAILED, "powering VM %s on: %s", key, last_error ());
  else if (on == 0 && virDomainShutdown (d) < 0 && virDomainDestroy (d) < 0)
    st = Pallet_v2v_failf (err, PALLET_E_FAILED, "powering VM %s off: %s", key, last_error ());
  else if (on < 0 && virDomainDestroy (d) < 0)
    st = Pallet_v2v_failf (err, PALLET_E_FAILED, "powering VM %s off: %s", key, last_error ());
  if (d)
    virDomainFree (d);
  pallet_v2v_vsphere_close (v);
  return st;
}
