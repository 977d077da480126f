/* SPDX-License-Identifier: Apache-2.0 */
/* Cluster mode (`pallet migrate --apply`): build_vm's objects applied
 * stage by stage -- storage, copy Pods (waited for), the conversion Pod
 * (waited for), then the VirtualMachine, started once conversion is done
 * -- and everything the run made deleted again on failure or cancel.
 * Objects are found by name and by their migration/vmID labels, so a run
 * killed at any point resumes without making anything twice. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "driver.h"
#include "pallet-kube.h"
#include "state.h"

#define STAGE_LABEL      "pallet.dev/stage"
#define RUN_STRATEGY_ANN "pallet.dev/target-run-strategy"
/* An object build_vm marks as needed only until the apply succeeds (the
 * copy Pod's credentials): deleted with the finished Pods. */
#define TEMPORARY_LABEL "pallet.dev/temporary"
#define LOG_TAIL_LINES  20
/* How far back a failed Pod's log is searched for its error lines: a
 * verbose tool (virt-v2v -v -x) says why it failed well before its last
 * lines, which are its teardown. */
#define LOG_SCAN_LINES    2000
#define LOG_ERROR_LINES   5
#define DEFAULT_WAIT_S    3600
#define POLL_FIRST_MS     250
#define POLL_MAX_MS       5000
#define PROGRESS_EVERY_MS 30000

struct Pallet_cluster {
  struct Pallet_kube_target t;
  char *ns;
  unsigned wait_s;
};

/* --- where ---------------------------------------------------------------- */

static const char *
jstr (const json_t *o, const char *k)
{
  return json_string_value (json_object_get (o, k));
}

static char *
dup_or_null (const char *s)
{
  return s && *s ? strdup (s) : NULL;
}

/* A remote destination Provider (type openshift, spec.url set): its URL
 * and its Secret's token and cacert, as Forklift uses them.  1 if used. */
static int
remote_destination (const char *dest_json, struct Pallet_kube_target *t, char **errmsg)
{
  json_t *d = dest_json ? json_loads (dest_json, 0, NULL) : NULL;
  const json_t *prov = json_object_get (d, "provider"), *sec = json_object_get (d, "secret");
  const json_t *spec = json_object_get (prov, "spec");
  const char *url = jstr (spec, "url"), *name = jstr (json_object_get (prov, "metadata"), "name");
  int used = 0;
  if (url && *url) {
    used = 1;
    memset (t, 0, sizeof *t);
    t->api_url = strdup (url);
    t->token = dup_or_null (jstr (sec, "token"));
    t->ca_pem = dup_or_null (jstr (sec, "cacert"));
    const char *ins = jstr (sec, "insecureSkipVerify");
    t->insecure = ins && !strcmp (ins, "true");
    if (asprintf (&t->source,
                  "the destination Provider %s (spec.url, its Secret's token and "
                  "cacert)",
                  name ? name : "")
        < 0)
      t->source = NULL;
    if (!t->token && errmsg)
      Pallet_log (PALLET_LOG_WARNING,
                  "destination Provider %s has no token in its Secret: requests go "
                  "unauthenticated",
                  name ? name : "");
  }
  json_decref (d);
  return used;
}

int
Pallet_cluster_remote (const char *dest_json)
{
  json_t *d = dest_json ? json_loads (dest_json, 0, NULL) : NULL;
  const char *url = jstr (json_object_get (json_object_get (d, "provider"), "spec"), "url");
  int r = url && *url;
  json_decref (d);
  return r;
}

struct Pallet_cluster *
Pallet_cluster_open (const struct pallet_migrate_options *o, const json_t *plan, char **errmsg)
{
  struct Pallet_cluster *c = calloc (1, sizeof *c);
  *errmsg = NULL;
  if (!c)
    return NULL;
  c->wait_s = o->wait_timeout_s ? o->wait_timeout_s : DEFAULT_WAIT_S;
  if (!remote_destination (o->destination_json, &c->t, errmsg)
      && Pallet_kube_resolve (o->kubeconfig, o->kube_context, &c->t, errmsg) != PALLET_OK) {
    free (c);
    return NULL;
  }
  const char *tns = jstr (plan, "targetNamespace");
  if (o->namespace_ && tns && *tns && strcmp (o->namespace_, tns)) {
    if (asprintf (errmsg,
                  "-n %s, but the plan's targetNamespace is %s: the objects go to %s; drop -n "
                  "or change the plan's targetNamespace",
                  o->namespace_, tns, tns)
        < 0)
      *errmsg = NULL;
    Pallet_cluster_close (c);
    return NULL;
  }
  c->ns = strdup (tns && *tns       ? tns
                  : o->namespace_   ? o->namespace_
                  : c->t.namespace_ ? c->t.namespace_
                                    : "default");
  return c;
}

