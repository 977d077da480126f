/* SPDX-License-Identifier: Apache-2.0 */
/* Checks of what a real host and a real user see: inputs the host owns,
 * inputs as the real host sends them, findings, progress, stdout, secrets,
 * manifests and declared capabilities. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pallet-query.h>

#include "flow.h"

extern char **environ;

static char *
text_of (const json_t *j)
{
  return json_dumps (j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
}

/* ---- host-inputs: what the real host sends ---- */

static const char R_QUERY[] = "inventory's query may be absent or \"\": both "
                              "mean everything (docs/ops/inventory.md)";

static json_t *
inventory_with (size_t k, int variant)
{
  json_t *kind = json_array_get (pc.fx.inventory_kinds, k);
  json_t *in = variant == 0   ? json_pack ("{sO}", "kind", kind)
               : variant == 1 ? json_pack ("{sO ss}", "kind", kind, "query", "")
                              : json_pack ("{sO sn}", "kind", kind, "query");
  char *s = json_dumps (in, JSON_COMPACT);
  json_t *r = pc_drive (PC_OP_INVENTORY, NULL, NULL, NULL, s, NULL, NULL);
  json_decref (in);
  free (s);
  return r;
}

static void
host_inventory (void)
{
  static const char *const how[] = { "absent", "\"\"", "null" };
  for (size_t k = 0; k < json_array_size (pc.fx.inventory_kinds); k++) {
    const char *kind = json_string_value (json_array_get (pc.fx.inventory_kinds, k));
    json_t *first = NULL;
    for (int v = 0; v < 3; v++) {
      json_t *r = inventory_with (k, v), *items;
      char ctx[96];
      snprintf (ctx, sizeof ctx, "%s with query %s", kind, how[v]);
      /* The host never sends null: it must not crash, and may refuse. */
      if (!pc_returned ("host-inputs", PC_OP_INVENTORY, r, ctx) || v == 2) {
        json_decref (r);
        continue;
      }
      if (pc_status_of (r) != PALLET_OK) {
        char *d = pc_describe (r);
        PC_FAIL ("host-inputs", R_QUERY, "inventory %s %s", ctx, d ? d : "?");
        free (d);
      }
      items = pc_items (r);
      if (first == NULL)
        first = json_incref (items);
      else if (!json_equal (first, items))
        PC_FAIL ("host-inputs", R_QUERY,
                 "inventory %s emitted %zu items; "
                 "with no query it emitted %zu (or others)",
                 ctx, json_array_size (items), json_array_size (first));
      json_decref (items);
      json_decref (r);
    }
    json_decref (first);
  }
}

/* validate on its own (pallet validate: no directories), with the full
 * options, then with only the ABI 1.0 ones: the same status. */
static void
host_validate (void)
{
  static const char rule[] = "the optional options fields (rollback, step, "
                             "attempt, succeeded, cutover) may be absent: an op treats them as "
                             "false/unset";
  char *full = pc_vm_input (pc_vm (0), NULL, "conformance-host-inputs");
  json_t *in = json_loads (full, 0, NULL);
  json_t *opts = json_object_get (in, "options");
  struct pc_req rq = { .op = PC_OP_VALIDATE, .input = full };
  json_t *r1 = pc_invoke (&rq), *r2;
  char *min;
  json_object_del (opts, "rollback");
  json_object_del (opts, "step");
  json_object_del (opts, "attempt");
  json_object_del (opts, "succeeded");
  json_object_del (opts, "cutover");
  min = json_dumps (in, JSON_COMPACT);
  rq.input = min;
  r2 = pc_invoke (&rq);
  if (pc_returned ("host-inputs", PC_OP_VALIDATE, r1,
                   "on its own (no "
                   "state.dir or work.dir)")
      && pc_returned ("host-inputs", PC_OP_VALIDATE, r2,
                      "with options "
                      "{migrationUID, cancelled} only")
      && pc_status_of (r1) != pc_status_of (r2))
    PC_FAIL ("host-inputs", rule,
             "validate returned %s with the host's full "
             "options and %s without the optional ones",
             pc_status_name (pc_status_of (r1)), pc_status_name (pc_status_of (r2)));
  json_decref (r1);
  json_decref (r2);
  json_decref (in);
  free (full);
  free (min);
}

static bool
host_hook (enum pc_op op, json_t *r, const char *input, void *arg)
{
  (void) input;
  (void) arg;
  return pc_returned ("host-inputs", op, r, "(as pallet migrate calls it)");
}

