/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-v2v-swap-test: two real providers in one process.
 *
 *   pallet-v2v-swap-test EC2-PLAN VSPHERE-PLAN VSPHERE-PLAN-2 WORKDIR
 *
 * Loads provider-ec2 and pallet-provider-vsphere together through
 * libpallet-host, migrates one plan with each at the same time (two
 * threads), unloads the vsphere module, migrates with EC2 alone, loads
 * vsphere again and migrates with it (the second plan: other settings),
 * then does the same the other way round.  Every run has its own state
 * dir and event callback; the program checks that each run's events
 * name only its own plan's VMs and carry neither provider's secret, that
 * each state dir holds only its own plan and VMs, that a finished run's
 * state dir is left as it was by the runs after it, and that an EC2
 * session stays usable while the other module is unloaded and loaded.
 * It prints one JSON line per run for the test that starts it
 * (test_v2v_swap.py), which checks the cloud, the simulator and the
 * manifests from outside. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include <pallet/host.h>
#include "pallet-plan.h"

static int failures;

static void
fail (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fputs ("FAIL: ", stderr);
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
  failures++;
}

/* One plan: its provider's config and the plan, as JSON texts. */
struct plan {
  const char *label;
  char *config, *plan;
  char uid[64];
  json_t *vm_ids;  /* the VMs' keys in the plan */
  json_t *secrets; /* the Secret's values: never in an event */
};

/* The VM's key in the plan, as the host names it in events and state:
 * its id, else its name. */
static const char *
vm_key (const json_t *vm)
{
  const char *id = json_string_value (json_object_get (vm, "id"));
  return id && *id ? id : json_string_value (json_object_get (vm, "name"));
}

static int
plan_load (struct plan *p, const char *label, const char *path)
{
  char *err = NULL;
  const char *paths[] = { path };
  json_t *res = pallet_plan_read (paths, 1, &err);
  json_t *plan = res ? pallet_plan_normalize (res, NULL, &err) : NULL;
  json_t *cfg = plan ? pallet_plan_provider_config (res, plan, "source", &err) : NULL;
  json_decref (res);
  if (cfg == NULL) {
    fprintf (stderr, "%s: %s\n", path, err ? err : "cannot load");
    free (err);
    json_decref (plan);
    return -1;
  }
  p->label = label;
  p->plan = json_dumps (plan, JSON_COMPACT);
  p->config = json_dumps (cfg, JSON_COMPACT);
  const char *uid = json_string_value (json_object_get (plan, "uid"));
  snprintf (p->uid, sizeof p->uid, "%s", uid ? uid : "");
  p->vm_ids = json_array ();
  size_t i;
  json_t *vm;
  json_array_foreach (json_object_get (plan, "vms"), i, vm) {
    const char *key = vm_key (vm);
    if (key)
      json_array_append_new (p->vm_ids, json_string (key));
  }
  p->secrets = json_array ();
  const char *k;
  json_t *v;
  json_object_foreach (json_object_get (cfg, "secret"), k, v) {
    /* "true", a region...: only values that could be a secret. */
    if (json_is_string (v) && strlen (json_string_value (v)) >= 12)
      json_array_append (p->secrets, v);
  }
  json_decref (plan);
  json_decref (cfg);
  return 0;
}

static void
plan_free (struct plan *p)
{
  free (p->config);
  free (p->plan);
  json_decref (p->vm_ids);
  json_decref (p->secrets);
}

static int
json_has_string (const json_t *a, const char *s)
{
  size_t i;
  json_t *v;
  json_array_foreach (a, i, v) {
    if (strcmp (json_string_value (v), s) == 0)
      return 1;
  }
  return 0;
}

/* What one run saw, checked against every plan of the test. */
struct run {
  const char *name;
  const struct plan *plan;
  const struct plan *others[2];
  char state_dir[4096], output_dir[4096];
  int rc;
  unsigned events, steps, foreign_vm, leaked_secret, summary_code;
  int summary_seen;
};

