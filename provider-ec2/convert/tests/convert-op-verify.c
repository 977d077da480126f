/* SPDX-License-Identifier: Apache-2.0 */
/* The provider's convert op runs the post-conversion verification: loads
 * pallet-provider-ec2.so through its entry point with a small host, and
 * calls convert on a state that says the disk was already converted (so
 * only the verification runs) with the UNconverted test guest:
 *   - cancelled before the verification: PALLET_E_CANCELLED, no appliance;
 *   - then: PALLET_E_FAILED naming initramfs-virtio-net and the fix, and
 *     the emitted state carries verification {ok: false, 6 checks};
 *   - with a stale convertedDisks stamp the op would convert again: not
 *     run here (a full conversion), but the stamp is what it compares.
 *
 *   convert-op-verify PROVIDER.so DISK.img
 *
 * With --annotations (fast, no disk): build_vm on a manifest test case
 * whose state has an inspection and a failed boot check must annotate the
 * VirtualMachine with them, and without them must add none; convert on a
 * plan with a misspelt pallet.dev/ annotation must refuse it, naming it
 * and the option meant, before it touches a disk.
 *
 *   convert-op-verify --annotations PROVIDER.so PLAN.json CASE.json
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "pallet/provider.h"

static int cancel_flag, last_code, failures;
static char *last_error, *last_state;
static json_t *items;

static void
h_log (struct pallet_call *call, int level, const char *fmt, ...)
{
  va_list ap;
  (void) call;
  if (level > PALLET_LOG_INFO)
    return;
  va_start (ap, fmt);
  fputs ("  log: ", stderr);
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
}

static void
h_progress (struct pallet_call *call, const char *vm, const char *step, uint64_t done,
            uint64_t total, const char *unit)
{
  (void) call;
  (void) vm;
  (void) step;
  (void) done;
  (void) total;
  (void) unit;
}

static int
h_cancelled (struct pallet_call *call)
{
  (void) call;
  return cancel_flag;
}

static void
h_error (struct pallet_call *call, int code, const char *fmt, ...)
{
  va_list ap;
  (void) call;
  free (last_error);
  va_start (ap, fmt);
  if (vasprintf (&last_error, fmt, ap) < 0)
    last_error = NULL;
  va_end (ap);
  last_code = code;
}

static int
h_emit (struct pallet_call *call, int kind, const char *json)
{
  (void) call;
  if (kind == PALLET_EMIT_STATE) {
    free (last_state);
    last_state = strdup (json);
  }
  if (kind == PALLET_EMIT_ITEM && items)
    json_array_append_new (items, json_loads (json, 0, NULL));
  return 0;
}

static void
h_retry_after (struct pallet_call *call, uint32_t ms)
{
  (void) call;
  (void) ms;
}

static const char *
h_get_param (struct pallet_call *call, const char *key)
{
  (void) call;
  (void) key;
  return NULL;
}

static const struct pallet_host host = {
  .abi_major = PALLET_ABI_MAJOR,
  .abi_minor = PALLET_ABI_MINOR,
  .struct_size = sizeof (struct pallet_host),
  .log = h_log,
  .progress = h_progress,
  .cancelled = h_cancelled,
  .error = h_error,
  .emit = h_emit,
  .retry_after = h_retry_after,
  .get_param = h_get_param,
};

#define EXPECT(cond, ...)                     \
  do {                                        \
    if (!(cond)) {                            \
      fprintf (stderr, "FAIL: " __VA_ARGS__); \
      fputc ('\n', stderr);                   \
      failures++;                             \
    }                                         \
  } while (0)

static char *
make_input (const char *disk)
{
  struct stat sb;
  char stamp[4200];
  json_t *in;
  char *s;

  if (stat (disk, &sb) != 0)
    return NULL;
  snprintf (stamp, sizeof stamp, "%s@%lld.%09ld", disk, (long long) sb.st_mtim.tv_sec,
            (long) sb.st_mtim.tv_nsec);
  in = json_pack ("{s:{s:s, s:s, s:s}, s:{s:s}, s:{s:[{s:i, s:s}], s:{s:s},"
                  " s:s, s:[s]}, s:{s:b}}",
                  "plan", "name", "op-verify", "uid", "u-1", "type", "cold", "vm", "id", "i-0abc",
                  "state", "volumes", "diskIndex", 0, "localPath", disk, "inspection", "type",
                  "linux", "conversion", "converted with virt-v2v-in-place", "convertedDisks",
                  stamp, "options", "cancelled", 0);
  s = in ? json_dumps (in, JSON_COMPACT) : NULL;
  json_decref (in);
  return s;
}

/* The VirtualMachine build_vm emits for PLAN and CASE (with its state's
 * inspection and bootVerification set from GUEST), or NULL. */