const char *
Pallet_cluster_param (const struct Pallet_cluster *c, const char *key)
{
  const struct Pallet_kube_target *t = &c->t;
  if (!strcmp (key, "api-url"))
    return t->api_url;
  if (!strcmp (key, "namespace"))
    return c->ns;
  if (!strcmp (key, "token"))
    return t->token;
  if (!strcmp (key, "ca-file"))
    return t->ca_file;
  if (!strcmp (key, "ca-pem"))
    return t->ca_pem;
  if (!strcmp (key, "client-cert-pem"))
    return t->client_cert_pem;
  if (!strcmp (key, "client-key-pem"))
    return t->client_key_pem;
  if (!strcmp (key, "insecure-skip-verify"))
    return t->insecure ? "true" : "false";
  if (!strcmp (key, "source"))
    return t->source;
  return NULL;
}

void
Pallet_cluster_close (struct Pallet_cluster *c)
{
  if (!c)
    return;
  Pallet_kube_target_free (&c->t);
  free (c->ns);
  free (c);
}

static struct Pallet_kube *
connect_cluster (struct Pallet_cluster *c, char **errmsg)
{
  struct Pallet_kube_config kc;
  Pallet_kube_target_config (&c->t, &kc);
  return Pallet_kube_new (&kc, errmsg);
}

static json_t *
finding (const char *type, const char *msg)
{
  return json_pack ("{s:s,s:s,s:s,s:s}", "category", "Critical", "type", type, "field",
                    "destination", "message", msg ? msg : "");
}

static json_t *
status_finding (int st, const char *msg)
{
  return finding (st == PALLET_E_AUTH                                  ? "ClusterUnauthorized"
                  : st == PALLET_E_NOT_FOUND                           ? "NamespaceNotFound"
                  : st == PALLET_E_TRANSIENT || st == PALLET_E_TIMEOUT ? "ClusterUnreachable"
                                                                       : "ClusterError",
                  msg);
}

json_t *
Pallet_cluster_preflight (struct Pallet_cluster *c)
{
  char *err = NULL, *msg = NULL;
  struct Pallet_kube *k = connect_cluster (c, &err);
  if (!k) {
    json_t *f = finding ("ClusterConfigInvalid", err);
    free (err);
    return f;
  }
  json_t *f = NULL;
  int st = Pallet_kube_get (k, "v1", "Namespace", NULL, c->ns, NULL, &err);
  if (st == PALLET_E_NOT_FOUND) {
    if (asprintf (&msg,
                  "namespace %s does not exist in the cluster at %s (%s); create it (kubectl "
                  "create namespace %s) or set the plan's targetNamespace",
                  c->ns, Pallet_kube_url (k), c->t.source ? c->t.source : "", c->ns)
        < 0)
      msg = NULL;
    f = status_finding (st, msg);
  }
  else if (st != PALLET_OK)
    f = status_finding (st, err);
  else {
    /* Can we create Pods there?  A dry run creates nothing. */
    char *path = NULL;
    free (err);
    err = NULL;
    if (asprintf (&path, "/api/v1/namespaces/%s/pods", c->ns) >= 0) {
      st = Pallet_kube_request (
          k, "POST", path, "dryRun=All", "application/json",
          "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"pallet-preflight\"},"
          "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"preflight\",\"command\":"
          "[\"true\"]}]}}",
          NULL, &err);
      if (st == PALLET_E_AUTH)
        f = status_finding (st, err);
    }
    free (path);
  }
  free (msg);
  free (err);
  Pallet_kube_free (k);
  return f;
}

/* --- stages --------------------------------------------------------------- */

static const char *stage_names[] = { "", "storage", "copy", "convert", "vm", "vm" };

static const json_t *
meta (const json_t *o)
{
  return json_object_get (o, "metadata");
}

int
Pallet_cluster_stage_rank (const json_t *obj, const char **stage, char **errmsg)
{
  const char *s = jstr (json_object_get (meta (obj), "labels"), STAGE_LABEL);
  const char *kind = jstr (obj, "kind");
  int is_vm = kind && !strcmp (kind, "VirtualMachine");
  int r = !s                       ? (is_vm ? 5 : 4)
          : !strcmp (s, "storage") ? 1
          : !strcmp (s, "copy")    ? 2
          : !strcmp (s, "convert") ? 3
          : !strcmp (s, "vm")      ? (is_vm ? 5 : 4)
                                   : 0;
  if (stage)
    *stage = r ? stage_names[r] : s;
  if (!r && errmsg
      && asprintf (errmsg,
                   "%s %s: label " STAGE_LABEL "=%s is not a stage; use storage, copy, convert "
                   "or vm",
                   kind ? kind : "object", jstr (meta (obj), "name"), s)
             < 0)
    *errmsg = NULL;
  return r;
}

