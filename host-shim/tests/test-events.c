/* SPDX-License-Identifier: Apache-2.0 */
/* The event API, versioned options and pallet_inventory(), driven through
 * provider-null.  argv[1]: the build's providers dir, argv[2]: a scratch
 * dir. */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <jansson.h>

#include "pallet/host.h"

static struct pallet_module *mod;
static const char *scratch;

/* What a callback saw. */
struct seen {
  int n, n_items, n_steps, n_results, n_progress, bad_json;
  int last_type, last_code;
  char ids[16][32];
  atomic_int inside, overlapped;
};

static void
record (const struct pallet_event *ev, void *opaque)
{
  struct seen *s = opaque;
  if (atomic_fetch_add (&s->inside, 1) != 0)
    s->overlapped = 1;
  s->n++;
  s->last_type = ev->type;
  s->last_code = ev->code;
  if (ev->struct_size != sizeof *ev)
    s->bad_json = 1;
  if (ev->type != PALLET_EVENT_LOG) {
    json_t *j = ev->json ? json_loads (ev->json, JSON_DECODE_ANY, NULL) : NULL;
    const char *what = json_string_value (json_object_get (j, "event"));
    /* json is the event itself (with its name), or for items the item. */
    if (j == NULL
        || (ev->type != PALLET_EVENT_ITEM && ev->type != PALLET_EVENT_FINDING
            && (what == NULL || strcmp (what, ev->what) != 0)))
      s->bad_json = 1;
    if (ev->type == PALLET_EVENT_ITEM && s->n_items < 16)
      snprintf (s->ids[s->n_items], sizeof s->ids[0], "%s",
                json_string_value (json_object_get (j, "id")));
    json_decref (j);
  }
  s->n_items += ev->type == PALLET_EVENT_ITEM;
  s->n_steps += ev->type == PALLET_EVENT_STEP;
  s->n_results += ev->type == PALLET_EVENT_RESULT;
  s->n_progress += ev->type == PALLET_EVENT_PROGRESS;
  atomic_fetch_sub (&s->inside, 1);
}

static struct pallet_session *
open_vms (int n)
{
  char config[2048] = "{\"settings\": {\"vms\": [";
  for (int i = 1; i <= n; i++)
    snprintf (config + strlen (config), sizeof config - strlen (config),
              "%s{\"id\": \"vm-%d\", \"cpus\": %d}", i > 1 ? ", " : "", i, i % 3);
  strcat (config, "]}}");
  return pallet_session_open (mod, config, NULL);
}

static int
inventory (struct pallet_session *s, const char *kind, const char *query, struct seen *seen)
{
  memset (seen, 0, sizeof *seen);
  struct pallet_inventory_options o = PALLET_INVENTORY_OPTIONS_INIT;
  o.kind = kind;
  o.query = query;
  o.on_event = record;
  o.opaque = seen;
  return pallet_inventory (s, &o);
}

