/* SPDX-License-Identifier: Apache-2.0 */
/* convert's two guest options: first-boot scripts (the plan's
 * customizationScripts ConfigMap and the firstboot-scripts setting) and
 * boot verification (verify-boot: the converted disks booted under QEMU).
 * A plan annotation pallet.dev/NAME overrides the setting NAME. */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ec2.h"
#include "pallet-convert.h"
#include "verify_boot.h"

/* The plan's annotation pallet.dev/NAME, else the setting NAME, else NULL.
 * A YAML true/false or number (unquoted in spec.settings) means its text. */
static const char *
option (struct ec2 *s, const json_t *plan, const char *name)
{
  static _Thread_local char num[32];
  char key[128];
  const json_t *v;

  snprintf (key, sizeof key, "pallet.dev/%s", name);
  v = json_object_get (json_object_get (plan, "annotations"), key);
  if (!v)
    v = json_object_get (json_object_get (s->config, "_settings"), name);
  if (json_is_boolean (v))
    return json_is_true (v) ? "true" : "false";
  if (json_is_integer (v)) {
    snprintf (num, sizeof num, "%lld", (long long) json_integer_value (v));
    return num;
  }
  return json_is_string (v) ? json_string_value (v) : v ? "(not a string)" : NULL;
}

/* The settings a plan annotation pallet.dev/NAME may override. */
static const char *const plan_options[] = { "verify-boot", "verify-boot-timeout",
                                            "firstboot-scripts", "boot-pattern", NULL };

/* The plan option nearest NAME, or NULL when none is plausibly meant. */
static const char *
nearest_option (const char *name)
{
  const char *best = NULL;
  size_t bestd = 99;

  for (size_t i = 0; plan_options[i]; i++) {
    size_t d = ec2_edit_distance (name, plan_options[i]);
    if (d < bestd) {
      bestd = d;
      best = plan_options[i];
    }
  }
  return bestd <= 3 && bestd * 2 <= strlen (name) ? best : NULL;
}

static int
is_option (const char *name)
{
  for (size_t i = 0; plan_options[i]; i++)
    if (strcmp (name, plan_options[i]) == 0)
      return 1;
  return 0;
}

/* 1 when annotation KEY has the pallet.dev/ prefix, 2 when it has a near
 * miss of it in front of an option's name ("palet.dev/verify-boot"), else
 * 0; *NAME is the part after the slash. */
static int
pallet_annotation (const char *key, const char **name)
{
  const char *slash = strchr (key, '/');
  char prefix[32];

  if (slash == NULL || (size_t) (slash - key) >= sizeof prefix)
    return 0;
  *name = slash + 1;
  snprintf (prefix, sizeof prefix, "%.*s", (int) (slash - key), key);
  if (strcmp (prefix, "pallet.dev") == 0)
    return 1;
  return ec2_edit_distance (prefix, "pallet.dev") <= 2 && is_option (*name) ? 2 : 0;
}

int
ec2_annotations_check (const json_t *plan, char *why, size_t len)
{
  const char *key, *name;
  json_t *v;

  json_object_foreach (json_object_get (plan, "annotations"), key, v) {
    int kind = pallet_annotation (key, &name);
    if (kind == 0 || (kind == 1 && is_option (name)))
      continue;
    const char *near = nearest_option (name);
    snprintf (why, len,
              "the Plan's annotation \"%s\" is not one provider ec2 reads%s%s%s; fix: rename or "
              "remove it (a Plan may carry pallet.dev/verify-boot, pallet.dev/verify-boot-timeout, "
              "pallet.dev/boot-pattern and pallet.dev/firstboot-scripts; other settings go in the "
              "Provider's "
              "spec.settings)",
              key, near ? " (did you mean \"pallet.dev/" : "", near ? near : "",
              near ? "\"?)" : "");
    return -1;
  }
  return 0;
}