static void
on_event (const struct pallet_event *ev, void *opaque)
{
  struct run *r = opaque;
  r->events++;
  if (ev->type == PALLET_EVENT_STEP)
    r->steps++;
  if (ev->type == PALLET_EVENT_RESULT && ev->what && strcmp (ev->what, "summary") == 0) {
    r->summary_seen = 1;
    r->summary_code = (unsigned) ev->code;
  }
  if (ev->vm && !json_has_string (r->plan->vm_ids, ev->vm)) {
    if (r->foreign_vm++ == 0)
      fail ("%s: an event for VM '%s', which is not in its plan (%s)", r->name, ev->vm,
            ev->json ? ev->json : ev->message);
  }
  const char *texts[] = { ev->json, ev->message };
  for (size_t t = 0; t < 2; t++) {
    if (texts[t] == NULL)
      continue;
    const struct plan *all[] = { r->plan, r->others[0], r->others[1] };
    for (size_t p = 0; p < 3; p++) {
      size_t i;
      json_t *s;
      json_array_foreach (all[p] ? all[p]->secrets : NULL, i, s) {
        if (strstr (texts[t], json_string_value (s)) && r->leaked_secret++ == 0)
          fail ("%s: an event carries a secret of %s's Secret", r->name, all[p]->label);
      }
    }
  }
}

static void
run_init (struct run *r, const char *work, const char *name, const struct plan *plan,
          const struct plan *o1, const struct plan *o2)
{
  memset (r, 0, sizeof *r);
  r->name = name;
  r->plan = plan;
  r->others[0] = o1;
  r->others[1] = o2;
  snprintf (r->state_dir, sizeof r->state_dir, "%s/%s/state", work, name);
  snprintf (r->output_dir, sizeof r->output_dir, "%s/%s/manifests", work, name);
}

struct job {
  struct pallet_module *m;
  struct run *r;
};

static void *
run_thread (void *opaque)
{
  struct job *j = opaque;
  struct pallet_migrate_options mo = PALLET_MIGRATE_OPTIONS_INIT;
  mo.state_dir = j->r->state_dir;
  mo.output_dir = j->r->output_dir;
  mo.on_event = on_event;
  mo.opaque = j->r;
  j->r->rc = pallet_migrate (j->m, j->r->plan->config, j->r->plan->plan, &mo);
  return NULL;
}

/* The state dir holds this plan (plan.json: its source type and VMs) and a
 * state file for each of its VMs, and nothing of another plan. */
static void
check_state_dir (const struct run *r, const char *type)
{
  char *text = pallet_state_read (r->state_dir);
  json_t *st = text ? json_loads (text, 0, NULL) : NULL;
  free (text);
  if (st == NULL) {
    fail ("%s: no state in %s: %s", r->name, r->state_dir, pallet_last_error ());
    return;
  }
  /* plan.json names the module that ran it and the plan's uid. */
  json_t *pj = json_object_get (st, "plan");
  const char *t = json_string_value (json_object_get (pj, "provider"));
  const char *uid = json_string_value (json_object_get (pj, "planUID"));
  if (t == NULL || strcmp (t, type) != 0)
    fail ("%s: %s/plan.json names provider '%s', expected '%s'", r->name, r->state_dir,
          t ? t : "(none)", type);
  if (uid == NULL || strcmp (uid, r->plan->uid) != 0)
    fail ("%s: %s/plan.json names plan uid '%s', expected '%s'", r->name, r->state_dir,
          uid ? uid : "(none)", r->plan->uid);
  json_t *vms = json_object_get (st, "vms");
  if (json_array_size (vms) != json_array_size (r->plan->vm_ids))
    fail ("%s: %zu VM state files in %s, the plan has %zu VMs", r->name, json_array_size (vms),
          r->state_dir, json_array_size (r->plan->vm_ids));
  size_t i;
  json_t *vm;
  json_array_foreach (vms, i, vm) {
    const char *id = vm_key (json_object_get (vm, "vm"));
    const char *phase = json_string_value (json_object_get (vm, "phase"));
    if (id == NULL || !json_has_string (r->plan->vm_ids, id))
      fail ("%s: a VM state file for '%s' in %s, not a VM of its plan", r->name,
            id ? id : "(no id)", r->state_dir);
    if (phase == NULL || strcmp (phase, "done") != 0)
      fail ("%s: VM '%s' is in phase '%s', expected done", r->name, id ? id : "?",
            phase ? phase : "(none)");
  }
  json_decref (st);
}

