/* SPDX-License-Identifier: Apache-2.0 */
/* Cluster mode's boot stage: once the VirtualMachine is started, did its
 * guest boot?  KubeVirt's Ready condition only says the domain runs, so
 * the evidence is the guest agent (AgentConnected) or a serial console
 * line matching the boot pattern, read from the virt-launcher Pod's
 * guest-console-log container.  The outcome goes to the state
 * (cluster.boot), to the provider's cleanup (input.cluster.vmBooted),
 * and fails the VM only when its pallet.dev/verify-boot says true. */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "driver.h"
#include "pallet-kube.h"

#define VERIFY_ANN          "pallet.dev/verify-boot"
#define TIMEOUT_ANN         "pallet.dev/verify-boot-timeout"
#define PATTERN_ANN         "pallet.dev/boot-pattern"
#define RUN_STRATEGY_ANN    "pallet.dev/target-run-strategy"
#define DEFAULT_PATTERN     "login:|Cloud-init .* finished"
#define CONSOLE_CONTAINER   "guest-console-log"
#define CONSOLE_SCAN_LINES  2000
#define CONSOLE_TAIL_LINES  20
#define POLL_FIRST_MS       250
#define POLL_MAX_MS         5000
#define BOOT_PROGRESS_EVERY 30000
#define BOOT_TIMEOUT_MAX_S  86400

enum { VERIFY_FALSE, VERIFY_TRUE, VERIFY_WARN };
static const char *const verify_names[] = { "false", "true", "warn" };

struct boot_opts {
  const char *vm, *ns;
  int verify;
  unsigned timeout_s;
  const char *pattern;
  regex_t re;
};

/* What the last look at the VMI and the console found. */
struct boot_seen {
  char phase[32];
  int ready, agent;
  char conds[512];  /* "Ready=True, AgentConnected=False (reason)" */
  char reason[512]; /* why a Failed VMI failed */
  json_t *tail;     /* the console's last lines */
  char *line;       /* the console line that matched */
  char *console;    /* why there is no console, or NULL */
};

static const char *
jstr (const json_t *o, const char *k)
{
  return json_string_value (json_object_get (o, k));
}

static int
set_msg (char **errmsg, const char *fmt, const char *a, const char *b)
{
  if (asprintf (errmsg, fmt, a, b) < 0)
    *errmsg = NULL;
  return -1;
}

/* The VM's pallet.dev/verify-boot, verify-boot-timeout and boot-pattern;
 * -1 with *errmsg naming a bad one. */
static int
boot_opts (const json_t *vm, const char *ns, unsigned wait_s, struct boot_opts *b, char **errmsg)
{
  const json_t *ann = json_object_get (json_object_get (vm, "metadata"), "annotations");
  const char *verify = jstr (ann, VERIFY_ANN), *t = jstr (ann, TIMEOUT_ANN);
  memset (b, 0, sizeof *b);
  b->vm = jstr (json_object_get (vm, "metadata"), "name");
  b->ns = ns;
  b->verify = VERIFY_FALSE;
  for (int i = 0; verify && i < 3; i++)
    if (!strcmp (verify, verify_names[i]))
      b->verify = i;
  if (verify && strcmp (verify, verify_names[b->verify]))
    return set_msg (errmsg,
                    "VirtualMachine %s: annotation " VERIFY_ANN " is \"%s\"; use true, false or "
                    "warn",
                    b->vm, verify);
  b->timeout_s = wait_s;
  if (t) {
    char *end = NULL;
    errno = 0;
    unsigned long n = strtoul (t, &end, 10);
    if (!*t || *t == '-' || *end || errno || n == 0 || n > BOOT_TIMEOUT_MAX_S)
      return set_msg (errmsg,
                      "VirtualMachine %s: annotation " TIMEOUT_ANN " is \"%s\"; give seconds, 1 "
                      "to 86400",
                      b->vm, t);
    b->timeout_s = (unsigned) n;
  }
  b->pattern = jstr (ann, PATTERN_ANN) ? jstr (ann, PATTERN_ANN) : DEFAULT_PATTERN;
  if (regcomp (&b->re, b->pattern, REG_EXTENDED | REG_NOSUB) != 0) {
    b->pattern = NULL;
    return set_msg (errmsg,
                    "VirtualMachine %s: annotation " PATTERN_ANN " \"%s\" is not an extended "
                    "regular expression",
                    b->vm, jstr (ann, PATTERN_ANN));
  }
  return 0;
}