static int
by_name (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The VM's manifests as written by build_vm, in file (stage) order. */
static json_t *
load_manifests (struct vmrun *v, char **errmsg)
{
  char *dir = Pallet_drv_manifest_dir (v);
  DIR *dh = dir ? opendir (dir) : NULL;
  json_t *out = json_array ();
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while (dh && (e = readdir (dh)) != NULL) {
    size_t l = strlen (e->d_name);
    if (l > 5 && !strcmp (e->d_name + l - 5, ".json")) {
      char **nn = realloc (names, (n + 1) * sizeof *names);
      if (!nn)
        break;
      names = nn;
      names[n++] = strdup (e->d_name);
    }
  }
  if (!dh
      && asprintf (errmsg, "cannot read the VM's manifests in %s: %s", dir ? dir : "",
                   strerror (errno))
             < 0)
    *errmsg = NULL;
  if (dh)
    closedir (dh);
  qsort (names, n, sizeof *names, by_name);
  for (size_t i = 0; i < n; i++) {
    char *p = NULL;
    json_t *j =
        names[i] && asprintf (&p, "%s/%s", dir, names[i]) >= 0 ? Pallet_read_json_file (p) : NULL;
    if (j)
      json_array_append_new (out, j);
    else if (!*errmsg && asprintf (errmsg, "%s", pallet_last_error ()) < 0)
      *errmsg = NULL;
    free (p);
    free (names[i]);
  }
  free (names);
  free (dir);
  if (*errmsg) {
    json_decref (out);
    return NULL;
  }
  return out;
}

/* The run's record of the VM in the cluster: doc.cluster. */
static json_t *
record (struct vmrun *v)
{
  json_t *c = json_object_get (v->doc, "cluster");
  if (!json_is_object (c)) {
    c = json_pack ("{s:s,s:[],s:[],s:b}", "mode", "apply", "objects", "stagesDone", "podsSucceeded",
                   0);
    json_object_set_new (v->doc, "cluster", c);
  }
  return c;
}

static int
stage_done (json_t *rec, const char *stage)
{
  size_t i;
  json_t *e;
  json_array_foreach (json_object_get (rec, "stagesDone"), i, e)
    if (!strcmp (json_string_value (e), stage))
      return 1;
  return 0;
}

static void
remember (json_t *rec, const json_t *live, const char *stage)
{
  const json_t *md = meta (live);
  const char *uid = jstr (md, "uid");
  size_t i;
  json_t *e;
  json_array_foreach (json_object_get (rec, "objects"), i, e)
    if (uid && jstr (e, "uid") && !strcmp (jstr (e, "uid"), uid))
      return;
  json_t *e2 = json_pack ("{s:s?,s:s?,s:s?,s:s?,s:s?,s:s}", "apiVersion", jstr (live, "apiVersion"),
                          "kind", jstr (live, "kind"), "namespace", jstr (md, "namespace"), "name",
                          jstr (md, "name"), "uid", uid, "stage", stage);
  const char *tmp = jstr (json_object_get (md, "labels"), TEMPORARY_LABEL);
  if (e2 && tmp && !strcmp (tmp, "true"))
    json_object_set_new (e2, "temporary", json_true ());
  json_array_append_new (json_object_get (rec, "objects"), e2);
}

/* An object that exists already must be this migration's. */
static int
check_owner (struct vmrun *v, const json_t *live, char **errmsg)
{
  const char *mig = jstr (json_object_get (meta (live), "labels"), "migration");
  if (mig && !strcmp (mig, v->d->uid))
    return 0;
  if (asprintf (errmsg,
                "%s %s exists in the cluster and is not this migration's (label migration=%s, "
                "this run is %s); delete it or rename the target",
                jstr (live, "kind"), jstr (meta (live), "name"), mig ? mig : "(none)", v->d->uid)
      < 0)
    *errmsg = NULL;
  return -1;
}

static int
apply_object (struct vmrun *v, struct Pallet_kube *k, const json_t *obj, const char *stage,
              json_t **live_out, char **errmsg)
{
  json_t *live = NULL;
  int created = 0;
  int st = Pallet_kube_create_or_get (k, obj, v->d->cluster->ns, &live, &created, errmsg);
  if (st == PALLET_OK && !created && check_owner (v, live, errmsg) != 0)
    st = PALLET_E_CONFLICT;
  if (st == PALLET_OK) {
    remember (record (v), live, stage);
    char msg[400];
    snprintf (msg, sizeof msg, "%s %s %s", jstr (obj, "kind"), jstr (meta (obj), "name"),
              created ? "created" : "found (an earlier run made it)");
    Pallet_drv_event (v, "apply", "apply", stage, msg, NULL);
  }
  if (live_out)
    *live_out = live;
  else
    json_decref (live);
  return st;
}

/* --- waits ---------------------------------------------------------------- */

const char *
Pallet_last_lines (const char *text, int n)
{
  const char *p = text + strlen (text);
  if (p > text && p[-1] == '\n')
    p--;
  while (p > text) {
    if (p[-1] == '\n' && --n == 0)
      break;
    p--;
  }
  return p;
}

/* "error (CLASS): " as pallet-convert-tool says it ("pallet-convert-tool:
 * error (no-os): converting ...: ... (virt-v2v-in-place said: ...)"). */
static int
classed_error (const char *line)
{
  for (const char *p = line; (p = strcasestr (p, "error (")) != NULL;) {
    p += 7;
    size_t n = strspn (p, "abcdefghijklmnopqrstuvwxyz-");
    if (n > 0 && p[n] == ')' && p[n + 1] == ':')
      return 1;
  }
  return 0;
}

/* The log's last few lines that report an error ("virt-v2v-in-place:
 * error: ...", "Error: ...", "pallet-convert-tool: error (CLASS): ..."),
 * debug chatter left out. */
static json_t *
error_lines (const char *text)
{
  json_t *all = json_array ();
  for (const char *p = text; p && *p;) {
    const char *nl = strchr (p, '\n');
    size_t len = nl ? (size_t) (nl - p) : strlen (p);
    char *line = strndup (p, len);
    if (line && (strcasestr (line, "error:") || strcasestr (line, "fatal:") || classed_error (line))
        && !strstr (line, "debug:"))
      json_array_append_new (all, json_string (line));
    free (line);
    p = nl ? nl + 1 : NULL;
  }
  while (json_array_size (all) > LOG_ERROR_LINES)
    json_array_remove (all, 0);
  return all;
}

/* The Pod's result, as its container wrote it to its termination message
 * file (the kubelet's containerStatuses[].state.terminated.message): a
 * JSON object (pallet-convert-tool's result, rewrites and all), or NULL. */
static json_t *
pod_result (const json_t *pod)
{
  size_t i;
  const json_t *cs;
  json_array_foreach (json_object_get (json_object_get (pod, "status"), "containerStatuses"), i,
                      cs) {
    const char *m = jstr (json_object_get (json_object_get (cs, "state"), "terminated"), "message");
    json_t *r = m ? json_loads (m, 0, NULL) : NULL;
    if (json_is_object (r))
      return r;
    json_decref (r);
  }
  return NULL;
}

/* Next to the Pod's entry in doc.cluster.objects: its phase and result. */
static void
record_pod (struct vmrun *v, const char *name, const json_t *pod, const char *phase)
{
  size_t i;
  json_t *e;
  json_array_foreach (json_object_get (record (v), "objects"), i, e)
    if (jstr (e, "kind") && jstr (e, "name") && !strcmp (jstr (e, "kind"), "Pod")
        && !strcmp (jstr (e, "name"), name)) {
      json_t *r = pod_result (pod);
      json_object_set_new (e, "phase", json_string (phase));
      if (r)
        json_object_set_new (e, "result", r);
    }
}

static void
pod_failed (struct vmrun *v, struct Pallet_kube *k, const char *stage, const char *name,
            const json_t *pod, const char *why, char **errmsg)
{
  struct Pallet_kube_pod_state ps;
  Pallet_kube_pod_state (pod, &ps);
  char *scan = NULL, *lerr = NULL;
  if (pod)
    Pallet_kube_pod_log (k, v->d->cluster->ns, name, ps.container, LOG_SCAN_LINES, &scan, &lerr);
  free (lerr);
  char *log = scan ? strdup (Pallet_last_lines (scan, LOG_TAIL_LINES)) : NULL;
  json_t *errors = scan ? error_lines (scan) : json_array ();
  free (scan);
  /* A termination message that is a result object is recorded as such,
   * not pasted into the message (the log's error line says it). */
  json_t *result = pod_result (pod);
  if (result && ps.message && *ps.message == '{')
    ps.message = NULL;
  json_t *f = json_pack ("{s:s,s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:s}", "stage", stage, "pod", name,
                         "phase", ps.phase, "container", ps.container, "reason", ps.reason,
                         "message", ps.message, "logTail", log, "why", why);
  if (f && json_array_size (errors))
    json_object_set (f, "errorLines", errors);
  if (f && result)
    json_object_set (f, "result", result);
  json_decref (result);
  const char *last_error =
      json_string_value (json_array_get (errors, json_array_size (errors) - 1));
  if (f && ps.exit_code >= 0)
    json_object_set_new (f, "exitCode", json_integer (ps.exit_code));
  json_object_set_new (record (v), "failure", f);
  char code[32] = "";
  if (ps.exit_code >= 0)
    snprintf (code, sizeof code, " exit code %d", ps.exit_code);
  if (asprintf (errmsg, "%s Pod %s %s: phase %s, container %s%s%s%s%s%s%s%s%s; last log lines:\n%s",
                stage, name, why, *ps.phase ? ps.phase : "(none)",
                ps.container ? ps.container : "-", code, ps.reason ? " reason " : "",
                ps.reason ? ps.reason : "", ps.message ? " (" : "", ps.message ? ps.message : "",
                ps.message ? ")" : "", last_error ? "; it said: " : "",
                last_error ? last_error : "", log && *log ? log : "(none)\n")
      < 0)
    *errmsg = NULL;
  json_decref (errors);
  free (log);
}

static void
progress (struct vmrun *v, const char *stage, const char *name,
          const struct Pallet_kube_pod_state *ps, long waited_s)
{
  char msg[400];
  snprintf (msg, sizeof msg, "Pod %s: %s%s%s (%lds)", name, *ps->phase ? ps->phase : "Pending",
            ps->reason ? ", " : "", ps->reason ? ps->reason : "", waited_s);
  json_t *x = json_pack ("{s:s,s:s,s:I}", "pod", name, "phase", ps->phase, "waitedSeconds",
                         (json_int_t) waited_s);
  Pallet_drv_event (v, "wait", "apply", stage, msg, x);
  json_decref (x);
}

/* Waits until every Pod of the stage Succeeded. */
static int
wait_pods_for (struct vmrun *v, struct Pallet_kube *k, const char *stage, json_t *names,
               unsigned wait_s, const char *limit, char **errmsg)
{
  struct timespec t0, now;
  clock_gettime (CLOCK_MONOTONIC, &t0);
  unsigned delay = POLL_FIRST_MS;
  long last_report = -PROGRESS_EVERY_MS;
  json_t *seen = json_object ();
  int rc = STEP_FAILED;
  for (;;) {
    if (Pallet_drv_cancelled (v, 0)) {
      rc = STEP_CANCELLED;
      break;
    }
    clock_gettime (CLOCK_MONOTONIC, &now);
    long ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
    size_t i, done = 0;
    json_t *e;
    int changed = 0, st = PALLET_OK;
    json_array_foreach (names, i, e) {
      const char *name = json_string_value (e);
      json_t *pod = NULL;
      st = Pallet_kube_get (k, "v1", "Pod", v->d->cluster->ns, name, &pod, errmsg);
      if (st == PALLET_E_TRANSIENT || st == PALLET_E_TIMEOUT) {
        free (*errmsg); /* the API server blinked: poll again */
        *errmsg = NULL;
        st = PALLET_OK;
        continue;
      }
      if (st != PALLET_OK) {
        if (st == PALLET_E_NOT_FOUND) {
          free (*errmsg);
          *errmsg = NULL;
          pod_failed (v, k, stage, name, NULL, "disappeared (deleted by someone else)", errmsg);
        }
        break;
      }
      struct Pallet_kube_pod_state ps;
      Pallet_kube_pod_state (pod, &ps);
      char key[300];
      snprintf (key, sizeof key, "%s/%s", ps.phase, ps.reason ? ps.reason : "");
      if (!jstr (seen, name) || strcmp (jstr (seen, name), key)) {
        json_object_set_new (seen, name, json_string (key));
        progress (v, stage, name, &ps, ms / 1000);
        changed = 1;
      }
      if (!strcmp (ps.phase, "Succeeded")) {
        record_pod (v, name, pod, ps.phase);
        done++;
      }
      else if (!strcmp (ps.phase, "Failed")) {
        record_pod (v, name, pod, ps.phase);
        pod_failed (v, k, stage, name, pod, "failed", errmsg);
        st = PALLET_E_FAILED;
      }
      json_decref (pod);
      if (st != PALLET_OK)
        break;
    }
    if (st != PALLET_OK)
      break;
    if (done == json_array_size (names)) {
      rc = STEP_OK;
      break;
    }
    if (ms >= (long) wait_s * 1000) {
      /* The first Pod not done yet says why. */
      json_array_foreach (names, i, e) {
        json_t *pod = NULL;
        char *gerr = NULL;
        Pallet_kube_get (k, "v1", "Pod", v->d->cluster->ns, json_string_value (e), &pod, &gerr);
        free (gerr);
        struct Pallet_kube_pod_state ps;
        Pallet_kube_pod_state (pod, &ps);
        if (strcmp (ps.phase, "Succeeded")) {
          char why[120];
          snprintf (why, sizeof why, "did not succeed within %u s (%s)", wait_s, limit);
          pod_failed (v, k, stage, json_string_value (e), pod, why, errmsg);
          json_decref (pod);
          break;
        }
        json_decref (pod);
      }
      break;
    }
    if (ms - last_report >= PROGRESS_EVERY_MS) {
      last_report = ms;
      if (!changed)
        json_object_clear (seen); /* report again */
    }
    delay = changed ? POLL_FIRST_MS : (delay * 2 > POLL_MAX_MS ? POLL_MAX_MS : delay * 2);
    Pallet_drv_nap (v, delay, 0);
  }
  json_decref (seen);
  return rc;
}

static int
wait_pods (struct vmrun *v, struct Pallet_kube *k, const char *stage, json_t *names, char **errmsg)
{
  return wait_pods_for (v, k, stage, names, v->d->cluster->wait_s, "--wait-timeout", errmsg);
}

/* --- hooks ---------------------------------------------------------------- */

int
Pallet_cluster_run_hook (struct vmrun *v, const json_t *objs, const char *stage, unsigned wait_s,
                         const char *limit, json_t *rec, char **errmsg)
{
  struct Pallet_kube *k = connect_cluster (v->d->cluster, errmsg);
  if (!k)
    return STEP_FAILED;
  json_t *pods = json_array ();
  size_t i;
  const json_t *o;
  int st = PALLET_OK;
  json_array_foreach (objs, i, o) {
    st = apply_object (v, k, o, stage, NULL, errmsg);
    if (st != PALLET_OK)
      break;
    if (!strcmp (jstr (o, "kind"), "Pod"))
      json_array_append_new (pods, json_string (jstr (meta (o), "name")));
  }
  int rc = Pallet_drv_save (v) != 0 ? STEP_IOERR : st == PALLET_OK ? STEP_OK : STEP_FAILED;
  if (rc == STEP_OK)
    rc = wait_pods_for (v, k, stage, pods, wait_s, limit, errmsg);
  /* Succeeded is on disk before its Pod goes: a rerun never runs it again. */
  if (rc == STEP_OK) {
    json_object_set_new (rec, "status", json_string ("succeeded"));
    if (Pallet_drv_save (v) != 0)
      rc = STEP_IOERR;
  }
  /* Done with, as the other finished Pods are: its log is in the
   * state.  A cancelled run leaves them to the rollback. */
  if (rc == STEP_OK || rc == STEP_FAILED) {
    for (size_t j = json_array_size (objs); j-- > 0;) {
      o = json_array_get (objs, j);
      char *err = NULL;
      int dst = Pallet_kube_delete (k, jstr (o, "apiVersion"), jstr (o, "kind"), v->d->cluster->ns,
                                    jstr (meta (o), "name"), &err);
      if (dst == PALLET_OK) {
        char msg[400];
        snprintf (msg, sizeof msg, "%s %s deleted (its work is done)", jstr (o, "kind"),
                  jstr (meta (o), "name"));
        Pallet_drv_event (v, "apply", "apply", stage, msg, NULL);
      }
      else if (dst != PALLET_E_NOT_FOUND)
        Pallet_log (PALLET_LOG_WARNING, "%s", err ? err : "cannot delete a hook object");
      free (err);
    }
  }
  json_decref (pods);
  Pallet_kube_free (k);
  return rc;
}

/* --- the stages ------------------------------------------------------------ */

/* After conversion: the VM started as build_vm asked
 * (pallet.dev/target-run-strategy), unless it runs already. */
static int
start_vm (struct vmrun *v, struct Pallet_kube *k, const json_t *live, char **errmsg)
{
  const char *target = jstr (json_object_get (meta (live), "annotations"), RUN_STRATEGY_ANN);
  const char *now = jstr (json_object_get (live, "spec"), "runStrategy");
  if (!target || (now && !strcmp (now, target)))
    return PALLET_OK;
  json_t *patch = json_pack ("{s:{s:s}}", "spec", "runStrategy", target);
  int st = Pallet_kube_patch (k, jstr (live, "apiVersion"), "VirtualMachine",
                              jstr (meta (live), "namespace"), jstr (meta (live), "name"), patch,
                              NULL, errmsg);
  json_decref (patch);
  if (st == PALLET_OK) {
    char msg[300];
    snprintf (msg, sizeof msg, "VirtualMachine %s: runStrategy %s", jstr (meta (live), "name"),
              target);
    Pallet_drv_event (v, "start", "apply", "vm", msg, NULL);
  }
  return st;
}

static int
run_stage (struct vmrun *v, struct Pallet_kube *k, json_t *objs, int rank, char **errmsg)
{
  const char *stage = stage_names[rank];
  json_t *pods = json_array ();
  size_t i;
  json_t *o;
  int st = PALLET_OK;
  json_array_foreach (objs, i, o) {
    if (Pallet_cluster_stage_rank (o, NULL, NULL) != rank)
      continue;
    json_t *live = NULL;
    st = apply_object (v, k, o, stage, &live, errmsg);
    if (st == PALLET_OK && rank == 5)
      st = start_vm (v, k, live, errmsg);
    if (st == PALLET_OK && (rank == 2 || rank == 3) && !strcmp (jstr (o, "kind"), "Pod"))
      json_array_append_new (pods, json_string (jstr (meta (o), "name")));
    json_decref (live);
    if (st != PALLET_OK)
      break;
  }
  if (Pallet_drv_save (v) != 0)
    st = PALLET_E_IO;
  int rc = st == PALLET_OK ? STEP_OK : st == PALLET_E_IO ? STEP_IOERR : STEP_FAILED;
  if (rc == STEP_OK && json_array_size (pods) > 0)
    rc = wait_pods (v, k, stage, pods, errmsg);
  json_decref (pods);
  return rc;
}

/* Once the VM runs, its copy and conversion Pods are done with. */
static void
delete_finished_objects (struct vmrun *v, struct Pallet_kube *k)
{
  size_t i;
  json_t *e;
  json_array_foreach (json_object_get (record (v), "objects"), i, e) {
    const char *stage = jstr (e, "stage");
    int pod = !strcmp (jstr (e, "kind"), "Pod") && stage
              && (!strcmp (stage, "copy") || !strcmp (stage, "convert"));
    if (!pod && !json_is_true (json_object_get (e, "temporary")))
      continue;
    char *err = NULL;
    int st = Pallet_kube_delete (k, jstr (e, "apiVersion"), jstr (e, "kind"), jstr (e, "namespace"),
                                 jstr (e, "name"), &err);
    if (st == PALLET_OK) {
      char msg[400];
      snprintf (msg, sizeof msg, "%s %s deleted (its work is done)", jstr (e, "kind"),
                jstr (e, "name"));
      Pallet_drv_event (v, "apply", "apply", "done", msg, NULL);
    }
    else if (st != PALLET_E_NOT_FOUND)
      Pallet_log (PALLET_LOG_WARNING, "%s", err ? err : "cannot delete a finished object");
    free (err);
  }
}

/* The VirtualMachine among the manifests, or NULL. */
static const json_t *
the_vm (const json_t *objs)
{
  size_t i;
  const json_t *o;
  json_array_foreach (objs, i, o)
    if (jstr (o, "kind") && !strcmp (jstr (o, "kind"), "VirtualMachine"))
      return o;
  return NULL;
}

static int
fail_with (struct vmrun *v, int rc, int status, char *msg)
{
  json_t *e = json_pack ("{s:s,s:i,s:s}", "code", pallet_status_name (status), "status", status,
                         "message", msg ? msg : "cluster apply failed");
  json_object_set_new (v->doc, "error", e ? e : json_null ());
  free (msg);
  Pallet_drv_save (v);
  return rc;
}

int
Pallet_cluster_apply_vm (struct vmrun *v)
{
  char *err = NULL;
  json_t *rec = record (v);
  if (Pallet_drv_save (v) != 0)
    return STEP_IOERR;
  json_t *objs = load_manifests (v, &err);
  if (!objs)
    return fail_with (v, STEP_FAILED, PALLET_E_IO, err);
  size_t i;
  json_t *o;
  json_array_foreach (objs, i, o) {
    if (!Pallet_cluster_stage_rank (o, NULL, &err)) {
      json_decref (objs);
      return fail_with (v, STEP_FAILED, PALLET_E_INVALID, err);
    }
  }
  struct Pallet_kube *k = connect_cluster (v->d->cluster, &err);
  if (!k) {
    json_decref (objs);
    return fail_with (v, STEP_FAILED, PALLET_E_INVALID, err);
  }
  int rc = STEP_OK;
  /* Storage, copy, convert; then other objects and the VM together. */
  static const int order[] = { 1, 2, 3, 4, 5 };
  for (size_t s = 0; rc == STEP_OK && s < sizeof order / sizeof order[0]; s++) {
    char key[16];
    snprintf (key, sizeof key, "%d-%s", order[s], stage_names[order[s]]);
    if (stage_done (rec, key))
      continue;
    json_object_set_new (rec, "stage", json_string (stage_names[order[s]]));
    rc = run_stage (v, k, objs, order[s], &err);
    if (rc == STEP_OK) {
      json_array_append_new (json_object_get (rec, "stagesDone"), json_string (key));
      if (order[s] == 3)
        json_object_set_new (rec, "podsSucceeded", json_true ());
      if (Pallet_drv_save (v) != 0)
        rc = STEP_IOERR;
    }
  }
  /* The Pods (and the temporary objects) are done with once the VM
   * runs; then did its guest boot? */
  if (rc == STEP_OK)
    delete_finished_objects (v, k);
  if (rc == STEP_OK && !stage_done (rec, "6-boot")) {
    json_object_set_new (rec, "stage", json_string ("boot"));
    rc = Pallet_drv_save (v) != 0 ? STEP_IOERR
                                  : Pallet_cluster_boot (v, k, the_vm (objs), v->d->cluster->ns,
                                                         v->d->cluster->wait_s, rec, &err);
    if (rc == STEP_OK)
      json_array_append_new (json_object_get (rec, "stagesDone"), json_string ("6-boot"));
  }
  if (rc == STEP_OK) {
    json_object_set_new (rec, "stage", json_string ("done"));
    if (Pallet_drv_save (v) != 0)
      rc = STEP_IOERR;
  }
  Pallet_kube_free (k);
  json_decref (objs);
  if (rc == STEP_FAILED)
    return fail_with (v, rc, PALLET_E_FAILED, err);
  free (err);
  return rc;
}

/* --- rollback ------------------------------------------------------------- */

/* What the VM's runs may have made: the recorded objects, and anything
 * labelled with the migration and the VM (made by a run killed before
 * it could record it). */
static json_t *
owned_objects (struct vmrun *v, struct Pallet_kube *k, char **errmsg)
{
  json_t *all = json_deep_copy (json_object_get (record (v), "objects"));
  static const char *kinds[][2] = {
    { "v1", "Pod" },
    { "kubevirt.io/v1", "VirtualMachine" },
    { "v1", "PersistentVolumeClaim" },
    { "v1", "PersistentVolume" },
    { "v1", "Secret" },
    { "v1", "ConfigMap" },
  };
  char *sel = NULL;
  if (asprintf (&sel, "migration=%s,vmID=%s", v->d->uid, v->id) < 0)
    return all;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    char *path = Pallet_kube_path (kinds[i][0], kinds[i][1], v->d->cluster->ns, NULL, errmsg);
    json_t *items = json_array ();
    int st = path ? Pallet_kube_list (k, path, sel, 0, items, errmsg) : PALLET_E_INVALID;
    size_t j;
    json_t *it;
    json_array_foreach (items, j, it) {
      json_object_set_new (it, "apiVersion", json_string (kinds[i][0]));
      json_object_set_new (it, "kind", json_string (kinds[i][1]));
      remember (record (v), it, "found by label");
      json_array_append_new (all,
                             json_pack ("{s:s,s:s,s:s?,s:s?}", "apiVersion", kinds[i][0], "kind",
                                        kinds[i][1], "namespace", jstr (meta (it), "namespace"),
                                        "name", jstr (meta (it), "name")));
    }
    json_decref (items);
    free (path);
    /* A cluster without KubeVirt has no VirtualMachines to list. */
    if (st == PALLET_E_NOT_FOUND) {
      free (*errmsg);
      *errmsg = NULL;
    }
    else if (st != PALLET_OK) {
      free (sel);
      json_decref (all);
      return NULL;
    }
  }
  free (sel);
  /* A started VM's instance goes with it; wait for that too, so its
   * launcher Pod lets go of the claims before they are deleted. */
  size_t i, n = json_array_size (all);
  for (i = 0; i < n; i++) {
    const json_t *e = json_array_get (all, i);
    if (jstr (e, "kind") && !strcmp (jstr (e, "kind"), "VirtualMachine"))
      json_array_append_new (all, json_pack ("{s:s,s:s,s:s?,s:s?}", "apiVersion", "kubevirt.io/v1",
                                             "kind", "VirtualMachineInstance", "namespace",
                                             jstr (e, "namespace"), "name", jstr (e, "name")));
  }
  return all;
}