static json_t *
built_vm (const struct pallet_provider *p, void *h, json_t *plan, json_t *c, json_t *guest)
{
  struct pallet_call call = { &host, NULL };
  json_t *in = json_deep_copy (c), *vm = NULL, *m;
  size_t i;
  char *text;

  json_object_set (in, "plan", plan);
  json_object_update (json_object_get (in, "state"), guest);
  text = json_dumps (in, JSON_COMPACT);
  items = json_array ();
  int st = text ? p->build_vm (h, &call, text) : -1;
  EXPECT (st == PALLET_OK, "build_vm: status %d: %s", st, last_error ? last_error : "");
  json_array_foreach (items, i, m)
    if (!strcmp (json_string_value (json_object_get (m, "kind")) ?: "", "VirtualMachine"))
      vm = json_incref (m);
  EXPECT (vm != NULL, "build_vm emitted no VirtualMachine");
  json_decref (items);
  items = NULL;
  free (text);
  json_decref (in);
  return vm;
}

static const char *
annotation (const json_t *vm, const char *key)
{
  return json_string_value (
      json_object_get (json_object_get (json_object_get (vm, "metadata"), "annotations"), key));
}

#define EXPECT_ANN(vm, key, want)                                                    \
  do {                                                                               \
    const char *got_ = annotation (vm, key);                                         \
    EXPECT (got_ && !strcmp (got_, want), "annotation %s: \"%s\", want \"%s\"", key, \
            got_ ? got_ : "(none)", want);                                           \
  } while (0)

/* convert refuses the Plan's annotation KEY, suggesting WANT (or none). */
static void
convert_refuses (const struct pallet_provider *p, void *h, const json_t *plan, const json_t *c,
                 const char *key, const char *want)
{
  struct pallet_call call = { &host, NULL };
  json_t *in = json_deep_copy (c), *pl = json_deep_copy (plan);
  char *text, suggestion[160];

  json_object_set_new (pl, "annotations", json_pack ("{s:s}", key, "60"));
  json_object_set_new (in, "plan", pl);
  text = json_dumps (in, JSON_COMPACT);
  free (last_error);
  last_error = NULL;
  int st = text ? p->convert (h, &call, text) : -1;
  snprintf (suggestion, sizeof suggestion, "did you mean \"%s\"?", want ? want : "");
  EXPECT (st == PALLET_E_INVALID, "convert with %s: status %d, want PALLET_E_INVALID", key, st);
  EXPECT (last_error && strstr (last_error, key) && strstr (last_error, "fix: ")
              && (want ? strstr (last_error, suggestion) != NULL
                       : strstr (last_error, "did you mean") == NULL),
          "convert with %s: message does not name it and %s: %s", key, want ? want : "no guess",
          last_error ? last_error : "(none)");
  free (text);
  json_decref (in);
}

