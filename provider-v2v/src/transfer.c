/* SPDX-License-Identifier: Apache-2.0 */
/* prepare_source records the source's facts; transfer runs virt-v2v,
 * which copies and converts in one go (-o kubevirt into the VM's output
 * directory); convert checks what it left.  A finished conversion is
 * adopted, a cut-short one redone. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "v2v.h"
#include "pallet-v2v-kubevirt.h"
#include "pallet-v2v-ova.h"
#include "pallet-v2v-vsphere.h"

/* A running vSphere VM is powered off through the API (a guest shutdown
 * first, then a hard power-off), polled until it is off.  The state keeps
 * the original power state, so a rollback powers it on again. */
static int
power_off (struct v2v *s, const struct v2v_input *in, json_t *state)
{
  long long tries = json_integer_value (json_object_get (state, "powerOffTries"));
  char *err = NULL;
  int st = pallet_v2v_vsphere_set_power (s->uri, s->user, s->password ? s->password : "", in->key,
                                         tries >= 3 ? -1 : 0, &err);
  if (st != PALLET_OK) {
    pallet_error (s->call, st, "%s", err);
    free (err);
    return st;
  }
  pallet_log (s->call, PALLET_LOG_INFO, "%s: powering the VM off for the copy", in->key);
  json_object_set_new (state, "poweredOffByPallet", json_true ());
  json_object_set_new (state, "powerOffTries", json_integer (tries + 1));
  if (v2v_emit (s, PALLET_EMIT_STATE, state) < 0)
    return PALLET_E_FAILED;
  pallet_retry_after (s->call, 2000);
  return PALLET_PENDING;
}

int
v2v_prepare_source (void *handle, struct pallet_call *call, const char *input_json)
{
  struct v2v *s = handle;
  struct v2v_input in;
  s->call = call;
  if (v2v_input_parse (s, "prepare_source", input_json, &in) < 0)
    return PALLET_E_INVALID;
  if (s->type == V2V_VSPHERE && v2v_is_conversion (in.plan)) {
    int r = v2v_conversion_prepare (s, &in);
    v2v_input_free (&in);
    return r;
  }
  json_t *facts = NULL;
  char *err = NULL;
  int st = v2v_source_facts (s, in.key, &facts, &err);
  json_t *state = json_deep_copy (in.state);
  json_object_set_new (state, "migrationUID", json_string (in.migration_uid));
  int on = facts && !strcmp (v2v_str (facts, "powerState"), "On");
  if (st != PALLET_OK)
    pallet_error (call, st, "%s", err);
  else if (on && !(s->type == V2V_VSPHERE && s->power_off)) {
    st = PALLET_E_CONFLICT;
    pallet_error (
        call, st,
        "VM %s is powered on; virt-v2v copies only a shut-off guest: shut it down and run pallet migrate again",
        in.key);
  }
  else if (on) {
    if (!json_object_get (state, "sourcePowerState"))
      json_object_set_new (state, "sourcePowerState", json_string ("On"));
    st = power_off (s, &in, state);
  }
  else {
    if (!json_object_get (state, "sourcePowerState"))
      json_object_set_new (state, "sourcePowerState", json_string (v2v_str (facts, "powerState")));
    /* the VM's power state as it was before the migration */
    json_object_set_new (facts, "powerState", json_string (v2v_str (state, "sourcePowerState")));
    json_object_set (state, "source", facts);
    if (v2v_emit (s, PALLET_EMIT_STATE, state) < 0)
      st = PALLET_E_FAILED;
  }
  json_decref (state);
  free (err);
  json_decref (facts);
  v2v_input_free (&in);
  return st;
}

struct progress {
  struct v2v *s;
  const char *vm;
};