/* Deletion order: what uses a volume before the volume. */
static int
kind_rank (const char *kind)
{
  static const char *order[] = { "Pod", "VirtualMachine", "VirtualMachineInstance",
                                 "PersistentVolumeClaim", "PersistentVolume" };
  for (int i = 0; i < 5; i++)
    if (kind && !strcmp (kind, order[i]))
      return i;
  return 5;
}

static int
wait_gone (struct vmrun *v, struct Pallet_kube *k, const json_t *e, char **errmsg)
{
  for (unsigned waited = 0, delay = POLL_FIRST_MS;; waited += delay) {
    int st = Pallet_kube_get (k, jstr (e, "apiVersion"), jstr (e, "kind"), jstr (e, "namespace"),
                              jstr (e, "name"), NULL, errmsg);
    if (st == PALLET_E_NOT_FOUND) {
      free (*errmsg);
      *errmsg = NULL;
      return PALLET_OK;
    }
    if (st != PALLET_OK)
      return st;
    if (waited / 1000 >= v->d->cluster->wait_s || Pallet_drv_cancelled (v, 1)) {
      if (asprintf (errmsg, "%s %s is still there after %u s of deleting it; run `pallet cleanup`",
                    jstr (e, "kind"), jstr (e, "name"), waited / 1000)
          < 0)
        *errmsg = NULL;
      return PALLET_E_TIMEOUT;
    }
    Pallet_drv_nap (v, delay, 1);
    delay = delay * 2 > POLL_MAX_MS ? POLL_MAX_MS : delay * 2;
  }
}