static void
test_inventory_stream (void)
{
  struct pallet_session *s = open_vms (5);
  CU_ASSERT_PTR_NOT_NULL_FATAL (s);
  struct seen seen;
  CU_ASSERT_EQUAL (inventory (s, "instances", NULL, &seen), PALLET_OK);
  CU_ASSERT_EQUAL (seen.n_items, 5);
  CU_ASSERT_STRING_EQUAL (seen.ids[4], "vm-5");
  CU_ASSERT_FALSE (seen.bad_json);
  /* limit without order: the first two as they come. */
  CU_ASSERT_EQUAL (inventory (s, "instances", "limit 2", &seen), PALLET_OK);
  CU_ASSERT_EQUAL (seen.n_items, 2);
  CU_ASSERT_STRING_EQUAL (seen.ids[1], "vm-2");
  /* order by + limit: the bounded heap; ties keep emit order. */
  CU_ASSERT_EQUAL (
      inventory (s, "instances", "where id != 'vm-3' order by cpus desc limit 3", &seen),
      PALLET_OK);
  CU_ASSERT_EQUAL (seen.n_items, 3);
  CU_ASSERT_STRING_EQUAL (seen.ids[0], "vm-2");
  CU_ASSERT_STRING_EQUAL (seen.ids[1], "vm-5");
  CU_ASSERT_STRING_EQUAL (seen.ids[2], "vm-1");
  /* order by without limit: everything, sorted. */
  CU_ASSERT_EQUAL (inventory (s, "instances", "order by cpus", &seen), PALLET_OK);
  CU_ASSERT_EQUAL (seen.n_items, 5);
  CU_ASSERT_STRING_EQUAL (seen.ids[0], "vm-3");
  CU_ASSERT_STRING_EQUAL (seen.ids[4], "vm-5");
  CU_ASSERT_EQUAL (inventory (s, "instances", "limit 0", &seen), PALLET_OK);
  CU_ASSERT_EQUAL (seen.n_items, 0);
  pallet_session_close (s);
}