int
ec2_boot_settings (struct ec2 *s, const json_t *plan, int *mode, unsigned *timeout, char *why,
                   size_t len)
{
  const char *m = option (s, plan, "verify-boot");
  const char *t = option (s, plan, "verify-boot-timeout");
  char *end = NULL;
  unsigned long n = 300;

  *mode = Pallet_convert_boot_mode (m);
  if (*mode < 0) {
    snprintf (why, len,
              "verify-boot is \"%s\"; use true, false or warn (setting verify-boot or plan "
              "annotation pallet.dev/verify-boot)",
              m);
    return -1;
  }
  if (t) {
    errno = 0;
    n = strtoul (t, &end, 10);
  }
  if (t && (*t == '\0' || *t == '-' || *end != '\0' || errno || n == 0 || n > 86400)) {
    snprintf (why, len,
              "verify-boot-timeout is \"%s\"; give seconds, 1 to 86400 (a TCG boot takes 1-3 "
              "minutes)",
              t);
    return -1;
  }
  *timeout = (unsigned) n;
  const char *pat = option (s, plan, "boot-pattern");
  regex_t re;
  if (pat && (!*pat || regcomp (&re, pat, REG_EXTENDED | REG_NOSUB) != 0)) {
    snprintf (why, len,
              "boot-pattern \"%s\" is not an extended regular expression (setting boot-pattern "
              "or plan annotation pallet.dev/boot-pattern)",
              pat);
    return -1;
  }
  if (pat)
    regfree (&re);
  return 0;
}

/* ---- first-boot scripts ---------------------------------------------- */

void
ec2_scripts_free (struct ec2_scripts *sc)
{
  for (size_t i = 0; i < sc->n; i++) {
    if (sc->tmp[i])
      unlink (sc->path[i]);
    free (sc->path[i]);
  }
  for (size_t i = 0; i < sc->nrun; i++) {
    unlink (sc->run[i]);
    free (sc->run[i]);
  }
  if (sc->dir)
    rmdir (sc->dir);
  free (sc->dir);
  memset (sc, 0, sizeof *sc);
}

static const char *
base_name (const char *p)
{
  const char *b = strrchr (p, '/');
  return b ? b + 1 : p;
}

/* Writes TEXT to DIR/NAME (mode 0700) and returns the path, or NULL. */
static char *
write_script (const char *dir, const char *name, const char *text)
{
  char *path = NULL;
  int fd;
  size_t len = strlen (text);

  if (asprintf (&path, "%s/%s", dir, name) < 0)
    return NULL;
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
  if (fd < 0 || write (fd, text, len) != (ssize_t) len) {
    if (fd >= 0) {
      close (fd);
      unlink (path);
    }
    free (path);
    return NULL;
  }
  if (close (fd) != 0) {
    unlink (path);
    free (path);
    return NULL;
  }
  return path;
}

/* One ConfigMap key, by Forklift's naming: N_linux_firstboot_*.sh runs at
 * first boot (0), N_linux_run_*.sh during conversion (1); -1 for any other
 * name (Windows scripts too: the converter here handles Linux guests). */
static int
script_kind (const char *key)
{
  regex_t re;
  regmatch_t m[2];
  int ok = regcomp (&re, "^[0-9]+_linux_(run|firstboot)_[^/]*\\.sh$", REG_EXTENDED) == 0
           && regexec (&re, key, 2, m, 0) == 0;
  int run = ok && m[1].rm_eo - m[1].rm_so == 3;

  regfree (&re);
  return ok ? run : -1;
}

/* Whether the firstboot-scripts entry P is a readable regular file. */
static int
local_script_ok (const char *p, char *why, size_t len)
{
  struct stat st;
  const char *cause = NULL;

  if (*p == '\0')
    cause = "an empty name";
  else if (stat (p, &st) != 0 || access (p, R_OK) != 0)
    cause = strerror (errno);
  else if (!S_ISREG (st.st_mode))
    cause = "not a regular file";
  if (cause)
    snprintf (why, len,
              "firstboot-scripts: \"%s\" is not a readable file (%s); fix: give "
              "comma-separated paths of shell scripts on this host",
              p, cause);
  return cause ? -1 : 0;
}

