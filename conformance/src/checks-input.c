/* SPDX-License-Identifier: Apache-2.0 */
/* bad-input and leaks: what a provider does with input it must refuse. */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define PC_HAVE_VALGRIND 1
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#define PC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PC_ASAN 1
#endif
#endif
#ifdef PC_ASAN
size_t __sanitizer_get_current_allocated_bytes (void);
#endif

#include "flow.h"

#define HUGE_LEN (10u << 20)
#define DEEP     100000u

struct bad {
  const char *kind; /* what is wrong with it, for messages */
  bool cheap;       /* small enough to repeat in the leak check */
  char *text;
};

static char *fmt (const char *f, ...) __attribute__ ((format (printf, 1, 2)));
static char *
fmt (const char *f, ...)
{
  char *s = NULL;
  va_list ap;
  va_start (ap, f);
  if (vasprintf (&s, f, ap) < 0)
    s = NULL;
  va_end (ap);
  return s;
}

/* a + b + c, by memcpy: printf is slow on 10 MiB arguments. */
static char *
cat3 (const char *a, const char *b, const char *c)
{
  size_t la = strlen (a), lb = strlen (b), lc = strlen (c);
  char *s = malloc (la + lb + lc + 1);
  if (s) {
    memcpy (s, a, la);
    memcpy (s + la, b, lb);
    memcpy (s + la + lb, c, lc + 1);
  }
  return s;
}

static char *
repeat (char c, size_t n)
{
  char *s = malloc (n + 1);
  if (s) {
    memset (s, c, n);
    s[n] = '\0';
  }
  return s;
}

static char *
deep_text (void)
{
  char *s = malloc (2 * DEEP + 1);
  if (s) {
    memset (s, '[', DEEP);
    memset (s + DEEP, ']', DEEP);
    s[2 * DEEP] = '\0';
  }
  return s;
}