/* Whether the VM was started to run: its target run strategy (or, without
 * one, its runStrategy) Always or RerunOnFailure. */
static int
started (const json_t *vm)
{
  const char *rs =
      jstr (json_object_get (json_object_get (vm, "metadata"), "annotations"), RUN_STRATEGY_ANN);
  if (!rs)
    rs = jstr (json_object_get (vm, "spec"), "runStrategy");
  if (!rs)
    return json_is_true (json_object_get (json_object_get (vm, "spec"), "running"));
  return !strcmp (rs, "Always") || !strcmp (rs, "RerunOnFailure");
}

/* A JSON string of a console line, whatever bytes the guest wrote. */
static json_t *
line_json (const char *s)
{
  json_t *j = json_string (s);
  if (j)
    return j;
  char *c = strdup (s);
  for (char *p = c; p && *p; p++)
    if ((unsigned char) *p >= 0x80)
      *p = '?';
  j = c ? json_string (c) : NULL;
  free (c);
  return j;
}

static void
seen_reset (struct boot_seen *s)
{
  json_decref (s->tail);
  free (s->line);
  free (s->console);
  memset (s, 0, sizeof *s);
}

/* Scans the log for the boot pattern; keeps its last lines. */
static void
scan_console (struct boot_opts *b, struct boot_seen *s, char *log)
{
  json_t *lines = json_array ();
  char *save = NULL;
  for (char *l = strtok_r (log, "\n", &save); l; l = strtok_r (NULL, "\n", &save)) {
    size_t n = strlen (l);
    while (n && (l[n - 1] == '\r' || l[n - 1] == ' '))
      l[--n] = '\0';
    if (!s->line && regexec (&b->re, l, 0, NULL, 0) == 0)
      s->line = strdup (l);
    json_array_append_new (lines, line_json (l));
  }
  size_t n = json_array_size (lines), from = n > CONSOLE_TAIL_LINES ? n - CONSOLE_TAIL_LINES : 0;
  json_decref (s->tail);
  s->tail = json_array ();
  for (size_t i = from; i < n; i++)
    json_array_append (s->tail, json_array_get (lines, i));
  json_decref (lines);
}

/* The guest's serial console: the guest-console-log container of the VM's
 * virt-launcher Pod (KubeVirt >= 1.1 with logSerialConsole). */
static void
read_console (struct Pallet_kube *k, struct boot_opts *b, struct boot_seen *s)
{
  char *sel = NULL, *path = NULL, *err = NULL, *log = NULL;
  json_t *pods = json_array ();
  free (s->console);
  s->console = NULL;
  if (asprintf (&sel, "kubevirt.io=virt-launcher,vm.kubevirt.io/name=%s", b->vm) < 0)
    sel = NULL;
  path = sel ? Pallet_kube_path ("v1", "Pod", b->ns, NULL, &err) : NULL;
  int st = path ? Pallet_kube_list (k, path, sel, 0, pods, &err) : PALLET_E_NOMEM;
  const json_t *pod = NULL;
  size_t i;
  json_t *p;
  json_array_foreach (pods, i, p) /* the running one, if several */
  {
    const char *ph = jstr (json_object_get (p, "status"), "phase");
    if (!pod || (ph && !strcmp (ph, "Running")))
      pod = p;
  }
  const char *name = jstr (json_object_get (pod, "metadata"), "name");
  if (st == PALLET_OK && name)
    st = Pallet_kube_pod_log (k, b->ns, name, CONSOLE_CONTAINER, CONSOLE_SCAN_LINES, &log, &err);
  if (st == PALLET_OK && name && log)
    scan_console (b, s, log);
  else if (asprintf (&s->console, "%s",
                     st != PALLET_OK ? (err ? err : "cannot read the console")
                                     : "no virt-launcher Pod (labels kubevirt.io=virt-launcher, "
                                       "vm.kubevirt.io/name)")
           < 0)
    s->console = NULL;
  free (log);
  free (err);
  free (path);
  free (sel);
  json_decref (pods);
}

