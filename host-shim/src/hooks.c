/* SPDX-License-Identifier: Apache-2.0 */
/* Forklift Hooks: a VM's PreHook (before anything of it is touched) and
 * PostHook (once it was migrated), rendered as the ConfigMap and Pod
 * Forklift's hook runner makes (pkg/controller/plan/hook.go): container
 * "hook", the ConfigMap's workload.yml, plan.yml and playbook.yml under
 * /tmp/hook, activeDeadlineSeconds from spec.deadline, the hook's (else
 * the plan's) service account.  Names are fixed per migration, VM and
 * step, and the outcome is kept in the state's "hooks", so a run killed
 * at any point neither makes a hook twice nor reruns one that succeeded. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "driver.h"
#include "state.h"

#define HOOK_DIR       "/tmp/hook"
#define GRACE_S        60 /* the host's wait beyond activeDeadlineSeconds */
#define LOCAL_TAIL     20
#define LOCAL_POLL_MS  100
#define DEFAULT_WAIT_S 3600

static const char *
jstr (const json_t *o, const char *k)
{
  return json_string_value (json_object_get (o, k));
}

const json_t *
Pallet_hook_find (struct vmrun *v, const char *step)
{
  size_t i;
  const json_t *h;
  json_array_foreach (json_object_get (v->vm, "hooks"), i, h)
    if (jstr (h, "step") && !strcmp (jstr (h, "step"), step))
      return h;
  return NULL;
}

/* <plan>-<vm>-<step>, a DNS-1123 label; a hash of all three when it
 * does not fit, so two VMs never share one. */
static void
object_name (struct vmrun *v, const char *step, char *out, size_t n)
{
  char raw[512], *o = out;
  snprintf (raw, sizeof raw, "%s-%s-%s",
            jstr (v->d->plan, "name") ? jstr (v->d->plan, "name") : "plan", v->id ? v->id : "vm",
            step);
  size_t len = 0;
  for (const char *c = raw; *c && len + 1 < n && len < 63; c++) {
    char ch = *c >= 'A' && *c <= 'Z' ? (char) (*c - 'A' + 'a') : *c;
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
      ch = '-';
    if (ch == '-' && (len == 0 || o[len - 1] == '-'))
      continue;
    o[len++] = ch;
  }
  o[len] = '\0';
  if (strlen (raw) > 50 || len >= 63) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256 ((const unsigned char *) raw, strlen (raw), md);
    if (len > 44)
      len = 44;
    snprintf (o + len, n - len, "-%02x%02x%02x%02x-%s", md[0], md[1], md[2], md[3],
              !strcmp (step, "PreHook") ? "prehook" : "posthook");
  }
  while ((len = strlen (o)) > 0 && o[len - 1] == '-')
    o[len - 1] = '\0';
}

/* The VM as the hook sees it: the plan's entry (without the hooks'
 * playbooks) and what validate found; never a secret (providers keep
 * none in their results or state). */
static json_t *
workload (struct vmrun *v)
{
  json_t *vm = json_deep_copy (v->vm);
  json_object_del (vm, "hooks");
  json_t *w = json_pack ("{s:o,s:s?,s:s?}", "vm", vm, "id", v->id, "name", v->name);
  json_t *res = json_object_get (json_object_get (v->doc, "results"), "validate");
  if (w && res)
    json_object_set (w, "validate", res);
  return w;
}

static char *
yaml_text (const json_t *j)
{
  /* JSON is YAML; ansible reads either. */
  return json_dumps (j, JSON_INDENT (2) | JSON_SORT_KEYS);
}