void
pc_check_host_inputs (void)
{
  if (!pc_session_ok ("host-inputs"))
    return;
  if (pc_op_present (PC_OP_INVENTORY))
    host_inventory ();
  if (pc_op_present (PC_OP_VALIDATE))
    host_validate ();
  pc_walk ("host-inputs", host_hook, NULL);
}

/* ---- findings ---- */

static bool
findings_hook (enum pc_op op, json_t *r, const char *input, void *arg)
{
  json_t *items, *f;
  size_t i;
  (void) input;
  ++*(unsigned *) arg;
  if (op != PC_OP_VALIDATE || !pc_returned ("findings", op, r, NULL))
    return true;
  if (pc_status_of (r) != PALLET_OK)
    return true;
  items = pc_items (r);
  json_array_foreach (items, i, f) {
    const char *cat = json_string_value (json_object_get (f, "category"));
    if (cat && (strcmp (cat, "Critical") == 0 || strcmp (cat, "Error") == 0)) {
      char *t = text_of (f);
      PC_FAIL ("findings",
               "validate returns PALLET_E_INVALID when a finding "
               "is Critical or Error (docs/ops/validate.md)",
               "validate "
               "returned PALLET_OK with the finding %.300s; a host would "
               "migrate a VM its provider says cannot be",
               t ? t : "?");
      free (t);
      break;
    }
  }
  json_decref (items);
  return true;
}

void
pc_check_findings (void)
{
  unsigned n = 0;
  if (!pc_op_present (PC_OP_VALIDATE)) {
    pc_skip ("findings", "validate is absent");
    return;
  }
  if (!pc_session_ok ("findings"))
    return;
  for (size_t i = 0; i < json_array_size (pc.fx.vms); i++) {
    char *in = pc_vm_input (pc_vm (i), NULL, "conformance-findings");
    json_t *r = pc_drive (PC_OP_VALIDATE, NULL, NULL, NULL, in, findings_hook, &n);
    json_decref (r);
    free (in);
  }
}

/* ---- progress ---- */

static bool
progress_hook (enum pc_op op, json_t *r, const char *input, void *arg)
{
  static const char rule[] = "progress never goes backwards within a step";
  json_t *list = json_object_get (r, "progress"), *e, *prev = NULL;
  size_t i;
  (void) input;
  if (!pc_returned ("progress", op, r, NULL))
    return false;
  json_array_foreach (list, i, e) {
    json_int_t done = json_integer_value (json_array_get (e, 2));
    json_int_t total = json_integer_value (json_array_get (e, 3));
    const char *step = json_string_value (json_array_get (e, 1));
    /* Past its total is odd (a bar over 100 %), but a host clamps it. */
    if (total > 0 && done > total && pc.verbose)
      pc_note ("progress", "%s reported %s at %lld of %lld %s", pc_op_names[op], step,
               (long long) done, (long long) total, json_string_value (json_array_get (e, 4)));
    /* Same VM, step and unit: one progress bar. */
    if (prev && json_equal (json_array_get (prev, 0), json_array_get (e, 0))
        && json_equal (json_array_get (prev, 1), json_array_get (e, 1))
        && json_equal (json_array_get (prev, 4), json_array_get (e, 4))
        && done < json_integer_value (json_array_get (prev, 2))) {
      PC_FAIL ("progress", rule,
               "%s reported %s at %lld %s, then %lld: "
               "progress went backwards",
               pc_op_names[op], step, (long long) json_integer_value (json_array_get (prev, 2)),
               json_string_value (json_array_get (e, 4)), (long long) done);
      ++*(unsigned *) arg;
      break;
    }
    prev = e;
  }
  return true;
}

void
pc_check_progress (void)
{
  unsigned bad = 0;
  if (!pc_session_ok ("progress"))
    return;
  pc_walk ("progress", progress_hook, &bad);
}

/* ---- stdout ---- */

static bool
stdout_hook (enum pc_op op, json_t *r, const char *input, void *arg)
{
  json_t *out = json_object_get (r, "stdout");
  unsigned *seen = arg;
  (void) input;
  if (!pc_returned ("stdout", op, r, NULL))
    return false;
  if (out && !(*seen & (1u << op))) {
    *seen |= 1u << op;
    PC_FAIL ("stdout",
             "a provider never writes to stdout (it belongs to the "
             "host: log with host->log, output with host->emit)",
             "%s wrote "
             "%lld bytes to stdout: \"%.80s\"",
             pc_op_names[op], (long long) json_integer_value (json_object_get (out, "bytes")),
             json_string_value (json_object_get (out, "head")));
  }
  return true;
}