static void
on_event (void *opaque, const struct pallet_v2v_event *ev)
{
  struct progress *p = opaque;
  struct pallet_call *call = p->s->call;
  if (ev->kind == PALLET_V2V_EV_PROGRESS) {
    pallet_progress (call, p->vm, "transfer", ev->done, ev->total, "percent");
    return;
  }
  /* A disk is done when the next one starts, or at "Finishing off". */
  int fin = ev->text && !strcmp (ev->text, "Finishing off");
  if (ev->disks)
    pallet_progress (call, p->vm, "transfer", (uint64_t) (fin ? ev->disks : ev->disk - 1),
                     (uint64_t) ev->disks, "disks");
  int level = ev->kind == PALLET_V2V_EV_WARNING ? PALLET_LOG_WARNING
              : ev->kind == PALLET_V2V_EV_ERROR ? PALLET_LOG_ERROR
                                                : PALLET_LOG_INFO;
  pallet_log (call, level, "%s: virt-v2v: %s", p->vm, ev->text ? ev->text : "");
}

static int
cancelled (void *opaque)
{
  struct progress *p = opaque;
  return pallet_cancelled (p->s->call);
}

/* Leftovers of a run cut short: NAME.yaml and NAME-sd*. */
static void
remove_outputs (const char *dir, const char *name)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  size_t n = strlen (name);
  char p[4096];
  while (d && (e = readdir (d))) {
    if (strncmp (e->d_name, name, n)
        || (strcmp (e->d_name + n, ".yaml") && strncmp (e->d_name + n, "-sd", 3)))
      continue;
    snprintf (p, sizeof p, "%s/%s", dir, e->d_name);
    unlink (p);
  }
  if (d)
    closedir (d);
}

/* The outputs of a finished run: the YAML and the disks it names. */
static json_t *
outputs_of (const char *dir, const char *name, char **err)
{
  char yaml[4096];
  snprintf (yaml, sizeof yaml, "%s/%s.yaml", dir, name);
  json_t *vmi = pallet_v2v_kubevirt_read (yaml, err);
  if (!vmi)
    return NULL;
  json_t *disks = json_array (), *v;
  size_t i;
  json_array_foreach (json_object_get (json_object_get (vmi, "spec"), "volumes"), i, v) {
    const char *p = v2v_str (json_object_get (v, "hostDisk"), "path");
    struct stat st;
    if (*p && stat (p, &st) == 0)
      json_array_append_new (
          disks, json_pack ("{s:s,s:I}", "path", p, "sizeBytes", (json_int_t) st.st_size));
  }
  json_decref (vmi);
  return json_pack ("{s:s,s:o}", "yaml", yaml, "disks", disks);
}

static int
source_of (struct v2v *s, const struct v2v_input *in, struct pallet_v2v_source *src, char **file)
{
  memset (src, 0, sizeof *src);
  src->input = s->input;
  src->transport = s->transport;
  src->uri = s->uri;
  src->guest = in->key;
  src->vddk_libdir = s->vddk_libdir;
  src->vddk_thumbprint = s->thumbprint;
  src->vddk_config = s->vddk_config;
  *file = NULL;
  if (s->type == V2V_OVA || s->type == V2V_DISK) {
    *file = v2v_source_file (s, in->key);
    if (!*file) {
      pallet_error (s->call, PALLET_E_NOT_FOUND, "%s: no such %s in %s", in->key,
                    s->type == V2V_OVA ? "OVA" : "disk image", s->path);
      return PALLET_E_NOT_FOUND;
    }
  }
  if (s->type == V2V_OVA) {
    /* Refused before virt-v2v's tar sees it. */
    json_t *m = NULL;
    char *err = NULL;
    int st = pallet_v2v_ova_check (*file, &m, &err);
    json_decref (m);
    if (st != PALLET_OK) {
      pallet_error (s->call, st, "%s", err);
      free (err);
      return st;
    }
    src->ova = *file;
  }
  return PALLET_OK;
}