int
ec2_scripts_check (struct ec2 *s, const json_t *plan, size_t *count, char *why, size_t len)
{
  const json_t *cm = json_object_get (json_object_get (plan, "customizationScripts"), "scripts");
  const char *key, *list = option (s, plan, "firstboot-scripts");
  json_t *text;
  size_t nfirst = 0, nrun = 0;

  json_object_foreach ((json_t *) cm, key, text) {
    int kind = script_kind (key);
    if (!json_is_string (text)) {
      snprintf (why, len, "customizationScripts key \"%s\" is not text", key);
      return -1;
    }
    if (kind < 0) {
      snprintf (why, len,
                "customizationScripts key \"%s\" is not a Linux script name; fix: name it "
                "N_linux_firstboot_TEXT.sh (runs once at first boot) or N_linux_run_TEXT.sh "
                "(runs during conversion)%s",
                key, strstr (key, "_win_") ? "; Windows scripts need a Windows converter" : "");
      return -1;
    }
    *(kind ? &nrun : &nfirst) += 1;
  }
  while (list && *list) {
    size_t n = strcspn (list, ",");
    char p[4096];
    snprintf (p, sizeof p, "%.*s", (int) n, list);
    if (local_script_ok (p, why, len) == -1)
      return -1;
    nfirst++;
    list += n + (list[n] == ',');
  }
  if (nfirst > EC2_MAX_SCRIPTS || nrun > EC2_MAX_SCRIPTS) {
    snprintf (why, len, "more than %d %s scripts; fix: merge some", EC2_MAX_SCRIPTS,
              nrun > EC2_MAX_SCRIPTS ? "conversion" : "first-boot");
    return -1;
  }
  if (count)
    *count = nfirst + nrun;
  return 0;
}

/* Writes one checked ConfigMap script into SC->dir. */
static int
add_configmap_script (struct ec2_scripts *sc, const char *vm, const char *key, const char *text,
                      struct pallet_call *call)
{
  char *p = write_script (sc->dir, key, text);
  if (p == NULL) {
    pallet_error (call, PALLET_E_IO, "convert %s: cannot write script %s in %s: %s", vm, key,
                  sc->dir, strerror (errno));
    return PALLET_E_IO;
  }
  if (script_kind (key) == 1)
    sc->run[sc->nrun++] = p;
  else {
    sc->tmp[sc->n] = 1;
    sc->path[sc->n++] = p;
  }
  return PALLET_OK;
}

/* The firstboot-scripts option (checked): comma-separated local files. */
static int
add_local_scripts (struct ec2_scripts *sc, const char *list)
{
  while (list && *list) {
    size_t n = strcspn (list, ",");
    if ((sc->path[sc->n] = strndup (list, n)) == NULL)
      return PALLET_E_NOMEM;
    sc->n++;
    list += n + (list[n] == ',');
  }
  return PALLET_OK;
}

static int
by_base_name (const void *a, const void *b)
{
  const char *const *x = a, *const *y = b;
  return strcmp (base_name (*x), base_name (*y));
}

/* Sorts the first-boot scripts by file name (their order), keeping the
 * tmp flags with them. */
static void
sort_scripts (struct ec2_scripts *sc)
{
  for (size_t i = 1; i < sc->n; i++)
    for (size_t k = i; k > 0 && by_base_name (&sc->path[k - 1], &sc->path[k]) > 0; k--) {
      char *p = sc->path[k];
      int t = sc->tmp[k];
      sc->path[k] = sc->path[k - 1];
      sc->tmp[k] = sc->tmp[k - 1];
      sc->path[k - 1] = p;
      sc->tmp[k - 1] = t;
    }
  qsort (sc->run, sc->nrun, sizeof *sc->run, by_base_name);
}

int
ec2_scripts_collect (struct ec2 *s, const json_t *plan, const char *vm, const char *work,
                     struct ec2_scripts *sc)
{
  const json_t *cm = json_object_get (json_object_get (plan, "customizationScripts"), "scripts");
  const char *key;
  json_t *text;
  char why[1024];
  int st = PALLET_OK;

