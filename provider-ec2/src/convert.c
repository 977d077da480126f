/* SPDX-License-Identifier: Apache-2.0 */
/* convert: inspect and convert the guest in place with virt-v2v-in-place,
 * when its disks are local (copy mode to raw files), then verify the
 * result (Pallet_convert_verify) and keep the report in the state as
 * "verification".  Zero-copy volumes live in the cluster; their conversion
 * belongs to a conversion pod there, so this op records that and leaves
 * them alone. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include "ec2.h"
#include "pallet-convert.h"
#include "verify_boot.h"

/* state.conversion once the disks hold the converted guest. */
#define CONVERTED "converted with virt-v2v-in-place"

/* "PATH@MTIME" of each disk: tells a retry whether the disks it finds are
 * still the ones this op converted (a new transfer rewrites them). */
static json_t *
disks_stamp (const char **disks, size_t n)
{
  json_t *a = json_array ();
  for (size_t i = 0; a && i < n; i++) {
    struct stat sb;
    char buf[4200];
    if (stat (disks[i], &sb) != 0)
      sb.st_mtim.tv_sec = sb.st_mtim.tv_nsec = 0;
    snprintf (buf, sizeof buf, "%s@%lld.%09ld", disks[i], (long long) sb.st_mtim.tv_sec,
              (long) sb.st_mtim.tv_nsec);
    json_array_append_new (a, json_string (buf));
  }
  return a;
}