static int
outcome_status (struct v2v *s, const char *vm, const struct pallet_v2v_result *r, const char *prog,
                const char *log)
{
  switch (r->outcome) {
  case PALLET_V2V_OK: return PALLET_OK;
  case PALLET_V2V_CANCELLED:
    pallet_error (s->call, PALLET_E_CANCELLED, "%s: %s", vm, r->error);
    return PALLET_E_CANCELLED;
  case PALLET_V2V_TIMEOUT:
    pallet_error (s->call, PALLET_E_TIMEOUT, "%s: %s", vm, r->error);
    return PALLET_E_TIMEOUT;
  case PALLET_V2V_SPAWN:
    pallet_error (s->call, PALLET_E_IO, "%s: %s", vm, r->error);
    return PALLET_E_IO;
  default:
    pallet_error (s->call, PALLET_E_FAILED, "%s: %s failed (exit %d): %s; its output is in %s", vm,
                  prog, r->exit_status, r->error, log);
    return PALLET_E_FAILED;
  }
}

int
v2v_run_logged (struct v2v *s, const char *key, char *const *argv, const char *dir,
                const char *prog, const char *what)
{
  char log[4096];
  snprintf (log, sizeof log, "%s/%s.log", dir, prog);
  struct progress p = { s, key };
  struct pallet_v2v_run_opts o = { .timeout_s = s->timeout_s,
                                   .cancelled = cancelled,
                                   .cancel_opaque = &p,
                                   .event = on_event,
                                   .event_opaque = &p,
                                   .log_path = log,
                                   .journal_dir = dir };
  struct pallet_v2v_result r;
  pallet_log (s->call, PALLET_LOG_INFO, "%s: running %s (%s) in %s", key, prog, what, dir);
  pallet_v2v_run (argv, &o, &r);
  int st = outcome_status (s, key, &r, prog, log);
  if (st == PALLET_OK)
    pallet_log (s->call, PALLET_LOG_INFO, "%s: %s finished in %.0f s", key, prog, r.seconds);
  return st;
}

/* Runs virt-v2v once into dir; on success the journal lists the outputs. */
static int
convert_once (struct v2v *s, const struct v2v_input *in, const char *dir, const char *name)
{
  struct pallet_v2v_source src;
  char *file = NULL, *pw = NULL, *err = NULL;
  int st = source_of (s, in, &src, &file);
  const char *disks[1] = { file };
  if (s->type == V2V_DISK) {
    src.disks = disks;
    src.ndisks = 1;
  }
  if (st == PALLET_OK && s->password && (s->type == V2V_VSPHERE || s->type == V2V_XEN)) {
    if (!(pw = pallet_v2v_password_file (dir, s->password))) {
      pallet_error (s->call, PALLET_E_IO, "%s: cannot write the password file in %s: %s", in->key,
                    dir, strerror (errno));
      st = PALLET_E_IO;
    }
    src.password_file = pw;
  }
  struct pallet_v2v_output out = { .dir = dir, .name = name };
  char **argv = st == PALLET_OK ? pallet_v2v_argv (s->virt_v2v, &src, &out, NULL, &err) : NULL;
  if (st == PALLET_OK && !argv) {
    pallet_error (s->call, PALLET_E_INVALID, "%s: %s", in->key, err);
    st = PALLET_E_INVALID;
  }
  if (st == PALLET_OK)
    st = v2v_run_logged (s, in->key, argv, dir, "virt-v2v", s->uri ? s->uri : file);
  pallet_v2v_remove_file (pw); /* as soon as virt-v2v has ended */
  pallet_v2v_argv_free (argv);
  free (file);
  free (err);
  return st;
}