  memset (sc, 0, sizeof *sc);
  if (ec2_scripts_check (s, plan, NULL, why, sizeof why) == -1) {
    pallet_error (s->call, PALLET_E_INVALID, "convert %s: %s", vm, why);
    return PALLET_E_INVALID;
  }
  if (json_object_size (cm) > 0) {
    if (asprintf (&sc->dir, "%s/scripts-XXXXXX", work && *work ? work : "/var/tmp") < 0
        || mkdtemp (sc->dir) == NULL) {
      pallet_error (s->call, PALLET_E_IO,
                    "convert %s: cannot create a directory for the customization scripts in "
                    "%s: %s",
                    vm, work && *work ? work : "/var/tmp", strerror (errno));
      free (sc->dir);
      sc->dir = NULL;
      return PALLET_E_IO;
    }
    json_object_foreach ((json_t *) cm, key, text)
      if ((st = add_configmap_script (sc, vm, key, json_string_value (text), s->call)))
        return st;
  }
  if ((st = add_local_scripts (sc, option (s, plan, "firstboot-scripts"))) != PALLET_OK) {
    pallet_error (s->call, st, "convert %s: out of memory", vm);
    return st;
  }
  sort_scripts (sc);
  return PALLET_OK;
}

json_t *
ec2_scripts_json (const struct ec2_scripts *sc)
{
  json_t *o = json_pack ("{s:[], s:[]}", "firstboot", "run");
  for (size_t i = 0; o && i < sc->n; i++)
    json_array_append_new (json_object_get (o, "firstboot"), json_string (base_name (sc->path[i])));
  for (size_t i = 0; o && i < sc->nrun; i++)
    json_array_append_new (json_object_get (o, "run"), json_string (base_name (sc->run[i])));
  return o;
}

/* ---- boot verification ------------------------------------------------ */

static void
on_console (void *opaque, int stream, const char *line)
{
  struct pallet_call *call = opaque;
  if (stream == 1)
    pallet_log (call, PALLET_LOG_DEBUG, "console: %s", line);
}

static int
on_cancel (void *opaque)
{
  return pallet_cancelled ((struct pallet_call *) opaque);
}

int
ec2_verify_boot (struct ec2 *s, const char *vm, const char **disks, size_t n, int mode,
                 unsigned timeout, int compat, json_t *state)
{
  struct pallet_call *call = s->call;
  const char *fw = ec2_str (json_object_get (state, "inspection"), "firmware");
  struct Pallet_convert_boot_options bo = { 0 };
  struct Pallet_convert_boot_result r;
  int st = PALLET_OK;

  bo.firmware = strcmp (fw, "uefi") == 0 ? "uefi" : "bios";
  bo.compat = compat;
  bo.timeout_seconds = timeout;
  bo.disk_format = "raw";
  bo.work_dir = call->host->get_param ? call->host->get_param (call, "work.dir") : NULL;
  bo.line = on_console;
  bo.cancel = on_cancel;
  bo.opaque = call;
  pallet_log (call, PALLET_LOG_INFO,
              "verify-boot: booting the converted disks under QEMU (%s, %s), up to %u s",
              bo.firmware, compat ? "SATA/e1000e" : "virtio-blk/virtio-net", timeout);
  enum Pallet_convert_error e = Pallet_convert_boot (disks, n, &bo, &r);
  json_t *rep = Pallet_convert_boot_result_json (&r, NULL);
  if (rep) {
    json_object_set_new (rep, "mode",
                         json_string (mode == PALLET_CONVERT_BOOT_WARN ? "warn" : "true"));
    json_object_set_new (state, "bootVerification", rep);
  }
  if (r.kvm_fallback)
    pallet_log (call, PALLET_LOG_INFO, "verify-boot: TCG, not KVM: %s", r.kvm_fallback);
  if (e == PALLET_CONVERT_OK)
    pallet_log (call, PALLET_LOG_INFO, "verify-boot: the guest came up in %.0f s on %s: %s",
                r.up_seconds, r.accel ? r.accel : "?", r.matched ? r.matched : "");
  else if (e == PALLET_CONVERT_E_CANCELLED) {
    st = PALLET_E_CANCELLED;
    pallet_error (call, st, "convert %s: %s", vm, r.message ? r.message : "cancelled");
  }
  else if (mode == PALLET_CONVERT_BOOT_WARN
           && (e == PALLET_CONVERT_E_FAILED || e == PALLET_CONVERT_E_TIMEOUT))
    pallet_log (call, PALLET_LOG_WARNING,
                "convert %s: %s (verify-boot: warn, so the migration goes on; "
                "state.bootVerification has the console tail)",
                vm, r.message ? r.message : "the boot check failed");
  else {
    st = e == PALLET_CONVERT_E_TIMEOUT || e == PALLET_CONVERT_E_FAILED ? PALLET_E_FAILED
         : e == PALLET_CONVERT_E_NOMEM                                 ? PALLET_E_NOMEM
         : e == PALLET_CONVERT_E_INVALID                               ? PALLET_E_INVALID
                                                                       : PALLET_E_IO;
    pallet_error (call, st,
                  "convert %s: %s (state.bootVerification has the console tail; "
                  "verify-boot: warn reports a failed boot without failing the VM)",
                  vm, r.message ? r.message : Pallet_convert_error_name (e));
  }
  Pallet_convert_boot_result_free (&r);
  return st;
}