/* A snapshot of a state dir's files (name, size, mtime) to compare later. */
static json_t *
dir_snapshot (const char *dir)
{
  json_t *o = json_object ();
  DIR *d = opendir (dir);
  struct dirent *e;
  while (d && (e = readdir (d)) != NULL) {
    char p[8192];
    struct stat sb;
    snprintf (p, sizeof p, "%s/%s", dir, e->d_name);
    if (e->d_name[0] == '.' || stat (p, &sb) != 0 || !S_ISREG (sb.st_mode))
      continue;
    json_object_set_new (o, e->d_name,
                         json_pack ("[I,I,I]", (json_int_t) sb.st_size,
                                    (json_int_t) sb.st_mtim.tv_sec,
                                    (json_int_t) sb.st_mtim.tv_nsec));
  }
  if (d)
    closedir (d);
  return o;
}

static void
report (const struct run *r, const char *module_path)
{
  json_t *o =
      json_pack ("{s:s,s:s,s:i,s:i,s:i,s:i,s:s,s:s,s:s}", "run", r->name, "plan", r->plan->label,
                 "rc", r->rc, "events", (int) r->events, "steps", (int) r->steps, "summary",
                 r->summary_seen ? (int) r->summary_code : -1, "stateDir", r->state_dir,
                 "outputDir", r->output_dir, "module", module_path);
  char *s = json_dumps (o, JSON_COMPACT);
  printf ("%s\n", s);
  fflush (stdout);
  free (s);
  json_decref (o);
}

static void
check_run (const struct run *r, const char *type)
{
  if (r->rc != PALLET_EXIT_OK)
    fail ("%s: pallet_migrate returned %d", r->name, r->rc);
  if (!r->summary_seen || r->summary_code != PALLET_EXIT_OK)
    fail ("%s: no summary event with code 0", r->name);
  if (r->steps == 0)
    fail ("%s: no step events", r->name);
  check_state_dir (r, type);
}

/* Whether a file is mapped into this process (/proc/self/maps). */
static int
mapped (const char *path)
{
  FILE *f = fopen ("/proc/self/maps", "r");
  char line[8192];
  int found = 0;
  while (f && !found && fgets (line, sizeof line, f)) {
    char *nl = strchr (line, '\n');
    if (nl)
      *nl = '\0';
    size_t n = strlen (line), k = strlen (path);
    found = n >= k && strcmp (line + n - k, path) == 0;
  }
  if (f)
    fclose (f);
  return found;
}

static struct pallet_module *
load (const char *name)
{
  struct pallet_module *m;
  if (pallet_module_load (name, 0, &m) != PALLET_OK) {
    fail ("load %s: %s", name, pallet_last_error ());
    return NULL;
  }
  return m;
}

static void
migrate (struct pallet_module *m, struct run *r, const char *type)
{
  struct job j = { m, r };
  run_thread (&j);
  report (r, pallet_module_path (m));
  check_run (r, type);
}

/* Inventory through an EC2 session opened before the swap: the session and
 * its module are untouched by unloading and loading another module. */
static void
ec2_inventory (struct pallet_session *s, const char *when)
{
  struct pallet_inventory_options io = PALLET_INVENTORY_OPTIONS_INIT;
  io.kind = "instances";
  int rc = pallet_inventory (s, &io);
  if (rc != PALLET_OK)
    fail ("EC2 inventory %s: %s", when, pallet_last_error ());
}