int
v2v_transfer (void *handle, struct pallet_call *call, const char *input_json)
{
  struct v2v *s = handle;
  struct v2v_input in;
  s->call = call;
  if (v2v_input_parse (s, "transfer", input_json, &in) < 0)
    return PALLET_E_INVALID;
  if (s->type == V2V_VSPHERE && v2v_is_conversion (in.plan)) {
    int r = v2v_conversion_transfer (s, &in);
    v2v_input_free (&in);
    return r;
  }
  json_t *facts = json_object_get (in.state, "source");
  char *name = pallet_v2v_vm_name (in.plan, in.vm,
                                   *v2v_str (facts, "name") ? v2v_str (facts, "name") : in.key);
  char *dir = name ? v2v_vm_dir (s, name) : NULL;
  int st = dir ? PALLET_OK : PALLET_E_INVALID;
  if (!name)
    pallet_error (call, st, "%s: no DNS-1123 name can be made; set vms[].targetName", in.key);
  json_t *outs = dir ? pallet_v2v_finished (dir) : NULL;
  if (outs && strcmp (v2v_str (outs, "guest"), in.key)) {
    /* another source VM converted under the same target name */
    pallet_log (call, PALLET_LOG_WARNING, "%s: %s holds the conversion of '%s'; converting again",
                in.key, dir, v2v_str (outs, "guest"));
    json_decref (outs);
    outs = NULL;
  }
  if (outs)
    pallet_log (call, PALLET_LOG_INFO, "%s: adopting the conversion that finished in %s", in.key,
                dir);
  else if (st == PALLET_OK) {
    if (pallet_v2v_reap_stale (dir) > 0)
      pallet_log (call, PALLET_LOG_WARNING,
                  "%s: stopped the virt-v2v an earlier, killed pallet left running", in.key);
    remove_outputs (dir, name);
    st = convert_once (s, &in, dir, name);
    char *err = NULL;
    if (st == PALLET_OK && !(outs = outputs_of (dir, name, &err))) {
      pallet_error (call, PALLET_E_FAILED,
                    "%s: virt-v2v succeeded but its output is unreadable: %s", in.key, err);
      st = PALLET_E_FAILED;
    }
    free (err);
    if (outs)
      json_object_set_new (outs, "guest", json_string (in.key));
    if (st == PALLET_OK && pallet_v2v_mark_done (dir, outs) < 0) {
      pallet_error (call, PALLET_E_IO, "%s: cannot write the run journal in %s: %s", in.key, dir,
                    strerror (errno));
      st = PALLET_E_IO;
    }
  }
  if (st == PALLET_OK) {
    json_t *state = json_deep_copy (in.state);
    json_object_set_new (state, "outputDir", json_string (dir));
    json_object_set (state, "outputs", outs);
    json_object_set_new (state, "transferred", json_true ());
    if (v2v_emit (s, PALLET_EMIT_STATE, state) < 0)
      st = PALLET_E_FAILED;
    json_decref (state);
  }
  json_decref (outs);
  free (dir);
  free (name);
  v2v_input_free (&in);
  return st;
}

int
v2v_convert (void *handle, struct pallet_call *call, const char *input_json)
{
  struct v2v *s = handle;
  struct v2v_input in;
  s->call = call;
  if (v2v_input_parse (s, "convert", input_json, &in) < 0)
    return PALLET_E_INVALID;
  if (s->type == V2V_VSPHERE && v2v_is_conversion (in.plan)) {
    int r = v2v_conversion_convert (s, &in);
    v2v_input_free (&in);
    return r;
  }
  int st = PALLET_OK;
  const char *dir = v2v_str (in.state, "outputDir");
  json_t *outs = *dir ? pallet_v2v_finished (dir) : NULL;
  if (!json_is_true (json_object_get (in.state, "transferred")) || !outs) {
    st = PALLET_E_CONFLICT;
    pallet_error (
        call, st,
        "%s: no finished virt-v2v conversion in '%s'; run the migration again from transfer "
        "(pallet cleanup, then pallet migrate)",
        in.key, dir);
  }
  else {
    /* virt-v2v converted the guest while it copied it. */
    json_t *state = json_deep_copy (in.state);
    json_object_set_new (state, "converted", json_true ());
    json_object_set_new (state, "convertedBy", json_string ("virt-v2v"));
    if (v2v_emit (s, PALLET_EMIT_STATE, state) < 0)
      st = PALLET_E_FAILED;
    json_decref (state);
  }
  json_decref (outs);
  v2v_input_free (&in);
  return st;
}