/* ---- annotations ------------------------------------------------------ */

static void
annotate (json_t *ann, const char *key, const char *value)
{
  if (value && *value)
    json_object_set_new (ann, key, json_string (value));
}

void
ec2_annotate_guest (json_t *vm, const json_t *state)
{
  const json_t *insp = json_object_get (state, "inspection");
  const json_t *boot = json_object_get (state, "bootVerification");
  json_t *md = json_object_get (vm, "metadata"), *ann;
  char os[160];

  if (!json_is_object (md) || (!insp && !boot))
    return;
  ann = json_object_get (md, "annotations");
  if (!json_is_object (ann)) {
    ann = json_object ();
    json_object_set_new (md, "annotations", ann);
  }
  if (insp) {
    const json_t *vb = json_object_get (insp, "virtioBefore");
    snprintf (os, sizeof os, "%s %s", ec2_str (insp, "distro"), ec2_str (insp, "productName"));
    annotate (ann, "pallet.dev/os", *ec2_str (insp, "distro") ? os : NULL);
    annotate (ann, "pallet.dev/kernel", ec2_str (insp, "kernel"));
    annotate (ann, "pallet.dev/firmware", ec2_str (insp, "firmware"));
    annotate (ann, "pallet.dev/root-device", ec2_str (insp, "root"));
    if (json_is_object (vb))
      annotate (ann, "pallet.dev/virtio-before",
                json_is_true (json_object_get (vb, "kernel"))
                        && json_is_true (json_object_get (vb, "initramfs"))
                    ? "true"
                    : "false");
  }
  if (boot)
    annotate (ann, "pallet.dev/boot-verified",
              json_is_true (json_object_get (boot, "ok")) ? "true" : "false");
}

void
ec2_annotate_boot (struct ec2 *s, json_t *vm, const json_t *plan)
{
  static const char *const names[] = { "false", "true", "warn" };
  json_t *md = json_object_get (vm, "metadata"), *ann;
  char why[512], secs[24];
  int mode;
  unsigned timeout;
  if (!json_is_object (md) || ec2_boot_settings (s, plan, &mode, &timeout, why, sizeof why) < 0)
    return; /* validate and convert have reported it */
  ann = json_object_get (md, "annotations");
  if (!json_is_object (ann)) {
    ann = json_object ();
    json_object_set_new (md, "annotations", ann);
  }
  snprintf (secs, sizeof secs, "%u", timeout);
  annotate (ann, "pallet.dev/verify-boot",
            mode >= 0 && mode <= PALLET_CONVERT_BOOT_WARN ? names[mode] : "false");
  annotate (ann, "pallet.dev/verify-boot-timeout", secs);
  annotate (ann, "pallet.dev/boot-pattern", option (s, plan, "boot-pattern"));
}