static char *
dump (json_t *j)
{
  char *s = json_dumps (j, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref (j);
  return s;
}

/* The per-VM input with key set to value (NULL: removed). */
static char *
vm_input_with (const char *key, json_t *value)
{
  char *text = pc_vm_input (pc_vm (0), NULL, "conformance-bad-input");
  json_t *in = json_loads (text, 0, NULL);
  free (text);
  if (value)
    json_object_set_new (in, key, value);
  else
    json_object_del (in, key);
  return dump (in);
}

/* Fills out[] with the bad inputs for op; returns how many. */
static size_t
bad_inputs (enum pc_op op, struct bad *out, bool cheap_only)
{
  size_t n = 0;
  char *huge = cheap_only ? strdup ("") : repeat ('a', HUGE_LEN);
  char *deep = cheap_only ? strdup ("") : deep_text ();
  char *pre = NULL;
  char *plan = json_dumps (pc.fx.plan, JSON_COMPACT);
  char *vm = json_dumps (pc_vm (0), JSON_COMPACT);
  char *kind =
      json_dumps (json_array_get (pc.fx.inventory_kinds, 0), JSON_COMPACT | JSON_ENCODE_ANY);
  if (kind == NULL)
    kind = strdup ("\"instances\"");

#define ADD(k, c, t) (out[n].kind = (k), out[n].cheap = (c), out[n++].text = (t))
  if (op == PC_OP_OPEN) {
    json_t *cfg;
    ADD ("malformed JSON", true, strdup ("{\"settings\": {"));
    ADD ("wrong type: a top-level array", true, strdup ("[]"));
    cfg = json_deep_copy (pc.fx.config);
    json_object_set_new (cfg, "settings", json_integer (5));
    ADD ("wrong type: \"settings\": 5", true, dump (cfg));
    ADD ("huge string: \"settings\" is a 10 MiB string", false,
         cat3 ("{\"settings\":\"", huge, "\"}"));
    ADD ("deep nesting: \"settings\" is 100000 nested arrays", false,
         cat3 ("{\"settings\":", deep, "}"));
    ADD ("invalid UTF-8 in a string", true, strdup ("{\"settings\":{\"x\":\"\xff\xfe\"}}"));
  }
  else if (op == PC_OP_INVENTORY) {
    ADD ("malformed JSON", true, strdup ("{\"kind\": \"inst"));
    ADD ("empty object", true, strdup ("{}"));
    ADD ("wrong type: \"kind\": 5", true, strdup ("{\"kind\":5,\"query\":\"\"}"));
    ADD ("wrong type: \"query\": 5", true, fmt ("{\"kind\":%s,\"query\":5}", kind));
    ADD ("wrong type: a top-level array", true, strdup ("[]"));
    ADD ("missing field: no \"kind\"", true, strdup ("{\"query\":\"\"}"));
    ADD ("huge string: \"kind\" is a 10 MiB string", false,
         cat3 ("{\"kind\":\"", huge, "\",\"query\":\"\"}"));
    pre = fmt ("{\"kind\":%s,\"query\":", kind);
    ADD ("deep nesting: \"query\" is 100000 nested arrays", false,
         pre ? cat3 (pre, deep, "}") : NULL);
    ADD ("invalid UTF-8 in a string", true, strdup ("{\"kind\":\"\xff\xfe\",\"query\":\"\"}"));
  }
  else {
    char *valid = vm_input_with ("state", json_object ());
    size_t half = valid ? strlen (valid) / 2 : 0;
    ADD ("malformed JSON (a valid input cut in half)", true, valid ? strndup (valid, half) : NULL);
    free (valid);
    ADD ("empty object", true, strdup ("{}"));
    ADD ("wrong type: \"state\": 5", true, vm_input_with ("state", json_integer (5)));
    ADD ("wrong type: \"vm\": \"x\"", true, vm_input_with ("vm", json_string ("x")));
    ADD ("wrong type: \"plan\": []", true, vm_input_with ("plan", json_array ()));
    ADD ("wrong type: a top-level array", true, strdup ("[]"));
    ADD ("missing field: no \"vm\"", true, vm_input_with ("vm", NULL));
    ADD ("missing field: no \"plan\"", true, vm_input_with ("plan", NULL));
    pre = fmt ("{\"plan\":%s,\"vm\":\"", plan);
    ADD ("huge string: \"vm\" is a 10 MiB string", false,
         pre ? cat3 (pre, huge, "\",\"state\":{},\"options\":{}}") : NULL);
    free (pre);
    pre = fmt ("{\"plan\":%s,\"vm\":%s,\"state\":", plan, vm);
    ADD ("deep nesting: \"state\" is 100000 nested arrays", false,
         pre ? cat3 (pre, deep, ",\"options\":{}}") : NULL);
    ADD ("invalid UTF-8 in a string", true,
         fmt ("{\"plan\":%s,\"vm\":{\"id\":\"\xff\xfe\",\"name\":\"x\","
              "\"index\":0},\"state\":{},\"options\":{}}",
              plan));
  }
#undef ADD
  free (pre);
  free (huge);
  free (deep);
  free (plan);
  free (vm);
  free (kind);
  return n;
}

static void
free_bad (struct bad *b, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (b[i].text);
}

/* ---- bad-input ---- */

static const char R_CRASH[] = "never crash on bad input";
static const char R_HANG[] = "bad input fails fast (no hang)";
static const char R_STATUS[] = "bad input gives an error status (not "
                               "PALLET_OK or PALLET_PENDING; open returns NULL)";
static const char R_MESSAGE[] = "an error status carries a message through "
                                "host->error";
static const char R_RANGE[] = "an op returns a pallet_status";
static const char R_CLOUD[] = "bad input changes nothing in the cloud";

static void
judge_bad (enum pc_op op, const struct bad *b, json_t *r)
{
  const char *name = pc_op_names[op];
  char *d = pc_describe (r);
  json_t *err = json_object_get (r, "error");
  const char *msg = json_string_value (json_object_get (err, "message"));
  int st = pc_status_of (r);

  if (json_object_get (r, "crash"))
    PC_FAIL ("bad-input", R_CRASH, "%s with %s: %s", name, b->kind, d);
  else if (json_object_get (r, "hang"))
    PC_FAIL ("bad-input", R_HANG, "%s with %s: %s", name, b->kind, d);
  else if (json_object_get (r, "open_failed"))
    PC_FAIL ("bad-input", "open accepts the fixture's config", "before %s with %s: %s", name,
             b->kind, d);
  else if (op == PC_OP_OPEN) {
    if (json_is_true (json_object_get (r, "opened")))
      PC_FAIL ("bad-input", R_STATUS, "open with %s returned a handle", b->kind);
    else if (msg == NULL || *msg == '\0')
      PC_FAIL ("bad-input", R_MESSAGE,
               "open with %s returned NULL without "
               "calling host->error",
               b->kind);
  }
  else if (st < 0 || st >= PALLET_E_LAST)
    PC_FAIL ("bad-input", R_RANGE, "%s with %s returned %d", name, b->kind, st);
  else if (st == PALLET_OK || st == PALLET_PENDING)
    PC_FAIL ("bad-input", R_STATUS, "%s with %s: %s", name, b->kind, d);
  else if (msg == NULL || *msg == '\0')
    PC_FAIL ("bad-input", R_MESSAGE,
             "%s with %s returned %s without calling "
             "host->error",
             name, b->kind, pc_status_name (st));
  free (d);
}

void
pc_check_bad_input (void)
{
  json_t *base = pc_baseline ("bad-input");
  unsigned tried = 0;
  /* One set per input shape: open, inventory, per-VM (10 MiB texts are
   * slow to build; build them once). */
  struct bad sets[3][16];
  size_t nsets[3] = { 0, 0, 0 };
  bool built[3] = { false, false, false };
  bool session = pc_op_present (PC_OP_OPEN) && pc_session_ok ("bad-input");
  for (int op = 0; op < PC_OP_COUNT; op++) {
    int set = op == PC_OP_OPEN ? 0 : op == PC_OP_INVENTORY ? 1 : 2;
    struct bad *b = sets[set];
    size_t n;
    if (!pc_op_present (op) || (op != PC_OP_OPEN && !session))
      continue;
    if (!built[set]) {
      nsets[set] = bad_inputs (op, b, false);
      built[set] = true;
    }
    n = nsets[set];
    for (size_t i = 0; i < n; i++) {
      struct pc_req rq = { .op = op, .input = b[i].text };
      json_t *r;
      if (b[i].text == NULL) {
        PC_FAIL ("bad-input", "the suite has memory", "out of memory");
        continue;
      }
      r = pc_invoke (&rq);
      judge_bad (op, &b[i], r);
      json_decref (r);
      tried++;
    }
  }
  for (int set = 0; set < 3; set++)
    free_bad (sets[set], nsets[set]);
  if (tried == 0)
    PC_FAIL ("bad-input", "the provider has ops to call",
             "no op could be called (open or close is NULL)");
  pc_counts_equal ("bad-input", R_CLOUD, base, "after the bad-input calls");
  json_decref (base);
}

/* ---- leaks ----
 *
 * A child calls the same thing W times to warm caches up, then N times,
 * reading the heap's bytes in use after each call: mallinfo2() (glibc),
 * memcheck's own count of live blocks under valgrind, or the allocator's
 * own count under AddressSanitizer.  Everything the mock
 * host allocates per call is freed before each reading.  A call that leaks
 * grows the heap on (nearly) every repetition; caches grow it a few times
 * and stop.  So: a leak is growth on at least 3/4 of the N calls.
 *
 * Each call runs on a fresh thread, joined before the reading: glibc keeps
 * a thread's freed small blocks in its tcache, which mallinfo2() counts as
 * in use, so calls on one long-lived thread show a slow, bounded "growth"
 * (about 500 bytes a call for provider-ec2's validate at first) that is
 * the allocator's cache, not the provider's.  A thread's tcache is handed
 * back to the arena when the thread exits. */

#define LEAK_WARM   4
#define LEAK_N      40
#define LEAK_N_SLOW 12

static size_t
heap_in_use (void)
{
#ifdef PC_ASAN
  return __sanitizer_get_current_allocated_bytes ();
#else
#ifdef PC_HAVE_VALGRIND
  if (RUNNING_ON_VALGRIND) {
    /* Memcheck holds freed blocks back from reuse, so its arena only
     * grows; ask its leak checker what is still allocated instead. */
    unsigned long leaked = 0, dubious = 0, reachable = 0, suppressed = 0;
    VALGRIND_DO_QUICK_LEAK_CHECK;
    VALGRIND_COUNT_LEAKS (leaked, dubious, reachable, suppressed);
    return leaked + dubious + reachable + suppressed;
  }
#endif
  struct mallinfo2 m = mallinfo2 ();
  return m.uordblks + m.hblkhd;
#endif
}

struct leak_job {
  enum pc_op op; /* PC_OP_OPEN: open/close cycles */
  const char *input;
  void *h; /* the session (not for PC_OP_OPEN) */
};

/* One repetition: the call and everything the mock host allocates for it. */
static void *
leak_call (void *arg)
{
  const struct leak_job *j = arg;
  struct pc_call c;
  pc_call_init (&c, pc_op_names[j->op]);
  if (j->op == PC_OP_OPEN) {
    void *h2 = pc.vt.open (&c.call, j->input);
    if (h2)
      pc.vt.close (h2);
  }
  else
    pc_op_fn (j->op) (j->h, &c.call, j->input);
  pc_call_free (&c);
  return NULL;
}

/* Runs one repetition on a thread of its own (see above); in this thread
 * if no thread can be made.  Only mallinfo2() needs it: memcheck and ASan
 * replace malloc (no tcache), and under memcheck a thread per call makes
 * the quick leak checks many times slower. */
static void
leak_call_on_thread (struct leak_job *j)
{
  pthread_t t;
#ifdef PC_ASAN
  bool own_thread = false;
#else
  bool own_thread = !RUNNING_ON_VALGRIND;
#endif
  if (own_thread && pthread_create (&t, NULL, leak_call, j) == 0)
    pthread_join (t, NULL);
  else
    leak_call (j);
}

static json_t *
leak_child (void *arg)
{
  struct leak_job *j = arg;
  struct pc_call c;
  void *h = NULL;
  size_t first = 0, prev = 0, now;
  unsigned inc = 0;

  if (j->op != PC_OP_OPEN) {
    pc_call_init (&c, "open");
    h = pc.vt.open (&c.call, pc.fx.config_text);
    if (h == NULL) {
      json_t *r =
          json_pack ("{so}", "open_failed",
                     pc_text (c.error_msg ? c.error_msg : "open returned NULL without a message"));
      pc_call_free (&c);
      return r;
    }
    pc_call_free (&c);
  }
  j->h = h;
  /* The input in read-only pages, as every call gets it. */
  pc_guard_inputs ();
  j->input = pc_ro_copy (j->input);
  struct timespec t0;
  unsigned n = LEAK_N;
  clock_gettime (CLOCK_MONOTONIC, &t0);
  for (unsigned i = 0; i < LEAK_WARM + n; i++) {
    leak_call_on_thread (j);
    /* A slow call (a copy) is measured fewer times. */
    if (i + 1 == LEAK_WARM && pc_elapsed_ms (&t0) > LEAK_WARM * 50.0)
      n = LEAK_N_SLOW;
    if (i + 1 < LEAK_WARM)
      continue;
    now = heap_in_use ();
    if (i + 1 == LEAK_WARM)
      first = now;
    else if (now > prev)
      inc++;
    prev = now;
  }
  if (h)
    pc.vt.close (h);
  return json_pack ("{si sI si}", "increases", inc, "growth",
                    (json_int_t) prev - (json_int_t) first, "calls", n);
}

static void
leak_one (enum pc_op op, const char *what, const char *input)
{
  static const char rule[] = "a call frees everything it allocated, failed "
                             "calls too, and close frees the session";
  struct leak_job j = { .op = op, .input = input };
  json_t *r = pc_in_child (leak_child, &j, 0);
  json_int_t inc = json_integer_value (json_object_get (r, "increases"));
  json_int_t growth = json_integer_value (json_object_get (r, "growth"));
  json_int_t calls = json_integer_value (json_object_get (r, "calls"));

  if (json_object_get (r, "increases") == NULL) {
    char *d = pc_describe (r), key[64];
    const char *first;
    snprintf (key, sizeof key, "crash:%s", pc_op_names[op]);
    first = pc_root_cause_seen (key);
    snprintf (key, sizeof key, "input:%s", pc_op_names[op]);
    if (first == NULL)
      first = pc_root_cause_seen (key);
    /* Crashes and hangs are bad-input's to report when it runs, or the
     * check's that met them first on valid input. */
    if (first)
      pc_blocked_by ("leaks", first);
    else if ((json_object_get (r, "crash") || json_object_get (r, "hang"))
             && pc_selected ("bad-input"))
      pc_note ("leaks", "%s with %s: %s; not measured (bad-input reports it)", pc_op_names[op],
               what, d ? d : "?");
    else
      PC_FAIL ("leaks",
               json_object_get (r, "crash")  ? R_CRASH
               : json_object_get (r, "hang") ? R_HANG
                                             : "the leak measurement runs",
               "%s with %s: %s", pc_op_names[op], what, d ? d : "?");
    free (d);
  }
  else if (inc * 4 >= calls * 3 && growth >= calls)
    PC_FAIL ("leaks", rule,
             "%s with %s: the heap grew on %lld of %lld "
             "identical calls, by %lld bytes in all",
             pc_op_names[op], what, (long long) inc, (long long) calls, (long long) growth);
  else if (pc.verbose)
    pc_note ("leaks", "%s with %s: heap grew on %lld of %d calls (%lld bytes)", pc_op_names[op],
             what, (long long) inc, LEAK_N, (long long) growth);
  json_decref (r);
}

/* Every step's last input in a real pipeline, then the tidy-up and the
 * rollback: the paths that only a migration takes (a leak only in
 * transfer's copy, or in cleanup, shows nowhere else). */
static bool
last_input_hook (enum pc_op op, json_t *r, const char *input, void *arg)
{
  json_t *last = arg;
  (void) r;
  json_object_set_new (last, pc_op_names[op], json_string (input));
  return true;
}

static void
leak_pipeline (void)
{
  char *uid = pc_new_uid ("leaks", 0), *in;
  json_t *state = json_object (), *last = json_object (), *r;
  bool done = pc_run_pipeline ("leaks", pc_vm (0), &state, uid, pc_nsteps, last_input_hook, last);
  for (size_t i = 1; done && i < pc_nsteps; i++)
    if (pc_op_present (pc_steps[i]))
      leak_one (pc_steps[i], "the input of its last call in a pipeline",
                json_string_value (json_object_get (last, pc_op_names[pc_steps[i]])));
  if (done && pc_op_present (PC_OP_CLEANUP)) {
    in = pc_vm_input_ex (pc_vm (0), state, uid, PC_OP_CLEANUP, false, true);
    leak_one (PC_OP_CLEANUP, "the tidy-up after a pipeline", in);
    free (in);
    in = pc_vm_input_ex (pc_vm (0), state, uid, PC_OP_CLEANUP, true, false);
    leak_one (PC_OP_CLEANUP, "a rollback after a pipeline", in);
    free (in);
  }
  if (pc_op_present (PC_OP_CLEANUP)) {
    r = pc_drive_cleanup (pc_vm (0), &state, uid, true, false, NULL, NULL);
    json_decref (r);
  }
  json_decref (state);
  json_decref (last);
  free (uid);
}

void
pc_check_leaks (void)
{
  if (!pc_op_present (PC_OP_OPEN)) {
    PC_FAIL ("leaks", "the provider has ops to call", "open or close is NULL");
    return;
  }
  bool session = pc_session_ok ("leaks");
  if (session)
    leak_one (PC_OP_OPEN, "the fixture's config (open/close cycles)", pc.fx.config_text);
  for (int op = 0; op < PC_OP_COUNT; op++) {
    struct bad b[16];
    size_t n;
    if (!pc_op_present (op) || (op != PC_OP_OPEN && !session))
      continue;
    n = bad_inputs (op, b, true);
    for (size_t i = 0; i < n; i++)
      if (b[i].cheap && b[i].text)
        leak_one (op, b[i].kind, b[i].text);
    free_bad (b, n);
  }
  /* Good calls that change nothing in the world. */
  if (!session)
    return;
  if (pc_op_present (PC_OP_VALIDATE)) {
    char *in = pc_vm_input (pc_vm (0), NULL, "conformance-leaks");
    leak_one (PC_OP_VALIDATE, "a valid input", in);
    free (in);
  }
  if (pc_op_present (PC_OP_INVENTORY)) {
    char *in = pc_inventory_input (0);
    leak_one (PC_OP_INVENTORY, "a valid input", in);
    free (in);
  }
  leak_pipeline ();
}