static int
annotations (const struct pallet_provider *p, void *h, const char *plan_path, const char *case_path)
{
  json_t *plan = json_load_file (plan_path, 0, NULL), *c = json_load_file (case_path, 0, NULL);
  json_t *guest, *vm;

  if (!plan || !c) {
    fprintf (stderr, "FAIL: cannot read %s or %s\n", plan_path, case_path);
    return 1;
  }
  guest = json_pack ("{s:{s:s, s:s, s:s, s:s, s:s, s:{s:b, s:b}}, s:{s:b, s:s}}", "inspection",
                     "distro", "debian", "productName", "12.5", "kernel", "6.1.0-50-cloud-amd64",
                     "firmware", "bios", "root", "/dev/sda1", "virtioBefore", "kernel", 1,
                     "initramfs", 0, "bootVerification", "ok", 0, "error", "timeout");
  vm = built_vm (p, h, plan, c, guest);
  EXPECT_ANN (vm, "pallet.dev/os", "debian 12.5");
  EXPECT_ANN (vm, "pallet.dev/kernel", "6.1.0-50-cloud-amd64");
  EXPECT_ANN (vm, "pallet.dev/firmware", "bios");
  EXPECT_ANN (vm, "pallet.dev/root-device", "/dev/sda1");
  EXPECT_ANN (vm, "pallet.dev/virtio-before", "false");
  EXPECT_ANN (vm, "pallet.dev/boot-verified", "false");
  json_decref (vm);
  json_decref (guest);

  /* No inspection, a passed boot check: only pallet.dev/boot-verified. */
  guest = json_pack ("{s:{s:b}}", "bootVerification", "ok", 1);
  vm = built_vm (p, h, plan, c, guest);
  EXPECT_ANN (vm, "pallet.dev/boot-verified", "true");
  EXPECT (annotation (vm, "pallet.dev/os") == NULL, "pallet.dev/os without an inspection");
  json_decref (vm);
  json_decref (guest);

  /* Neither: no pallet.dev/ guest annotation at all. */
  guest = json_object ();
  vm = built_vm (p, h, plan, c, guest);
  EXPECT (annotation (vm, "pallet.dev/boot-verified") == NULL,
          "pallet.dev/boot-verified without a boot check");
  json_decref (vm);
  json_decref (guest);

  /* The boot check the host runs in cluster mode: the settings' defaults,
   * then the Plan's annotations. */
  guest = json_object ();
  vm = built_vm (p, h, plan, c, guest);
  EXPECT_ANN (vm, "pallet.dev/verify-boot", "false");
  EXPECT_ANN (vm, "pallet.dev/verify-boot-timeout", "300");
  EXPECT (annotation (vm, "pallet.dev/boot-pattern") == NULL, "pallet.dev/boot-pattern unasked");
  json_decref (vm);
  json_t *pl = json_deep_copy (plan);
  json_object_set_new (pl, "annotations",
                       json_pack ("{s:s,s:s,s:s}", "pallet.dev/verify-boot", "warn",
                                  "pallet.dev/verify-boot-timeout", "45", "pallet.dev/boot-pattern",
                                  "^READY [0-9]+$"));
  vm = built_vm (p, h, pl, c, guest);
  EXPECT_ANN (vm, "pallet.dev/verify-boot", "warn");
  EXPECT_ANN (vm, "pallet.dev/verify-boot-timeout", "45");
  EXPECT_ANN (vm, "pallet.dev/boot-pattern", "^READY [0-9]+$");
  json_decref (vm);
  json_decref (guest);
  /* A pattern that is not a regex fails convert, naming it. */
  {
    struct pallet_call call = { &host, NULL };
    json_t *in = json_deep_copy (c);
    json_object_set_new (pl, "annotations", json_pack ("{s:s}", "pallet.dev/boot-pattern", "("));
    json_object_set (in, "plan", pl);
    char *text = json_dumps (in, JSON_COMPACT);
    free (last_error);
    last_error = NULL;
    int st = text ? p->convert (h, &call, text) : -1;
    EXPECT (st == PALLET_E_INVALID && last_error && strstr (last_error, "boot-pattern \"(\""),
            "convert with pallet.dev/boot-pattern \"(\": status %d: %s", st,
            last_error ? last_error : "(none)");
    free (text);
    json_decref (in);
  }
  json_decref (pl);

  /* Accept nothing silently: a pallet.dev/ annotation ec2 does not read. */
  convert_refuses (p, h, plan, c, "pallet.dev/verify-boot-timout",
                   "pallet.dev/verify-boot-timeout");
  convert_refuses (p, h, plan, c, "palet.dev/verify-boot", "pallet.dev/verify-boot");
  convert_refuses (p, h, plan, c, "pallet.dev/target-az", NULL);
  json_decref (plan);
  json_decref (c);
  p->close (h);
  free (last_error);
  free (last_state);
  if (failures == 0)
    printf ("PASS\n");
  return failures ? 1 : 0;
}