void
pc_check_stdout (void)
{
  unsigned seen = 0;
  struct pc_req rq = { .op = PC_OP_OPEN, .input = pc.fx.config_text };
  json_t *r;
  if (!pc_session_ok ("stdout"))
    return;
  r = pc_invoke (&rq);
  stdout_hook (PC_OP_OPEN, r, NULL, &seen);
  json_decref (r);
  pc_walk ("stdout", stdout_hook, &seen);
}

/* ---- secrets ---- */

/* Whether a Secret key names a secret (a region or a key ID does not). */
static bool
secret_key (const char *path)
{
  static const char *const words[] = { "secret",  "password",   "passwd", "token",
                                       "private", "credential", NULL };
  const char *k = strrchr (path, '.');
  char low[128];
  size_t i;
  k = k ? k + 1 : path;
  for (i = 0; k[i] && i + 1 < sizeof low; i++)
    low[i] = (char) (k[i] >= 'A' && k[i] <= 'Z' ? k[i] + 32 : k[i]);
  low[i] = '\0';
  for (i = 0; words[i]; i++)
    if (strstr (low, words[i]))
      return true;
  return false;
}

/* Every string of 6 or more bytes under config.secret whose key names a
 * secret (secretAccessKey, sessionToken, password, ...). */
static void
collect_secrets (const json_t *j, const char *path, json_t *out)
{
  const char *k;
  json_t *v;
  size_t i;
  char sub[256];
  if (json_is_string (j) && json_string_length (j) >= 6 && secret_key (path))
    json_object_set (out, path, (json_t *) j);
  else if (json_is_object (j))
    json_object_foreach ((json_t *) j, k, v) {
      snprintf (sub, sizeof sub, "%s.%s", path, k);
      collect_secrets (v, sub, out);
    }
  else if (json_is_array (j))
    json_array_foreach (j, i, v) {
      snprintf (sub, sizeof sub, "%s[%zu]", path, i);
      collect_secrets (v, sub, out);
    }
}

static const char *
where_found (const json_t *secrets, const char *text)
{
  const char *k;
  json_t *v;
  json_object_foreach ((json_t *) secrets, k, v)
    if (text && strstr (text, json_string_value (v)))
      return k;
  return NULL;
}

static void
scan (enum pc_op op, const json_t *secrets, const char *what, const char *text)
{
  const char *k = where_found (secrets, text);
  if (k)
    PC_FAIL ("secrets",
             "secrets never appear in states, outputs, errors or "
             "logs (docs/provider-guide.md)",
             "%s: the value of %s is in %s", pc_op_names[op], k, what);
}

static bool
secrets_hook (enum pc_op op, json_t *r, const char *input, void *arg)
{
  static const char *const kinds[] = { "?", "a state", "an item", "a result" };
  json_t *secrets = arg, *e;
  size_t i;
  (void) input;
  if (!pc_returned ("secrets", op, r, NULL))
    return false;
  json_array_foreach (json_object_get (r, "emits"), i, e) {
    json_int_t kind = json_integer_value (json_object_get (e, "kind"));
    char *t = text_of (json_object_get (e, "value"));
    scan (op, secrets, kinds[kind >= 1 && kind <= 3 ? kind : 0], t);
    free (t);
  }
  json_array_foreach (json_object_get (r, "logs"), i, e)
    scan (op, secrets, "a log or error message", json_string_value (e));
  return true;
}

void
pc_check_secrets (void)
{
  json_t *secrets = json_object ();
  collect_secrets (json_object_get (pc.fx.config, "secret"), "secret", secrets);
  if (json_object_size (secrets) == 0)
    pc_skip ("secrets", "the fixture's config has no secret to look for "
                        "(config.secret strings of 6 bytes or more under a key naming a "
                        "secret, token, password, private key or credential)");
  else if (pc_session_ok ("secrets"))
    pc_walk ("secrets", secrets_hook, secrets);
  json_decref (secrets);
}

/* ---- manifests ---- */

/* Runs the validator on the files; returns its exit status (-1: it could
 * not run) and its output in *out. */
