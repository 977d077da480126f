/* SPDX-License-Identifier: Apache-2.0 */
/* inventory: VMs (and for vSphere hosts, datastores, networks).  The host
 * applies the query. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "v2v.h"
#include "pallet-v2v-vsphere.h"

static int
ends_with (const char *s, const char *suf)
{
  size_t n = strlen (s), m = strlen (suf);
  return n > m && !strcmp (s + n - m, suf);
}

/* ova: the .ova files (or the url's one); disk: the image files. */
static json_t *
file_vms (struct v2v *s)
{
  json_t *arr = json_array ();
  struct stat st;
  if (stat (s->path, &st) == 0 && !S_ISDIR (st.st_mode)) {
    json_array_append_new (arr, json_pack ("{s:s,s:s,s:s,s:I}", "id", s->path, "name", s->path,
                                           "file", s->path, "sizeBytes", (json_int_t) st.st_size));
    return arr;
  }
  DIR *d = opendir (s->path);
  struct dirent *e;
  while (d && (e = readdir (d))) {
    const char *n = e->d_name;
    int want = s->type == V2V_OVA
                   ? ends_with (n, ".ova")
                   : ends_with (n, ".img") || ends_with (n, ".raw") || ends_with (n, ".qcow2");
    char p[4096];
    snprintf (p, sizeof p, "%s/%s", s->path, n);
    if (!want || stat (p, &st) < 0 || !S_ISREG (st.st_mode))
      continue;
    json_array_append_new (arr, json_pack ("{s:s%,s:s%,s:s,s:I,s:s}", "id", n,
                                           (size_t) (strrchr (n, '.') - n), "name", n,
                                           (size_t) (strrchr (n, '.') - n), "file", p, "sizeBytes",
                                           (json_int_t) st.st_size, "powerState", "Off"));
  }
  if (d)
    closedir (d);
  return arr;
}

static json_t *
libvirt_kind (struct v2v *s, const char *kind, int *st, char **err)
{
  struct pallet_v2v_vsphere *v;
  *st = pallet_v2v_vsphere_open (s->uri, s->user, s->password ? s->password : "", &v, err);
  if (*st != PALLET_OK)
    return NULL;
  json_t *r = !strcmp (kind, "vms")          ? pallet_v2v_vsphere_vms (v, err)
              : !strcmp (kind, "datastores") ? pallet_v2v_vsphere_datastores (v, err)
              : !strcmp (kind, "networks")   ? pallet_v2v_vsphere_networks (v, err)
                                             : pallet_v2v_vsphere_hosts (v, err);
  pallet_v2v_vsphere_close (v);
  if (!r)
    *st = PALLET_E_TRANSIENT;
  return r;
}

int
v2v_inventory (void *handle, struct pallet_call *call, const char *input_json)
{
  struct v2v *s = handle;
  s->call = call;
  json_t *in = input_json ? json_loads (input_json, 0, NULL) : NULL;
  json_t *q = json_object_get (in, "query");
  if (!json_is_object (in) || !json_is_string (json_object_get (in, "kind"))
      || (q && !json_is_string (q) && !json_is_null (q))) {
    pallet_error (
        call, PALLET_E_INVALID,
        "%s inventory: the input must be {\"kind\": \"vms\", \"query\": \"...\"} (strings)",
        s->type_name);
    json_decref (in);
    return PALLET_E_INVALID;
  }
  const char *kind = v2v_str (in, "kind");
  int libvirt = s->type == V2V_VSPHERE || s->type == V2V_XEN;
  int ok = !strcmp (kind, "vms")
           || (s->type == V2V_VSPHERE
               && (!strcmp (kind, "hosts") || !strcmp (kind, "datastores")
                   || !strcmp (kind, "networks")));
  if (!ok) {
    pallet_error (call, in ? PALLET_E_UNSUPPORTED : PALLET_E_INVALID,
                  "%s inventory: kind '%.40s' is unknown; known kinds: vms%s", s->type_name, kind,
                  s->type == V2V_VSPHERE ? ", hosts, datastores, networks" : "");
    json_decref (in);
    return in ? PALLET_E_UNSUPPORTED : PALLET_E_INVALID;
  }
  int st = PALLET_OK;
  char *err = NULL;
  json_t *items = libvirt ? libvirt_kind (s, kind, &st, &err) : file_vms (s);
  if (!items)
    pallet_error (call, st, "%s inventory %s: %s", s->type_name, kind, err ? err : "failed");
  size_t i;
  json_t *it;
  json_array_foreach (items, i, it) {
    /* every item has an id: the moref for VMs, else the name */
    if (!*v2v_str (it, "id"))
      json_object_set_new (it, "id", json_string (v2v_str (it, "name")));
    if (v2v_emit (s, PALLET_EMIT_ITEM, it) < 0) {
      st = PALLET_E_FAILED;
      break;
    }
  }
  free (err);
  json_decref (items);
  json_decref (in);
  return st;
}