int
main (int argc, char **argv)
{
  if (argc != 5) {
    fprintf (stderr, "usage: %s EC2-PLAN VSPHERE-PLAN VSPHERE-PLAN-2 WORKDIR\n", argv[0]);
    return 2;
  }
  const char *work = argv[4];
  struct plan ec2, vs1, vs2;
  if (plan_load (&ec2, "ec2", argv[1]) || plan_load (&vs1, "vsphere", argv[2])
      || plan_load (&vs2, "vsphere-2", argv[3]))
    return 2;

  struct pallet_module *me = load ("ec2"), *mv = load ("vsphere");
  if (me == NULL || mv == NULL)
    return 1;
  if (pallet_module_vtable (me) == pallet_module_vtable (mv))
    fail ("the two modules share one vtable");

  /* 1. Both loaded, both migrating at once. */
  struct run r1, r2, r3, r4, r5, r6;
  run_init (&r1, work, "ec2-1", &ec2, &vs1, &vs2);
  run_init (&r2, work, "vsphere-1", &vs1, &ec2, NULL);
  struct job j1 = { me, &r1 }, j2 = { mv, &r2 };
  pthread_t t1, t2;
  if (pthread_create (&t1, NULL, run_thread, &j1) || pthread_create (&t2, NULL, run_thread, &j2)) {
    fail ("pthread_create: %s", strerror (errno));
    return 1;
  }
  pthread_join (t1, NULL);
  pthread_join (t2, NULL);
  report (&r1, pallet_module_path (me));
  report (&r2, pallet_module_path (mv));
  check_run (&r1, "ec2");
  check_run (&r2, "vsphere");
  json_t *snap1 = dir_snapshot (r1.state_dir), *snap2 = dir_snapshot (r2.state_dir);

  struct pallet_session_params sp = PALLET_SESSION_PARAMS_INIT;
  struct pallet_session *es = pallet_session_open (me, ec2.config, &sp);
  if (es == NULL)
    fail ("EC2 session: %s", pallet_last_error ());
  else
    ec2_inventory (es, "with both modules loaded");

  /* 2. vsphere unloaded: EC2 alone, its open session still works. */
  char *vs_path = strdup (pallet_module_path (mv));
  pallet_module_free (mv);
  /* Unloaded for real: dlclose unmapped it (sanitizer builds keep
   * modules mapped, PALLET_NO_DLCLOSE, so their reports name them). */
  if (getenv ("PALLET_NO_DLCLOSE") == NULL && mapped (vs_path))
    fail ("%s is still mapped after pallet_module_free", vs_path);
  if (es)
    ec2_inventory (es, "after unloading vsphere");
  run_init (&r3, work, "ec2-2", &ec2, &vs1, &vs2);
  migrate (me, &r3, "ec2");

  /* 3. vsphere loaded again (same file), the second plan's settings. */
  mv = load ("vsphere");
  if (mv == NULL)
    return 1;
  if (strcmp (pallet_module_path (mv), vs_path) != 0)
    fail ("vsphere reloaded from %s, first from %s", pallet_module_path (mv), vs_path);
  free (vs_path);
  if (es)
    ec2_inventory (es, "after loading vsphere again");
  run_init (&r4, work, "vsphere-2", &vs2, &ec2, &vs1);
  migrate (mv, &r4, "vsphere");

  /* 4. The other way round: EC2 unloaded and loaded again, vsphere
   * running alone in between. */
  if (es)
    pallet_session_close (es);
  char *ec2_path = strdup (pallet_module_path (me));
  pallet_module_free (me);
  if (getenv ("PALLET_NO_DLCLOSE") == NULL && mapped (ec2_path))
    fail ("%s is still mapped after pallet_module_free", ec2_path);
  free (ec2_path);
  run_init (&r5, work, "vsphere-3", &vs1, &ec2, &vs2);
  migrate (mv, &r5, "vsphere");
  me = load ("ec2");
  if (me == NULL)
    return 1;
  run_init (&r6, work, "ec2-3", &ec2, &vs1, &vs2);
  migrate (me, &r6, "ec2");

  /* The first runs' state dirs were not touched by the later runs. */
  json_t *now1 = dir_snapshot (r1.state_dir), *now2 = dir_snapshot (r2.state_dir);
  if (json_object_size (snap1) == 0 || !json_equal (snap1, now1))
    fail ("%s changed after its run ended", r1.state_dir);
  if (json_object_size (snap2) == 0 || !json_equal (snap2, now2))
    fail ("%s changed after its run ended", r2.state_dir);
  json_decref (snap1);
  json_decref (snap2);
  json_decref (now1);
  json_decref (now2);

  pallet_module_free (me);
  pallet_module_free (mv);
  plan_free (&ec2);
  plan_free (&vs1);
  plan_free (&vs2);
  if (failures)
    fprintf (stderr, "%d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