static double
now_seconds (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

struct conv_ctx {
  struct pallet_call *call;
  const char *vm;
};

static void
on_step (void *opaque, const char *step, double elapsed, int index)
{
  struct conv_ctx *c = opaque;
  pallet_log (c->call, PALLET_LOG_INFO, "[%6.1f] %s", elapsed, step);
  /* virt-v2v-in-place prints about a dozen steps. */
  pallet_progress (c->call, c->vm, "convert", (uint64_t) index + 1, 12, "steps");
}

static void
on_line (void *opaque, int stream, const char *line)
{
  struct conv_ctx *c = opaque;
  pallet_log (c->call, PALLET_LOG_DEBUG, "%s: %s", stream == 1 ? "out" : "err", line);
}

static int
on_cancel (void *opaque)
{
  struct conv_ctx *c = opaque;
  return pallet_cancelled (c->call);
}

static int
status_of (enum Pallet_convert_error e)
{
  switch (e) {
  case PALLET_CONVERT_OK: return PALLET_OK;
  case PALLET_CONVERT_E_INVALID: return PALLET_E_INVALID;
  case PALLET_CONVERT_E_UNSUPPORTED:
  case PALLET_CONVERT_E_NO_OS:
  case PALLET_CONVERT_E_MULTIBOOT: return PALLET_E_UNSUPPORTED;
  case PALLET_CONVERT_E_TIMEOUT: return PALLET_E_TIMEOUT;
  case PALLET_CONVERT_E_CANCELLED: return PALLET_E_CANCELLED;
  case PALLET_CONVERT_E_NOMEM: return PALLET_E_NOMEM;
  case PALLET_CONVERT_E_DEVICE_NAME: return PALLET_E_UNSUPPORTED;
  case PALLET_CONVERT_E_IO:
  case PALLET_CONVERT_E_DISK:
  case PALLET_CONVERT_E_HOST_SPACE:
  case PALLET_CONVERT_E_TOOL: return PALLET_E_IO;
  case PALLET_CONVERT_E_GUEST_SPACE:
  case PALLET_CONVERT_E_FAILED: return PALLET_E_FAILED;
  }
  return PALLET_E_FAILED;
}

/* Post-conversion verification of the converted DISKS: the report goes
 * into STATE as "verification"; a failed check fails the op with the
 * check's name, what it found and the fix. */
static int
verify_guest (struct pallet_call *call, const char *vm, const char **disks, size_t n, int force_tcg,
              json_t *state)
{
  struct Pallet_convert_verify_options vo = { force_tcg, "raw" };
  char *json = NULL, *msg = NULL;
  double t0 = now_seconds ();
  json_t *report;
  int st = PALLET_OK;

  pallet_log (call, PALLET_LOG_INFO,
              "verifying the converted guest (virtio drivers, initramfs, device names)");
  enum Pallet_convert_error e = Pallet_convert_verify (disks, n, &vo, &json, &msg);
  json_object_set_new (state, "verificationSeconds", json_real (now_seconds () - t0));
  if (e != PALLET_CONVERT_OK) {
    st = status_of (e);
    pallet_error (call, st,
                  "convert %s: the guest was converted but could not be "
                  "verified: %s",
                  vm, msg ? msg : Pallet_convert_error_name (e));
    goto out;
  }
  report = json_loads (json, 0, NULL);
  if (report == NULL) {
    st = PALLET_E_NOMEM;
    pallet_error (call, st, "convert %s: out of memory", vm);
    goto out;
  }
  json_object_set_new (state, "verification", report);
  if (!json_is_true (json_object_get (report, "ok"))) {
    st = PALLET_E_FAILED;
    pallet_error (call, st,
                  "convert %s: post-conversion verification failed "
                  "(state.verification has every check): %s",
                  vm, msg ? msg : "a check failed");
    goto out;
  }
  pallet_log (call, PALLET_LOG_INFO,
              "verified: kernel %s has virtio_blk "
              "and virtio_net in its initramfs; no Xen/NVMe device names",
              ec2_str (report, "kernel"));
out:
  free (json);
  free (msg);
  return st;
}

/* The local disks in disk-index order: the boot disk first, as the guest
 * sees them.  NULL when out of memory; *n counts the local ones. */
static const char **
local_disks (json_t *vols, size_t *n)
{
  const char **disks = calloc (json_array_size (vols) + 1, sizeof *disks);
  size_t i;
  json_t *v;
  *n = 0;
  for (long long want = 0; disks && want < (long long) json_array_size (vols); want++)
    json_array_foreach (vols, i, v)
      if (ec2_int (v, "diskIndex", -1) == want && *ec2_str (v, "localPath"))
        disks[(*n)++] = ec2_str (v, "localPath");
  return disks;
}

static int
wants_force_tcg (struct ec2 *s)
{
  const char *setting_tcg =
      json_string_value (json_object_get (json_object_get (s->config, "_settings"), "force-tcg"));
  const char *env_tcg = getenv ("LIBGUESTFS_BACKEND_SETTINGS");
  return (setting_tcg && !strcmp (setting_tcg, "true"))
         || (env_tcg && strstr (env_tcg, "force_tcg"));
}

/* Inspects the guest once, keeping the report in the state as "inspection". */
static int
inspect_guest (struct pallet_call *call, const char *vm, const char **disks, size_t n,
               int force_tcg, json_t *state)
{
  struct Pallet_convert_inspect_options io = { force_tcg, "raw" };
  char *json = NULL, *msg = NULL;
  int st = PALLET_OK;
  enum Pallet_convert_error e = Pallet_convert_inspect (disks, n, &io, &json, &msg);
  if (e != PALLET_CONVERT_OK) {
    st = status_of (e);
    pallet_error (call, st, "convert %s: inspection: %s", vm,
                  msg ? msg : Pallet_convert_error_name (e));
  }
  else {
    json_t *insp = json_loads (json, 0, NULL);
    if (insp)
      json_object_set_new (state, "inspection", insp);
  }
  free (json);
  free (msg);
  return st;
}

/* Converted before (a retry after a failed or cancelled verification):
 * converting again would stack a second conversion on the first. */
static int
already_converted (const char **disks, size_t n, json_t *state)
{
  json_t *stamp = disks_stamp (disks, n);
  int same = stamp && json_equal (stamp, json_object_get (state, "convertedDisks"));
  json_decref (stamp);
  return !strcmp (ec2_str (state, "conversion"), CONVERTED) && same;
}

/* The block-device mapping as the fix-up wants it: each disk's EC2
 * device name, by its position in diskIndex order (the local disks here,
 * the conversion Pod's claims in the cluster). */
struct Pallet_convert_device *
ec2_device_map (const json_t *vols, size_t n)
{
  struct Pallet_convert_device *m = calloc (n + 1, sizeof *m);
  size_t i;
  const json_t *v;
  for (size_t k = 0; m && k < n; k++)
    json_array_foreach (vols, i, v)
      if (ec2_int (v, "diskIndex", -1) == (long long) k) {
        m[k].name = ec2_str (v, "deviceName");
        m[k].disk = k;
      }
  return m;
}

/* Setting fix-device-names (default true): "false" skips the fix-up. */
int
ec2_wants_fixup (const struct ec2 *s)
{
  json_t *v = json_object_get (json_object_get (s->config, "_settings"), "fix-device-names");
  return !(json_is_false (v) || (json_is_string (v) && !strcmp (json_string_value (v), "false")));
}

/* The fix-up's rewrites: logged one by one and kept in the state. */
static void
record_rewrites (struct pallet_call *call, const char *vm, const struct Pallet_convert_result *r,
                 json_t *state)
{
  for (size_t k = 0; k < r->nrewrites; k++)
    pallet_log (call, PALLET_LOG_INFO, "convert %s: %s line %u: %s -> %s", vm, r->rewrites[k].file,
                r->rewrites[k].line, r->rewrites[k].from, r->rewrites[k].to);
  json_object_set_new (state, "deviceNameRewrites",
                       Pallet_convert_rewrites_json (r->rewrites, r->nrewrites));
}

/* Runs virt-v2v-in-place on the disks; emits the state once they changed. */
static int
convert_disks (struct ec2 *s, const char *vm, const char **disks, size_t n, int force_tcg,
               const struct ec2_scripts *sc, json_t *state)
{
  struct pallet_call *call = s->call;
  struct conv_ctx cc = { call, vm };
  const char *work = call->host->get_param ? call->host->get_param (call, "work.dir") : NULL;
  struct Pallet_convert_options co = { 0 };
  co.force_tcg = force_tcg;
  co.timeout_seconds = 3600;
  co.disk_format = "raw";
  co.work_dir = work;
  co.guest_name = vm;
  co.progress = on_step;
  co.line = on_line;
  co.cancel = on_cancel;
  co.opaque = &cc;
  struct Pallet_convert_device *map = ec2_device_map (json_object_get (state, "volumes"), n);
  co.fix_device_names = ec2_wants_fixup (s);
  co.devices = map;
  co.ndevices = map ? n : 0;
  co.firstboot = (const char *const *) sc->path;
  co.nfirstboot = sc->n;
  co.run_scripts = (const char *const *) sc->run;
  co.nrun_scripts = sc->nrun;
  json_object_set_new (state, "firstbootScripts", ec2_scripts_json (sc));
  struct Pallet_convert_result r;
  enum Pallet_convert_error e = Pallet_convert_run (disks, n, &co, &r);
  free (map);
  if (co.fix_device_names && e == PALLET_CONVERT_OK) /* else the overlays were dropped */
    record_rewrites (call, vm, &r, state);
  json_t *warnings = json_array ();
  for (size_t k = 0; k < r.nwarnings; k++)
    json_array_append_new (warnings, json_string (r.warnings[k]));
  json_object_set_new (state, "conversionWarnings", warnings);
  json_object_set_new (state, "conversionSeconds", json_real (r.elapsed));
  if (e != PALLET_CONVERT_OK) {
    int st = status_of (e);
    pallet_error (call, st, "convert %s: %s", vm,
                  r.message ? r.message : Pallet_convert_error_name (e));
    Pallet_convert_result_free (&r);
    return st;
  }
  Pallet_convert_result_free (&r);
  json_object_set_new (state, "conversion", json_string (CONVERTED));
  json_object_set_new (state, "convertedDisks", disks_stamp (disks, n));
  /* The disks are changed now: say so even if what follows fails. */
  ec2_emit_state (s, state);
  return PALLET_OK;
}

/* Verifies the converted disks (unless cancelled) and emits the state. */
static int
verify_converted (struct ec2 *s, const char *vm, const char **disks, size_t n, int force_tcg,
                  json_t *state)
{
  if (pallet_cancelled (s->call)) {
    pallet_error (s->call, PALLET_E_CANCELLED,
                  "convert %s: cancelled after the conversion, before "
                  "its verification; run the op again to verify",
                  vm);
    return PALLET_E_CANCELLED;
  }
  json_object_del (state, "verification");
  int st = verify_guest (s->call, vm, disks, n, force_tcg, state);
  ec2_emit_state (s, state);
  return st;
}

/* verify-boot after the conversion (or on the unconverted disks of a
 * skipGuestConversion plan); a retry skips a boot already passed on the
 * same disks. */
static int
boot_check (struct ec2 *s, const char *vm, const char **disks, size_t n, int mode, unsigned timeout,
            int compat, json_t *state)
{
  json_t *stamp = disks_stamp (disks, n);
  int same = stamp && json_equal (stamp, json_object_get (state, "bootVerifiedDisks"));
  int st;

  if (mode == PALLET_CONVERT_BOOT_OFF
      || (same
          && json_is_true (json_object_get (json_object_get (state, "bootVerification"), "ok")))) {
    json_decref (stamp);
    return PALLET_OK;
  }
  st = ec2_verify_boot (s, vm, disks, n, mode, timeout, compat, state);
  if (st == PALLET_OK)
    json_object_set_new (state, "bootVerifiedDisks", stamp);
  else
    json_decref (stamp);
  ec2_emit_state (s, state);
  return st;
}

/* Compatibility mode (SATA, e1000e) is what an unconverted guest gets. */
static int
compat_mode (const json_t *plan)
{
  const json_t *v = json_object_get (json_object_get (plan, "spec"), "useCompatibilityMode");
  return v ? json_is_true (v) : 1;
}

int
ec2_convert (void *handle, struct pallet_call *call, const char *input_json)
{
  struct ec2 *s = handle;
  struct ec2_input in;
  ec2_begin (s, call);
  if (ec2_input_parse (s, "convert", input_json, &in) < 0)
    return PALLET_E_INVALID;
  json_t *state = json_deep_copy (in.state);
  json_t *vols = json_object_get (state, "volumes");
  size_t n;
  const char **disks = local_disks (vols, &n);
  struct ec2_scripts sc = { 0 };
  int st = PALLET_OK, boot_mode;
  unsigned boot_timeout;
  if (!disks) {
    pallet_error (call, PALLET_E_NOMEM, "convert: out of memory");
    st = PALLET_E_NOMEM;
    goto out;
  }
  char why[1024];
  if (ec2_annotations_check (in.plan, why, sizeof why) == -1
      || ec2_boot_settings (s, in.plan, &boot_mode, &boot_timeout, why, sizeof why) == -1) {
    pallet_error (call, PALLET_E_INVALID, "convert %s: %s", in.vm_id, why);
    st = PALLET_E_INVALID;
    goto out;
  }
  int local = n > 0 && n == json_array_size (vols);
  if (json_is_true (json_object_get (in.plan, "skipGuestConversion"))) {
    json_object_set_new (state, "conversion",
                         json_string ("skipped: the plan sets skipGuestConversion"));
    ec2_emit_state (s, state);
    if (local && boot_mode != PALLET_CONVERT_BOOT_OFF && !json_object_get (state, "inspection")
        && (st = inspect_guest (call, in.vm_id, disks, n, wants_force_tcg (s), state)) != PALLET_OK)
      goto out;
    if (local)
      st =
          boot_check (s, in.vm_id, disks, n, boot_mode, boot_timeout, compat_mode (in.plan), state);
    goto out;
  }
  if (n == 0 || n != json_array_size (vols)) {
    /* Zero copy (EBS volumes in the target zone) or a copy Pod filling the
     * PVCs: the disks exist only in the cluster, where the conversion Pod
     * build_vm emits converts them. */
    int in_cluster = !strcmp (ec2_str (state, "copyIn"), "cluster");
    const char *where = in_cluster ? "the copy Pod fills PVCs in the cluster"
                                   : "the disks are EBS volumes in the target zone";
    char note[256];
    snprintf (note, sizeof note, "not run here: %s; the conversion Pod converts them there", where);
    json_object_set_new (state, "conversion", json_string (note));
    if (ec2_cluster_applies (s))
      pallet_log (call, PALLET_LOG_INFO,
                  "convert %s: %s; the conversion Pod converts them there, run by the host",
                  in.vm_id, where);
    else
      pallet_log (call, PALLET_LOG_WARNING,
                  "convert %s: %s; guest conversion was not run by this provider: apply the "
                  "manifests so the conversion Pod runs it (or pallet migrate --apply)",
                  in.vm_id, where);
    ec2_emit_state (s, state);
    goto out;
  }
  int force_tcg = wants_force_tcg (s);
  if (!json_object_get (state, "inspection")
      && (st = inspect_guest (call, in.vm_id, disks, n, force_tcg, state)) != PALLET_OK)
    goto out;
  if (!already_converted (disks, n, state)) {
    const char *work = call->host->get_param ? call->host->get_param (call, "work.dir") : NULL;
    if ((st = ec2_scripts_collect (s, in.plan, in.vm_id, work, &sc)) != PALLET_OK
        || (st = convert_disks (s, in.vm_id, disks, n, force_tcg, &sc, state)) != PALLET_OK)
      goto out;
  }
  st = verify_converted (s, in.vm_id, disks, n, force_tcg, state);
  if (st == PALLET_OK)
    st = boot_check (s, in.vm_id, disks, n, boot_mode, boot_timeout, 0, state);
out:
  ec2_scripts_free (&sc);
  free (disks);
  json_decref (state);
  ec2_input_free (&in);
  return st;
}