static void
add_cond (struct boot_seen *s, const json_t *c)
{
  size_t n = strlen (s->conds);
  const char *reason = jstr (c, "reason");
  snprintf (s->conds + n, sizeof s->conds - n, "%s%s=%s%s%s%s", n ? ", " : "", jstr (c, "type"),
            jstr (c, "status") ? jstr (c, "status") : "?", reason ? " (" : "", reason ? reason : "",
            reason ? ")" : "");
}

/* GETs the VMI (same name and namespace as the VM).  Not there yet, or no
 * KubeVirt serving VMIs: phase "".  A status other than OK: retry. */
static int
observe_vmi (struct Pallet_kube *k, struct boot_opts *b, struct boot_seen *s)
{
  json_t *vmi = NULL;
  char *err = NULL;
  int st =
      Pallet_kube_get (k, "kubevirt.io/v1", "VirtualMachineInstance", b->ns, b->vm, &vmi, &err);
  s->phase[0] = s->conds[0] = s->reason[0] = '\0';
  s->ready = s->agent = 0;
  /* Refused or unreachable: polled again, and the outcome says why. */
  if (st != PALLET_OK && st != PALLET_E_NOT_FOUND && err)
    snprintf (s->reason, sizeof s->reason, "%s", err);
  free (err);
  if (st == PALLET_E_NOT_FOUND)
    return PALLET_OK;
  if (st != PALLET_OK)
    return st;
  const json_t *status = json_object_get (vmi, "status");
  snprintf (s->phase, sizeof s->phase, "%s", jstr (status, "phase") ? jstr (status, "phase") : "");
  size_t i;
  json_t *c;
  json_array_foreach (json_object_get (status, "conditions"), i, c) {
    const char *type = jstr (c, "type"), *cs = jstr (c, "status");
    int on = cs && !strcmp (cs, "True");
    if (!type)
      continue;
    add_cond (s, c);
    if (!strcmp (type, "Ready"))
      s->ready = on;
    else if (!strcmp (type, "AgentConnected"))
      s->agent = on;
    /* Why it does not run: Ready or Synchronized False, not the rest
     * (LiveMigratable=False says nothing about the boot). */
    if (!on && !s->reason[0] && (!strcmp (type, "Ready") || !strcmp (type, "Synchronized"))
        && (jstr (c, "message") || jstr (c, "reason")))
      snprintf (s->reason, sizeof s->reason, "%s",
                jstr (c, "message") ? jstr (c, "message") : jstr (c, "reason"));
  }
  if (jstr (status, "reason"))
    snprintf (s->reason, sizeof s->reason, "%s", jstr (status, "reason"));
  json_decref (vmi);
  return PALLET_OK;
}