/* [ConfigMap, Pod] of the hook. */
static json_t *
render (struct vmrun *v, const json_t *h, const char *ns)
{
  char name[80];
  const char *step = jstr (h, "step");
  object_name (v, step, name, sizeof name);
  json_t *labels = json_pack (
      "{s:s,s:s,s:s,s:s,s:s,s:s}", "migration", v->d->uid, "vmID", v->id ? v->id : "", "plan",
      jstr (v->d->plan, "uid") ? jstr (v->d->plan, "uid") : "", "step", step, "hook",
      jstr (h, "uid") ? jstr (h, "uid") : jstr (json_object_get (h, "hook"), "name"), "resource",
      "hook-config");
  json_t *w = workload (v);
  char *wl = w ? yaml_text (w) : NULL;
  char *pl = yaml_text (json_object_get (v->d->plan, "spec") ? json_object_get (v->d->plan, "spec")
                                                             : json_object ());
  json_decref (w);
  json_t *cm = json_pack ("{s:s,s:s,s:{s:s,s:s,s:O},s:{s:s,s:s,s:s}}", "apiVersion", "v1", "kind",
                          "ConfigMap", "metadata", "name", name, "namespace", ns, "labels", labels,
                          "data", "workload.yml", wl ? wl : "{}", "plan.yml", pl ? pl : "{}",
                          "playbook.yml", jstr (h, "playbookText") ? jstr (h, "playbookText") : "");
  free (wl);
  free (pl);
  json_t *c = json_pack ("{s:s,s:s,s:[{s:s,s:s}]}", "name", "hook", "image", jstr (h, "image"),
                         "volumeMounts", "name", "hook", "mountPath", HOOK_DIR);
  if (c && jstr (h, "playbookText"))
    json_object_set_new (c, "command",
                         json_pack ("[s,s,s,s,s,s]", "/bin/entrypoint", "ansible-runner", "run",
                                    "/tmp/runner", "-p", HOOK_DIR "/playbook.yml"));
  json_t *spec = json_pack ("{s:s,s:[o],s:[{s:s,s:{s:s}}]}", "restartPolicy", "Never", "containers",
                            c, "volumes", "name", "hook", "configMap", "name", name);
  json_int_t deadline = json_integer_value (json_object_get (h, "deadline"));
  if (spec && deadline > 0)
    json_object_set_new (spec, "activeDeadlineSeconds", json_integer (deadline));
  /* Hook SA > plan SA, as Forklift. */
  const char *sa = jstr (h, "serviceAccount");
  if (!sa || !*sa)
    sa = jstr (json_object_get (v->d->plan, "spec"), "serviceAccount");
  if (spec && sa && *sa)
    json_object_set_new (spec, "serviceAccountName", json_string (sa));
  json_t *pod =
      json_pack ("{s:s,s:s,s:{s:s,s:s,s:o},s:o}", "apiVersion", "v1", "kind", "Pod", "metadata",
                 "name", name, "namespace", ns, "labels", labels, "spec", spec);
  json_t *out = cm && pod ? json_pack ("[o,o]", cm, pod) : NULL;
  if (!out) {
    json_decref (cm);
    json_decref (pod);
  }
  return out;
}

/* <manifest dir>/hooks/<step>-<kind>.json, beside the VM's manifests
 * (a sub-directory: `kubectl apply -f DIR` does not run hooks). */
static char *
write_objects (struct vmrun *v, const char *step, const json_t *objs)
{
  char *vdir = Pallet_drv_manifest_dir (v), *dir = NULL;
  if (!vdir || asprintf (&dir, "%s/hooks", vdir) < 0)
    dir = NULL;
  free (vdir);
  if (!dir || Pallet_mkdirs (dir) != 0) {
    free (dir);
    return NULL;
  }
  size_t i;
  const json_t *o;
  json_array_foreach (objs, i, o) {
    char *p = NULL;
    if (asprintf (&p, "%s/%s-%s.json", dir, step, jstr (o, "kind")) < 0
        || Pallet_write_json_file (p, o) != 0) {
      free (p);
      free (dir);
      return NULL;
    }
    free (p);
  }
  return dir;
}

/* --- --run-hooks-locally ------------------------------------------------ */