static int
lint (char **files, size_t n, char **out)
{
  posix_spawn_file_actions_t fa;
  char **argv = calloc (n + 3, sizeof *argv);
  char path[PC_DIR_MAX + 32];
  int fd, status, e;
  pid_t pid;
  FILE *f;
  *out = NULL;
  snprintf (path, sizeof path, "%s/lint.out", pc_work_dir);
  fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (argv == NULL || fd < 0) {
    free (argv);
    return -1;
  }
  argv[0] = (char *) pc_lint_manifests;
  argv[1] = (char *) "--strict";
  for (size_t i = 0; i < n; i++)
    argv[i + 2] = files[i];
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_adddup2 (&fa, fd, 1);
  posix_spawn_file_actions_adddup2 (&fa, fd, 2);
  fflush (NULL);
  e = posix_spawn (&pid, pc_lint_manifests, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  free (argv);
  if (e != 0) {
    close (fd);
    if (asprintf (out, "%s", strerror (e)) < 0)
      *out = NULL;
    return -1;
  }
  while (waitpid (pid, &status, 0) == -1 && errno == EINTR)
    ;
  f = fdopen (fd, "r");
  if (f) {
    char buf[2048];
    size_t got;
    rewind (f);
    got = fread (buf, 1, sizeof buf - 1, f);
    buf[got] = '\0';
    *out = strdup (buf);
    fclose (f);
  }
  else
    close (fd);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/* The validator's report on one line, the temporary files named as the
 * items they hold. */
static void
tidy_lint_output (char *out)
{
  char prefix[PC_DIR_MAX + 16], *p;
  size_t n;
  if (out == NULL)
    return;
  n = (size_t) snprintf (prefix, sizeof prefix, "%s/manifest-", pc_work_dir);
  while ((p = strstr (out, prefix)) != NULL) {
    memcpy (p, "item-", 5);
    memmove (p + 5, p + n, strlen (p + n) + 1);
  }
  for (p = out; *p; p++)
    if (*p == '\n')
      *p = *(p + 1) ? ' ' : '\0';
}

static bool
manifests_hook (enum pc_op op, json_t *r, const char *input, void *arg)
{
  (void) input;
  if (op == PC_OP_BUILD_VM && pc_status_of (r) == PALLET_OK) {
    json_t *items = pc_items (r);
    json_array_extend ((json_t *) arg, items);
    json_decref (items);
  }
  return true;
}

static void
judge_manifests (json_t *items)
{
  static const char rule[] = "build_vm's items are valid KubeVirt and "
                             "Kubernetes objects (the bundled schemas, strict)";
  char *files[64], *out = NULL;
  size_t n = 0, i;
  json_t *m;
  int rc;
  json_array_foreach (items, i, m) {
    if (n == 64)
      break;
    if (asprintf (&files[n], "%s/manifest-%zu.json", pc_work_dir, i) < 0)
      break;
    if (json_dump_file (m, files[n], JSON_INDENT (1)) != 0) {
      free (files[n]);
      break;
    }
    n++;
  }
  rc = lint (files, n, &out);
  tidy_lint_output (out);
  if (rc == 1 || rc == 2)
    PC_FAIL ("manifests", rule,
             "pallet-lint-manifests --strict on %zu "
             "build_vm item(s): %s%.1500s",
             n,
             rc == 2 ? "cannot validate "
                       "them (an unknown apiVersion/kind, or not an object): "
                     : "",
             out ? out : "");
  else if (rc != 0)
    pc_skip ("manifests",
             "the manifest validator %s did not run (%s); "
             "give it with --lint-manifests PROGRAM",
             pc_lint_manifests, out ? out : "exit status unknown");
  for (i = 0; i < n; i++) {
    unlink (files[i]);
    free (files[i]);
  }
  free (out);
}

void
pc_check_manifests (void)
{
  json_t *items, *state, *r;
  char *uid;
  if (!pc_op_present (PC_OP_BUILD_VM)) {
    pc_skip ("manifests", "build_vm is absent");
    return;
  }
  if (pc_lint_manifests == NULL || *pc_lint_manifests == '\0') {
    pc_skip ("manifests", "no manifest validator: give it with "
                          "--lint-manifests PROGRAM or $PALLET_LINT_MANIFESTS");
    return;
  }
  if (!pc_session_ok ("manifests"))
    return;
  items = json_array ();
  state = json_object ();
  uid = pc_new_uid ("manifests", 0);
  if (pc_run_pipeline ("manifests", pc_vm (0), &state, uid, pc_nsteps, manifests_hook, items)) {
    if (json_array_size (items) == 0)
      pc_skip ("manifests", "build_vm emitted no item to validate");
    else
      judge_manifests (items);
  }
  if (pc_op_present (PC_OP_CLEANUP)) {
    r = pc_drive_cleanup (pc_vm (0), &state, uid, true, false, NULL, NULL);
    json_decref (r);
  }
  json_decref (items);
  json_decref (state);
  free (uid);
}

/* ---- capabilities ---- */

static json_t *
inventory_items (size_t k, const char *query, int *status, char **desc)
{
  char ctx[600];
  json_t *in =
      json_pack ("{sO ss}", "kind", json_array_get (pc.fx.inventory_kinds, k), "query", query);
  char *s = json_dumps (in, JSON_COMPACT);
  json_t *r = pc_drive (PC_OP_INVENTORY, NULL, NULL, NULL, s, NULL, NULL);
  json_t *items = pc_items (r);
  snprintf (ctx, sizeof ctx, "with query \"%.500s\"", query);
  pc_returned ("capabilities", PC_OP_INVENTORY, r, ctx);
  *status = pc_status_of (r);
  *desc = pc_describe (r);
  json_decref (r);
  json_decref (in);
  free (s);
  return items;
}

static unsigned queries_judged;

/* Queries every item set can answer: a limit, an order, and a where on
 * the first item's name. */
static void
query_one (size_t k, const json_t *all, const char *query)
{
  static const char rule[] = "a provider that declares "
                             "PALLET_CAP_INVENTORY_QUERY applies the query whole: its items equal "
                             "the host's own filtering of the unfiltered items";
  const char *kind = json_string_value (json_array_get (pc.fx.inventory_kinds, k));
  char *err = NULL, *desc = NULL;
  struct pallet_query *q = pallet_query_compile (query, &err);
  json_t *want = q ? pallet_query_apply (q, all, &err) : NULL, *got;
  int st;
  if (want == NULL) {
    pc_note ("capabilities", "query %s: %s", query, err ? err : "?");
    free (err);
    pallet_query_free (q);
    return;
  }
  got = inventory_items (k, query, &st, &desc);
  if (st == PALLET_E_INVALID)
    pc_note ("capabilities", "inventory %s refused the query \"%s\": %s", kind, query,
             desc ? desc : "?");
  else if (st != PALLET_OK)
    PC_FAIL ("capabilities", rule, "inventory %s with query \"%s\" %s", kind, query,
             desc ? desc : "?");
  else if (++queries_judged && !json_equal (got, want))
    PC_FAIL ("capabilities", rule,
             "inventory %s with query \"%s\" emitted "
             "%zu items; the host's filtering of its %zu items gives %zu "
             "(the query was not applied, or applied differently)",
             kind, query, json_array_size (got), json_array_size (all), json_array_size (want));
  free (desc);
  json_decref (got);
  json_decref (want);
  pallet_query_free (q);
}

void
pc_check_capabilities (void)
{
  if ((pc.vt.capabilities & PALLET_CAP_INVENTORY_QUERY) && !pc_op_present (PC_OP_INVENTORY)
      && pc_failures ("abi-vtable")) {
    pc_blocked_by ("capabilities", "abi-vtable");
    return;
  }
  if (!(pc.vt.capabilities & PALLET_CAP_INVENTORY_QUERY) || !pc_op_present (PC_OP_INVENTORY)) {
    pc_skip ("capabilities", "the provider declares no capability this "
                             "check can exercise (PALLET_CAP_INVENTORY_QUERY)");
    return;
  }
  if (!pc_session_ok ("capabilities"))
    return;
  for (size_t k = 0; k < json_array_size (pc.fx.inventory_kinds); k++) {
    int st;
    char *desc = NULL, query[512];
    json_t *all = inventory_items (k, "", &st, &desc);
    const char *name = json_string_value (json_object_get (json_array_get (all, 0), "name"));
    free (desc);
    if (st != PALLET_OK || json_array_size (all) < 2) {
      pc_note ("capabilities",
               "inventory %s: fewer than 2 items, no query "
               "can tell",
               json_string_value (json_array_get (pc.fx.inventory_kinds, k)));
      json_decref (all);
      continue;
    }
    query_one (k, all, "limit 1");
    query_one (k, all, "order by name desc");
    if (name && strchr (name, '\'') == NULL) {
      snprintf (query, sizeof query, "where name = '%s'", name);
      query_one (k, all, query);
    }
    json_decref (all);
  }
  if (queries_judged == 0)
    pc_skip ("capabilities", "no query could be judged (see the notes)");
}