static long
since_ms (const struct timespec *t0)
{
  struct timespec now;
  clock_gettime (CLOCK_MONOTONIC, &now);
  return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static void
progress (struct vmrun *v, const struct boot_opts *b, const struct boot_seen *s, long waited_s)
{
  char msg[700];
  snprintf (msg, sizeof msg, "VirtualMachineInstance %s: %s%s%s (%lds)", b->vm,
            *s->phase ? s->phase : "not there yet", *s->conds ? ", " : "", s->conds, waited_s);
  json_t *x = json_pack ("{s:s,s:s,s:b,s:I}", "vmi", b->vm, "phase", s->phase, "ready", s->ready,
                         "waitedSeconds", (json_int_t) waited_s);
  Pallet_drv_event (v, "wait", "apply", "boot", msg, x);
  json_decref (x);
}

/* Polls until the guest booted, the VMI failed, or the timeout: the
 * result "booted", "failed" or "timeout"; "" when cancelled. */
static const char *
watch_boot (struct vmrun *v, struct Pallet_kube *k, struct boot_opts *b, struct boot_seen *s,
            long *waited_ms)
{
  struct timespec t0;
  clock_gettime (CLOCK_MONOTONIC, &t0);
  unsigned delay = POLL_FIRST_MS;
  char last[600] = "\x01";
  long last_report = 0;
  for (;;) {
    if (Pallet_drv_cancelled (v, 0))
      return "";
    long ms = since_ms (&t0);
    *waited_ms = ms;
    int changed = 0;
    if (observe_vmi (k, b, s) == PALLET_OK) {
      char key[600];
      snprintf (key, sizeof key, "%s/%s", s->phase, s->conds);
      if (strcmp (key, last) || ms - last_report >= BOOT_PROGRESS_EVERY) {
        changed = strcmp (key, last) != 0;
        snprintf (last, sizeof last, "%s", key);
        last_report = ms;
        progress (v, b, s, ms / 1000);
      }
      if (!strcmp (s->phase, "Failed"))
        return "failed";
      if (!strcmp (s->phase, "Running") && s->ready) {
        if (s->agent)
          return "booted";
        read_console (k, b, s);
        if (s->line)
          return "booted";
      }
    }
    if (ms >= (long) b->timeout_s * 1000)
      return "timeout";
    delay = changed ? POLL_FIRST_MS : (delay * 2 > POLL_MAX_MS ? POLL_MAX_MS : delay * 2);
    Pallet_drv_nap (v, delay, 0);
  }
}

static json_t *
boot_record (const struct boot_opts *b, const struct boot_seen *s, const char *result,
             long waited_ms)
{
  json_t *r = json_pack ("{s:s,s:s,s:s,s:I,s:I,s:s?}", "result", result, "verifyBoot",
                         verify_names[b->verify], "vmi", b->vm ? b->vm : "", "waitedSeconds",
                         (json_int_t) (waited_ms / 1000), "timeoutSeconds",
                         (json_int_t) b->timeout_s, "pattern", b->pattern);
  if (!r)
    return NULL;
  json_object_set_new (r, "phase", json_string (s->phase));
  json_object_set_new (r, "conditions", json_string (s->conds));
  if (!strcmp (result, "booted"))
    json_object_set_new (r, "evidence", json_string (s->agent ? "AgentConnected" : "console"));
  if (s->line && !s->agent)
    json_object_set_new (r, "line", line_json (s->line));
  if (*s->reason)
    json_object_set_new (r, "reason", json_string (s->reason));
  if (s->console)
    json_object_set_new (r, "console", json_string (s->console));
  json_object_set_new (r, "consoleTail", s->tail ? json_incref (s->tail) : json_array ());
  return r;
}

/* The outcome in one line, for the event, the warning and the error. */
static char *
boot_summary (const struct boot_opts *b, const struct boot_seen *s, const char *result,
              long waited_s)
{
  char *m = NULL;
  size_t nt = json_array_size (s->tail);
  const char *last = nt ? json_string_value (json_array_get (s->tail, nt - 1)) : NULL;
  int r;
  if (!strcmp (result, "booted"))
    r = asprintf (&m, "VirtualMachine %s/%s booted in %ld s: %s%s%s", b->ns, b->vm, waited_s,
                  s->agent ? "the guest agent connected" : "console line \"",
                  s->agent ? "" : s->line, s->agent ? "" : "\"");
  else
    r = asprintf (&m,
                  "VirtualMachine %s/%s %s: VirtualMachineInstance phase %s%s%s%s, conditions "
                  "%s; last console line: %s%s%s%s%s",
                  b->ns, b->vm,
                  !strcmp (result, "failed") ? "failed to boot" : "did not boot within the wait",
                  *s->phase ? s->phase : "(none: no VirtualMachineInstance)",
                  *s->reason ? " (" : "", s->reason, *s->reason ? ")" : "",
                  *s->conds ? s->conds : "(none)", last ? "\"" : "", last ? last : "(none)",
                  last ? "\"" : "", s->console ? "; " : "", s->console ? s->console : "");
  if (r < 0)
    m = NULL;
  if (m && !strcmp (result, "timeout")) {
    char *t = NULL;
    if (asprintf (&t, "%s (waited %ld s, " TIMEOUT_ANN " or --wait-timeout)", m, waited_s) >= 0) {
      free (m);
      m = t;
    }
  }
  return m;
}

/* Records the outcome and decides whether it fails the VM. */
static int
boot_outcome (struct vmrun *v, json_t *rec, const struct boot_opts *b, const struct boot_seen *s,
              const char *result, long waited_ms, char **errmsg)
{
  json_object_set_new (rec, "boot", boot_record (b, s, result, waited_ms));
  char *msg = boot_summary (b, s, result, waited_ms / 1000);
  json_t *x = json_pack ("{s:s,s:s,s:I}", "result", result, "verifyBoot", verify_names[b->verify],
                         "waitedSeconds", (json_int_t) (waited_ms / 1000));
  if (x && !strcmp (result, "booted"))
    json_object_set_new (x, "evidence", json_string (s->agent ? "AgentConnected" : "console"));
  Pallet_drv_event (v, "boot", "apply", result, msg, x);
  json_decref (x);
  int booted = !strcmp (result, "booted");
  if (!booted && b->verify == VERIFY_WARN)
    Pallet_log (PALLET_LOG_WARNING, "%s: %s (verify-boot: warn, so the migration goes on)", v->name,
                msg ? msg : "the VM did not boot");
  if (Pallet_drv_save (v) != 0) {
    free (msg);
    return STEP_IOERR;
  }
  if (booted || b->verify != VERIFY_TRUE) {
    free (msg);
    return STEP_OK;
  }
  if (asprintf (errmsg, "%s (verify-boot: true)", msg ? msg : "the VM did not boot") < 0)
    *errmsg = NULL;
  free (msg);
  return STEP_FAILED;
}

int
Pallet_cluster_boot (struct vmrun *v, struct Pallet_kube *k, const json_t *vm, const char *ns,
                     unsigned wait_s, json_t *rec, char **errmsg)
{
  struct boot_opts b;
  struct boot_seen s = { 0 };
  if (!vm || !started (vm)) {
    json_object_set_new (
        rec, "boot",
        json_pack ("{s:s,s:I}", "result", "not-started", "waitedSeconds", (json_int_t) 0));
    Pallet_drv_event (v, "boot", "apply", "not-started",
                      vm ? "the VirtualMachine stays halted: no boot to wait for"
                         : "no VirtualMachine: no boot to wait for",
                      NULL);
    return Pallet_drv_save (v) != 0 ? STEP_IOERR : STEP_OK;
  }
  if (boot_opts (vm, ns, wait_s, &b, errmsg) != 0) {
    if (b.pattern)
      regfree (&b.re);
    return STEP_FAILED;
  }
  long waited_ms = 0;
  const char *result = watch_boot (v, k, &b, &s, &waited_ms);
  int rc;
  if (!*result)
    rc = STEP_CANCELLED;
  else {
    if (strcmp (result, "booted") && !s.tail)
      read_console (k, &b, &s); /* what the guest said, for the record */
    rc = boot_outcome (v, rec, &b, &s, result, waited_ms, errmsg);
  }
  seen_reset (&s);
  regfree (&b.re);
  return rc;
}