int
Pallet_cluster_rollback_vm (struct vmrun *v)
{
  char *err = NULL;
  if (!v->d->cluster) {
    Pallet_log (PALLET_LOG_ERROR,
                "%s: its cluster objects cannot be deleted: this run has no cluster; run "
                "`pallet cleanup` with --kubeconfig (or the plan's destination)",
                v->name);
    return -1;
  }
  struct Pallet_kube *k = connect_cluster (v->d->cluster, &err);
  json_t *all = k ? owned_objects (v, k, &err) : NULL;
  int rc = all ? 0 : -1;
  for (int rank = 0; all && rank <= 5 && rc == 0; rank++) {
    size_t i;
    json_t *e;
    json_array_foreach (all, i, e) {
      if (kind_rank (jstr (e, "kind")) != rank)
        continue;
      int st = Pallet_kube_delete (k, jstr (e, "apiVersion"), jstr (e, "kind"),
                                   jstr (e, "namespace"), jstr (e, "name"), &err);
      if (st == PALLET_E_NOT_FOUND) {
        free (err);
        err = NULL;
        continue;
      }
      if (st == PALLET_OK)
        st = wait_gone (v, k, e, &err);
      if (st != PALLET_OK) {
        rc = -1;
        break;
      }
      char msg[400];
      snprintf (msg, sizeof msg, "%s %s deleted", jstr (e, "kind"), jstr (e, "name"));
      Pallet_drv_event (v, "rollback", "apply", "deleted", msg, NULL);
    }
  }
  if (rc == 0)
    json_object_set_new (record (v), "rolledBack", json_true ());
  else {
    json_t *e = json_pack ("{s:s,s:s}", "code", "PALLET_E_FAILED", "message",
                           err ? err : "cannot delete the VM's cluster objects");
    json_object_set_new (v->doc, "rollbackError", e);
    Pallet_log (PALLET_LOG_ERROR, "%s: cluster rollback: %s", v->name,
                err ? err : "cannot delete the VM's cluster objects");
  }
  Pallet_drv_save (v);
  json_decref (all);
  free (err);
  Pallet_kube_free (k);
  return rc;
}