int
main (int argc, char *argv[])
{
  static const char config[] =
      "{\"provider\":{\"spec\":{\"type\":\"ec2\",\"settings\":"
      "{\"region\":\"us-east-1\",\"force-tcg\":\"true\"}}},"
      /* AWS's documentation example key: open needs one; no AWS call is made. */
      "\"secret\":{\"accessKeyId\":\"AKIDEXAMPLE\",\"secretAccessKey\":\"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\"}}";
  struct pallet_call call = { &host, NULL };
  pallet_provider_entry_fn *entry;
  const struct pallet_provider *p;
  void *dl, *h;
  char *input;
  int st;

  int annotate = argc == 5 && !strcmp (argv[1], "--annotations");

  if (argc != 3 && !annotate) {
    fprintf (stderr,
             "usage: %s PROVIDER.so DISK.img\n"
             "       %s --annotations PROVIDER.so PLAN.json CASE.json\n",
             argv[0], argv[0]);
    return 2;
  }
  argv += annotate;
  if ((dl = dlopen (argv[1], RTLD_NOW | RTLD_LOCAL)) == NULL
      || (entry = (pallet_provider_entry_fn *) dlsym (dl, PALLET_PROVIDER_ENTRY_SYMBOL)) == NULL
      || (p = entry (PALLET_ABI_MAJOR, &host)) == NULL || p->convert == NULL) {
    fprintf (stderr, "FAIL: cannot load %s: %s\n", argv[1], dlerror ());
    return 1;
  }
  if ((h = p->open (&call, config)) == NULL) {
    fprintf (stderr, "FAIL: open: %s\n", last_error ? last_error : "?");
    return 1;
  }
  if (annotate)
    return annotations (p, h, argv[2], argv[3]);
  if ((input = make_input (argv[2])) == NULL) {
    fprintf (stderr, "FAIL: cannot stat %s\n", argv[2]);
    return 1;
  }

  /* Cancelled before the verification: no appliance, CANCELLED. */
  cancel_flag = 1;
  st = p->convert (h, &call, input);
  EXPECT (st == PALLET_E_CANCELLED, "cancelled: status %d, want %d", st, PALLET_E_CANCELLED);
  EXPECT (last_error && strstr (last_error, "before its verification"), "cancelled: message %s",
          last_error ? last_error : "(none)");

  /* The unconverted guest fails verification; the op fails, naming it. */
  cancel_flag = 0;
  free (last_state);
  last_state = NULL;
  st = p->convert (h, &call, input);
  fprintf (stderr, "convert: status %d: %s\n", st, last_error ? last_error : "");
  EXPECT (st == PALLET_E_FAILED, "status %d, want PALLET_E_FAILED", st);
  EXPECT (last_code == PALLET_E_FAILED, "error code %d", last_code);
  EXPECT (last_error && strstr (last_error, "post-conversion verification failed")
              && strstr (last_error, "check initramfs-virtio-net failed")
              && strstr (last_error, argv[2]) && strstr (last_error, "fix: "),
          "message does not name the check, the disk and the fix: %s",
          last_error ? last_error : "(none)");
  {
    json_t *state = last_state ? json_loads (last_state, 0, NULL) : NULL;
    json_t *ver = json_object_get (state, "verification");
    EXPECT (state != NULL, "no state emitted");
    EXPECT (json_is_false (json_object_get (ver, "ok")), "state.verification.ok is not false");
    EXPECT (json_array_size (json_object_get (ver, "checks")) == 6,
            "state.verification has %zu checks", json_array_size (json_object_get (ver, "checks")));
    EXPECT (json_is_string (json_object_get (ver, "kernel")), "no kernel in the report");
    EXPECT (json_is_number (json_object_get (state, "verificationSeconds")),
            "no verificationSeconds");
    EXPECT (strcmp (json_string_value (json_object_get (state, "conversion")),
                    "converted with virt-v2v-in-place")
                == 0,
            "state.conversion changed");
    char *d = ver ? json_dumps (ver, JSON_COMPACT) : NULL;
    printf ("state.verification: %s\n", d ? d : "(none)");
    free (d);
    json_decref (state);
  }
  p->close (h);
  free (input);
  free (last_error);
  free (last_state);
  if (failures == 0)
    printf ("PASS\n");
  return failures ? 1 : 0;
}