static void
test_inventory_errors (void)
{
  struct pallet_session *s = open_vms (2);
  CU_ASSERT_PTR_NOT_NULL_FATAL (s);
  struct seen seen;
  CU_ASSERT_EQUAL (inventory (s, "instances", "where cpus >", &seen), PALLET_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL (strstr (pallet_last_error (), "column"));
  CU_ASSERT_EQUAL (seen.n, 0);
  CU_ASSERT_EQUAL (inventory (s, NULL, NULL, &seen), PALLET_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL (strstr (pallet_last_error (), "kind"));
  CU_ASSERT_EQUAL (inventory (s, "disks", NULL, &seen), PALLET_E_UNSUPPORTED);
  CU_ASSERT_PTR_NOT_NULL (strstr (pallet_last_error (), "disks"));
  pallet_session_close (s);
}

/* A plan of n VMs in a fresh state dir under the scratch dir. */
static char *
plan_of (int n)
{
  json_t *vms = json_array ();
  for (int i = 1; i <= n; i++) {
    char id[16], name[16];
    snprintf (id, sizeof id, "vm-%d", i);
    snprintf (name, sizeof name, "v%d", i);
    json_array_append_new (vms, json_pack ("{s:s,s:s}", "id", id, "name", name));
  }
  json_t *p = json_pack ("{s:s,s:o}", "name", "ev", "vms", vms);
  char *t = json_dumps (p, JSON_COMPACT);
  json_decref (p);
  return t;
}

static int
migrate (const struct pallet_migrate_options *o, const char *dir)
{
  char state[4096];
  snprintf (state, sizeof state, "%s/%s", scratch, dir);
  struct pallet_migrate_options copy = *o;
  copy.state_dir = state;
  char *plan = plan_of (3);
  int rc = pallet_migrate (mod, "{}", plan, &copy);
  free (plan);
  return rc;
}

static void
test_migrate_events (void)
{
  struct seen seen = { 0 };
  struct pallet_migrate_options o;
  pallet_migrate_options_init (&o);
  CU_ASSERT_EQUAL (o.struct_size, sizeof o);
  o.max_in_flight = 3;
  o.backoff_ms = 1;
  o.on_event = record;
  o.opaque = &seen;
  CU_ASSERT_EQUAL (migrate (&o, "events"), PALLET_EXIT_OK);
  /* Per VM: started and done for six steps, and "done". */
  if (seen.n_steps != 3 * 13)
    fprintf (stderr, "%d STEP events\n", seen.n_steps);
  CU_ASSERT_EQUAL (seen.n_steps, 3 * 13);
  CU_ASSERT_EQUAL (seen.n_results, 1);
  CU_ASSERT_EQUAL (seen.last_type, PALLET_EVENT_RESULT);
  CU_ASSERT_EQUAL (seen.last_code, PALLET_EXIT_OK);
  CU_ASSERT_FALSE (seen.bad_json);
  CU_ASSERT_FALSE (seen.overlapped);
}

/* struct pallet_migrate_options as the ABI 1.0 header declares it. */
struct migrate_options_1_0 {
  uint64_t struct_size;
  const char *state_dir;
  unsigned max_in_flight, max_attempts, backoff_ms, backoff_max_ms;
  const char *output_dir;
  pallet_event_fn *on_event;
  void *opaque;
  struct pallet_cancel *cancel;
};
_Static_assert(sizeof (struct migrate_options_1_0) == PALLET_MIGRATE_OPTIONS_SIZE_1_0,
               "PALLET_MIGRATE_OPTIONS_SIZE_1_0 is not the 1.0 layout");

/* A program built against the ABI 1.0 header calls the init function
 * on its smaller struct (on the heap, so ASan sees a write past it): the
 * function stays inside it and the run reads no cluster-mode field. */
static void
test_options_init_1_0 (void)
{
  struct seen seen = { 0 };
  struct migrate_options_1_0 *o = malloc (sizeof *o);
  CU_ASSERT_FATAL (o != NULL);
  memset (o, 0xa5, sizeof *o);
  (pallet_migrate_options_init) ((struct pallet_migrate_options *) o);
  CU_ASSERT_EQUAL (o->struct_size, sizeof *o);
  CU_ASSERT_PTR_NULL (o->cancel);
  CU_ASSERT_PTR_NULL (o->state_dir);
  o->on_event = record;
  o->opaque = &seen;
  char state[4096];
  snprintf (state, sizeof state, "%s/abi-1.0", scratch);
  o->state_dir = state;
  char *plan = plan_of (1);
  CU_ASSERT_EQUAL (pallet_migrate (mod, "{}", plan, (struct pallet_migrate_options *) o),
                   PALLET_EXIT_OK);
  CU_ASSERT_EQUAL (seen.last_code, PALLET_EXIT_OK);
  free (plan);
  free (o);

  /* The macro and the sized form: the caller's size, every byte zeroed. */
  struct pallet_migrate_options full;
  memset (&full, 0xa5, sizeof full);
  pallet_migrate_options_init (&full);
  CU_ASSERT_EQUAL (full.struct_size, sizeof full);
  CU_ASSERT_EQUAL (full.apply, 0);
  CU_ASSERT_PTR_NULL (full.destination_json);
  CU_ASSERT_EQUAL (full.wait_timeout_s, 0);
  struct {
    struct pallet_migrate_options o;
    uint64_t later;
  } big;
  memset (&big, 0xa5, sizeof big);
  pallet_migrate_options_init_size (&big.o, sizeof big);
  CU_ASSERT_EQUAL (big.o.struct_size, sizeof big);
  CU_ASSERT_EQUAL (big.later, 0);
}

static void
test_options_versions (void)
{
  struct seen seen = { 0 };
  struct pallet_migrate_options o = PALLET_MIGRATE_OPTIONS_INIT;
  o.on_event = record;
  o.opaque = &seen;
  /* Built against an older header without on_event: none are reported. */
  o.struct_size = offsetof (struct pallet_migrate_options, on_event);
  CU_ASSERT_EQUAL (migrate (&o, "old"), PALLET_EXIT_OK);
  CU_ASSERT_EQUAL (seen.n, 0);
  o.struct_size = 4;
  CU_ASSERT_EQUAL (migrate (&o, "tiny"), PALLET_EXIT_USAGE);
  CU_ASSERT_PTR_NOT_NULL (strstr (pallet_last_error (), "struct_size"));
  o.struct_size = UINT64_C (1) << 40; /* garbage: never read that far */
  CU_ASSERT_EQUAL (migrate (&o, "huge"), PALLET_EXIT_USAGE);
  /* From a newer header: accepted while the fields we lack are zero. */
  struct {
    struct pallet_migrate_options o;
    uint64_t later;
  } big;
  memset (&big, 0, sizeof big);
  big.o = o;
  big.o.struct_size = sizeof big;
  CU_ASSERT_EQUAL (pallet_validate_plan (mod, "{}",
                                         "{\"name\":\"v\",\"vms\":"
                                         "[{\"id\":\"vm-1\"}]}",
                                         &big.o),
                   PALLET_EXIT_OK);
  big.later = 1;
  CU_ASSERT_EQUAL (pallet_validate_plan (mod, "{}",
                                         "{\"name\":\"v\",\"vms\":"
                                         "[{\"id\":\"vm-1\"}]}",
                                         &big.o),
                   PALLET_EXIT_USAGE);
  CU_ASSERT_PTR_NOT_NULL (strstr (pallet_last_error (), "newer"));
  struct pallet_inventory_options io = PALLET_INVENTORY_OPTIONS_INIT;
  io.struct_size = 0;
  io.kind = "instances";
  struct pallet_session *s = open_vms (1);
  CU_ASSERT_EQUAL (pallet_inventory (s, &io), PALLET_E_INVALID);
  pallet_session_close (s);
}

/* Log lines outside a run reach the process-wide handler. */
static void
test_global_handler (void)
{
  struct seen seen = { 0 };
  pallet_set_event_handler (record, &seen);
  pallet_set_log_level (PALLET_LOG_DEBUG);
  struct pallet_session *s = open_vms (1);
  struct pallet_call_result r;
  pallet_session_call (s, PALLET_OP_TRANSFER, "one",
                       "{\"vm\":{\"id\":"
                       "\"vm-1\"},\"state\":{},\"options\":{}}",
                       &r);
  pallet_call_result_free (&r);
  pallet_session_close (s);
  pallet_set_log_level (PALLET_LOG_WARNING);
  pallet_set_event_handler (NULL, NULL);
  CU_ASSERT_TRUE (seen.n > 0);
  CU_ASSERT_FALSE (seen.bad_json);
  CU_ASSERT_STRING_EQUAL (pallet_log_level_name (PALLET_LOG_INFO), "info");
}

static int
rm_one (const char *path, const struct stat *st, int flag, struct FTW *f)
{
  (void) st;
  (void) flag;
  (void) f;
  return remove (path);
}

int
main (int argc, char **argv)
{
  if (argc != 3) {
    fprintf (stderr, "usage: %s PROVIDER_DIR SCRATCH_DIR\n", argv[0]);
    return 2;
  }
  /* A dir of our own: the valgrind twin runs beside this test. */
  char tmpl[4096];
  snprintf (tmpl, sizeof tmpl, "%s.XXXXXX", argv[2]);
  if ((scratch = mkdtemp (tmpl)) == NULL) {
    perror (tmpl);
    return 1;
  }
  char path[4096];
  snprintf (path, sizeof path, "%s/pallet-provider-null.so", argv[1]);
  if (pallet_module_load (path, 0, &mod) != PALLET_OK) {
    fprintf (stderr, "%s\n", pallet_last_error ());
    return 1;
  }
  if (CU_initialize_registry () != CUE_SUCCESS)
    return 1;
  CU_pSuite s = CU_add_suite ("events", NULL, NULL);
  CU_add_test (s, "inventory streams and orders", test_inventory_stream);
  CU_add_test (s, "inventory errors", test_inventory_errors);
  CU_add_test (s, "migrate events", test_migrate_events);
  CU_add_test (s, "options versions", test_options_versions);
  CU_add_test (s, "options init of an ABI 1.0 caller", test_options_init_1_0);
  CU_add_test (s, "process-wide handler", test_global_handler);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned failed = CU_get_number_of_failures ();
  unsigned run = CU_get_number_of_tests_run ();
  CU_cleanup_registry ();
  pallet_module_free (mod);
  nftw (scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  return failed == 0 && run == 6 ? 0 : 1;
}
