/* SPDX-License-Identifier: Apache-2.0 */
/* cleanup: after success nothing temporary is left (the password file
 * went when virt-v2v ended; the converted disks are the migration's
 * result).  A rollback stops a virt-v2v still running and removes the
 * VM's output directory. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "v2v.h"
#include "pallet-v2v-kubevirt.h"
#include "pallet-v2v-vsphere.h"

static void
remove_dir (struct v2v *s, const char *dir)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  char p[4096];
  while (d && (e = readdir (d))) {
    if (!strcmp (e->d_name, ".") || !strcmp (e->d_name, ".."))
      continue;
    snprintf (p, sizeof p, "%s/%s", dir, e->d_name);
    if (unlink (p) == 0) {
      json_t *it = json_pack ("{s:s,s:s,s:s}", "kind", "file", "id", p, "action", "deleted");
      v2v_emit (s, PALLET_EMIT_ITEM, it);
      json_decref (it);
    }
  }
  if (d)
    closedir (d);
  rmdir (dir);
}

int
v2v_cleanup (void *handle, struct pallet_call *call, const char *input_json)
{
  struct v2v *s = handle;
  struct v2v_input in;
  s->call = call;
  if (v2v_input_parse (s, "cleanup", input_json, &in) < 0)
    return PALLET_E_INVALID;
  const char *dir = v2v_str (in.state, "outputDir");
  char *found = NULL;
  if (!*dir && in.rollback) {
    /* transfer may have started before its state was saved */
    json_t *facts = json_object_get (in.state, "source");
    char *name = pallet_v2v_vm_name (in.plan, in.vm,
                                     *v2v_str (facts, "name") ? v2v_str (facts, "name") : in.key);
    if (name && (s->output_dir || call->host->get_param (call, "work.dir")))
      found = v2v_vm_dir (s, name);
    free (name);
    dir = found ? found : "";
  }
  /* A VM this migration powered off is powered on again. */
  if (in.rollback && json_is_true (json_object_get (in.state, "poweredOffByPallet"))
      && s->type == V2V_VSPHERE) {
    char *err = NULL;
    int st = pallet_v2v_vsphere_set_power (s->uri, s->user, s->password ? s->password : "", in.key,
                                           1, &err);
    if (st != PALLET_OK && !(err && strstr (err, "already")) && !(err && strstr (err, "state"))) {
      pallet_error (call, st, "%s: powering the VM on again: %s", in.key, err);
      free (err);
      v2v_input_free (&in);
      return st;
    }
    free (err);
    json_t *it =
        json_pack ("{s:s,s:s,s:s}", "kind", "vm-power", "id", in.key, "action", "powered-on");
    v2v_emit (s, PALLET_EMIT_ITEM, it);
    json_decref (it);
  }
  if (in.rollback && *dir) {
    if (pallet_v2v_reap_stale (dir) > 0)
      pallet_log (call, PALLET_LOG_INFO, "%s: stopped a virt-v2v still running in %s", in.key, dir);
    remove_dir (s, dir);
  }
  free (found);
  v2v_input_free (&in);
  return PALLET_OK;
}