static int
write_text (const char *dir, const char *name, const char *text)
{
  char *p = NULL;
  if (asprintf (&p, "%s/%s", dir, name) < 0)
    return -1;
  int fd = open (p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  free (p);
  if (fd < 0)
    return -1;
  size_t n = strlen (text);
  int r = write (fd, text, n) == (ssize_t) n ? 0 : -1;
  close (fd);
  return r;
}

static char *
read_tail (const char *path)
{
  FILE *f = fopen (path, "r");
  if (!f)
    return strdup ("");
  fseek (f, 0, SEEK_END);
  long size = ftell (f);
  long from = size > 16384 ? size - 16384 : 0;
  fseek (f, from, SEEK_SET);
  char *buf = calloc (1, (size_t) (size - from) + 1);
  if (buf && fread (buf, 1, (size_t) (size - from), f) != (size_t) (size - from))
    buf[0] = '\0';
  fclose (f);
  if (!buf)
    return NULL;
  const char *p = Pallet_last_lines (buf, LOCAL_TAIL);
  char *tail = strdup (p);
  free (buf);
  return tail;
}

/* Runs the Pod's command as a process: /tmp/hook becomes a temporary
 * directory holding the ConfigMap's files, the image's /bin/entrypoint
 * wrapper is left out when the host has none (it execs its arguments),
 * the environment is the Pod's (none of its own: PATH, HOME, and
 * HOOK_DIR for scripts that want the directory). */
static int
run_local (struct vmrun *v, const json_t *objs, unsigned wait_s, char **errmsg)
{
  const json_t *cm = json_array_get (objs, 0), *pod = json_array_get (objs, 1);
  const json_t *data = json_object_get (cm, "data");
  const json_t *cmd = json_object_get (
      json_array_get (json_object_get (json_object_get (pod, "spec"), "containers"), 0), "command");
  if (!json_array_size (cmd)) {
    if (asprintf (errmsg,
                  "the hook has no playbook, so its Pod runs the image's own entrypoint, which "
                  "--run-hooks-locally cannot run; give the Hook a playbook or run it with --apply")
        < 0)
      *errmsg = NULL;
    return STEP_FAILED;
  }
  char tmpl[] = "/tmp/pallet-hook-XXXXXX";
  char *dir = mkdtemp (tmpl);
  if (!dir) {
    if (asprintf (errmsg, "cannot make a directory for the hook: %s", strerror (errno)) < 0)
      *errmsg = NULL;
    return STEP_IOERR;
  }
  const char *key;
  const json_t *val;
  json_object_foreach ((json_t *) data, key, val)
    write_text (dir, key, json_string_value (val));
  size_t n = json_array_size (cmd), first = 0;
  if (n > 1 && !strcmp (json_string_value (json_array_get (cmd, 0)), "/bin/entrypoint")
      && access ("/bin/entrypoint", X_OK) != 0)
    first = 1;
  char **argv = calloc (n + 1, sizeof *argv);
  for (size_t i = first; argv && i < n; i++) {
    const char *a = json_string_value (json_array_get (cmd, i));
    if (!strncmp (a, HOOK_DIR, strlen (HOOK_DIR))) {
      if (asprintf (&argv[i - first], "%s%s", dir, a + strlen (HOOK_DIR)) < 0)
        argv[i - first] = NULL;
    }
    else
      argv[i - first] = strdup (a);
  }
  char *envp[4] = { NULL, NULL, NULL, NULL }, *log = NULL;
  const char *path = getenv ("PATH");
  if (asprintf (&envp[0], "PATH=%s", path ? path : "/usr/bin:/bin") < 0)
    envp[0] = NULL;
  if (asprintf (&envp[1], "HOME=%s", dir) < 0)
    envp[1] = NULL;
  if (asprintf (&envp[2], "HOOK_DIR=%s", dir) < 0)
    envp[2] = NULL;
  if (asprintf (&log, "%s/hook.log", dir) < 0)
    log = NULL;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 1, log ? log : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC,
                                    0600);
  posix_spawn_file_actions_adddup2 (&fa, 1, 2);
  posix_spawnattr_t at;
  posix_spawnattr_init (&at);
  posix_spawnattr_setflags (&at, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup (&at, 0);
  pid_t pid = -1;
  int err = argv && argv[0] ? posix_spawnp (&pid, argv[0], &fa, &at, argv, envp) : ENOMEM;
  posix_spawn_file_actions_destroy (&fa);
  posix_spawnattr_destroy (&at);
  int rc = STEP_FAILED, status = 0, timed_out = 0, cancelled = 0;
  if (err == 0) {
    struct timespec t0, now;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    for (;;) {
      pid_t r = waitpid (pid, &status, WNOHANG);
      if (r == pid || (r < 0 && errno != EINTR))
        break;
      clock_gettime (CLOCK_MONOTONIC, &now);
      cancelled = Pallet_drv_cancelled (v, 0);
      timed_out = now.tv_sec - t0.tv_sec >= (time_t) wait_s;
      if (cancelled || timed_out) {
        kill (-pid, SIGKILL);
        waitpid (pid, &status, 0);
        break;
      }
      Pallet_drv_nap (v, LOCAL_POLL_MS, 0);
    }
    if (cancelled)
      rc = STEP_CANCELLED;
    else if (!timed_out && WIFEXITED (status) && WEXITSTATUS (status) == 0)
      rc = STEP_OK;
  }
  if (rc == STEP_FAILED) {
    char *tail = log ? read_tail (log) : NULL;
    char why[160];
    if (err)
      snprintf (why, sizeof why, "cannot start %s: %s", argv && argv[0] ? argv[0] : "",
                strerror (err));
    else if (timed_out)
      snprintf (why, sizeof why, "did not finish within %u s (spec.deadline)", wait_s);
    else if (WIFEXITED (status))
      snprintf (why, sizeof why, "exit code %d", WEXITSTATUS (status));
    else
      snprintf (why, sizeof why, "killed by signal %d", WTERMSIG (status));
    if (asprintf (errmsg, "hook process %s; last log lines:\n%s", why,
                  tail && *tail ? tail : "(none)\n")
        < 0)
      *errmsg = NULL;
    free (tail);
  }
  for (size_t i = 0; argv && i < n; i++)
    free (argv[i]);
  free (argv);
  for (int i = 0; i < 3; i++)
    free (envp[i]);
  /* The files and the log go; the log tail is in the state. */
  json_object_foreach ((json_t *) data, key, val) {
    char *p = NULL;
    if (asprintf (&p, "%s/%s", dir, key) >= 0)
      unlink (p);
    free (p);
  }
  if (log)
    unlink (log);
  free (log);
  rmdir (dir);
  return rc;
}

/* --- the step ------------------------------------------------------------- */

int
Pallet_hook_run (struct vmrun *v, const char *step)
{
  const json_t *h = Pallet_hook_find (v, step);
  if (!h)
    return STEP_OK;
  json_t *all = json_object_get (v->doc, "hooks");
  if (!json_is_object (all)) {
    all = json_object ();
    json_object_set_new (v->doc, "hooks", all);
  }
  json_t *rec = json_object_get (all, step);
  if (rec && !strcmp (jstr (rec, "status") ? jstr (rec, "status") : "", "succeeded")) {
    char msg[200];
    snprintf (msg, sizeof msg, "%s %s succeeded in an earlier run; not run again", step,
              jstr (json_object_get (h, "hook"), "name"));
    Pallet_drv_event (v, "hook", step, "skipped", msg, NULL);
    return STEP_OK;
  }
  const char *ns = v->d->cluster ? Pallet_cluster_param (v->d->cluster, "namespace")
                                 : jstr (v->d->plan, "targetNamespace");
  json_t *objs = render (v, h, ns && *ns ? ns : "default");
  if (!objs) {
    json_object_set_new (v->doc, "error",
                         json_pack ("{s:s,s:i,s:s}", "code", "PALLET_E_NOMEM", "status",
                                    PALLET_E_NOMEM, "message", "out of memory"));
    return STEP_FAILED;
  }
  char *dir = write_objects (v, step, objs);
  rec = json_pack ("{s:s,s:s,s:s,s:s?}", "hook", jstr (json_object_get (h, "hook"), "name"), "pod",
                   jstr (json_object_get (json_array_get (objs, 1), "metadata"), "name"), "status",
                   "running", "manifests", dir);
  json_object_set_new (all, step, rec);
  json_int_t deadline = json_integer_value (json_object_get (h, "deadline"));
  unsigned wait_s = deadline > 0             ? (unsigned) deadline + GRACE_S
                    : v->d->o.wait_timeout_s ? v->d->o.wait_timeout_s
                                             : DEFAULT_WAIT_S;
  char msg[600];
  if (!v->d->o.apply && !v->d->o.run_hooks_locally) {
    snprintf (msg, sizeof msg,
              "%s %s rendered in %s and not run: hooks run in cluster mode (--apply) or with "
              "--run-hooks-locally",
              step, jstr (json_object_get (h, "hook"), "name"), dir ? dir : "(not written)");
    json_object_set_new (rec, "status", json_string ("not run"));
    json_object_set_new (rec, "message", json_string (msg));
    Pallet_drv_event (v, "hook", step, "not run", msg, NULL);
    free (dir);
    json_decref (objs);
    return Pallet_drv_save (v) != 0 ? STEP_IOERR : STEP_OK;
  }
  free (dir);
  if (Pallet_drv_save (v) != 0) {
    json_decref (objs);
    return STEP_IOERR;
  }
  snprintf (msg, sizeof msg, "%s %s: Pod %s%s", step, jstr (json_object_get (h, "hook"), "name"),
            jstr (rec, "pod"), v->d->o.apply ? "" : " run as a local process");
  Pallet_drv_event (v, "hook", step, "started", msg, NULL);
  char *err = NULL;
  int rc = v->d->o.apply ? Pallet_cluster_run_hook (
               v, objs, !strcmp (step, "PreHook") ? "prehook" : "posthook", wait_s,
               deadline > 0 ? "spec.deadline + 60 s" : "--wait-timeout", rec, &err)
                         : run_local (v, objs, wait_s, &err);
  json_decref (objs);
  if (rc == STEP_OK) {
    json_object_set_new (rec, "status", json_string ("succeeded"));
    Pallet_drv_event (v, "hook", step, "succeeded", msg, NULL);
  }
  else if (rc == STEP_FAILED) {
    char *full = NULL;
    if (asprintf (&full, "%s %s failed: %s", step, jstr (json_object_get (h, "hook"), "name"),
                  err ? err : "(no detail)")
        < 0)
      full = NULL;
    json_object_set_new (rec, "status", json_string ("failed"));
    json_object_set_new (rec, "message", json_string (full ? full : "hook failed"));
    json_object_set_new (v->doc, "error",
                         json_pack ("{s:s,s:i,s:s}", "code", "PALLET_E_FAILED", "status",
                                    PALLET_E_FAILED, "message", full ? full : "hook failed"));
    free (full);
  }
  free (err);
  if (Pallet_drv_save (v) != 0)
    return STEP_IOERR;
  return rc;
}
