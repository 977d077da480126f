/* SPDX-License-Identifier: Apache-2.0 */
/* Deliberately broken (or odd) providers for the loader tests.  One
 * FIXTURE_* macro selects what is wrong; see CMakeLists.txt. */
#include <stddef.h>
#include <stdio.h>

#include <pallet/provider.h>

#define UNUSED __attribute__ ((unused))

UNUSED static void *
fx_open (struct pallet_call *call, const char *config)
{
  (void) call;
  (void) config;
  static int handle;
  return &handle;
}

UNUSED static void
fx_close (void *h)
{
  (void) h;
}

UNUSED static int
fx_op (void *h, struct pallet_call *call, const char *in)
{
  (void) h;
  (void) call;
  (void) in;
  return PALLET_OK;
}

#define OPS_1_0                                                                    \
  .open = fx_open, .close = fx_close, .validate = fx_op, .inventory = fx_op,       \
  .prepare_source = fx_op, .transfer = fx_op, .convert = fx_op, .build_vm = fx_op, \
  .cleanup = fx_op

#if defined(FIXTURE_NO_ENTRY)
/* Exports something, but not the entry point. */
__attribute__ ((visibility ("default"))) int not_the_entry (void);
int
not_the_entry (void)
{
  return 0;
}

#elif defined(FIXTURE_NULL_ENTRY)
__attribute__ ((visibility ("default"))) const struct pallet_provider *
pallet_provider_entry (uint32_t major, const struct pallet_host *host);
const struct pallet_provider *
pallet_provider_entry (uint32_t major, const struct pallet_host *host)
{
  (void) major;
  (void) host;
  return NULL;
}

#else
static const struct pallet_provider *fixture_vtable (void);
__attribute__ ((visibility ("default"))) const struct pallet_provider *
pallet_provider_entry (uint32_t major, const struct pallet_host *host);
const struct pallet_provider *
pallet_provider_entry (uint32_t major, const struct pallet_host *host)
{
  (void) major;
  (void) host;
  return fixture_vtable ();
}

#if defined(FIXTURE_MAJOR2)
static const struct pallet_provider vt = {
  .abi_major = 2, .abi_minor = 0, .struct_size = sizeof vt, .name = "major2", OPS_1_0
};
#elif defined(FIXTURE_SMALL_SIZE)
static const struct pallet_provider vt = {
  .abi_major = 1, .abi_minor = 0, .struct_size = 8, .name = "small", OPS_1_0
};
#elif defined(FIXTURE_NO_TRANSFER)
static const struct pallet_provider vt = { .abi_major = 1,
                                           .abi_minor = 0,
                                           .struct_size = sizeof vt,
                                           .name = "notransfer",
                                           .open = fx_open,
                                           .close = fx_close,
                                           .validate = fx_op,
                                           .inventory = fx_op,
                                           .cleanup = fx_op };
#elif defined(FIXTURE_BAD_NAME)
static const struct pallet_provider vt = {
  .abi_major = 1, .abi_minor = 0, .struct_size = sizeof vt, .name = "Bad_Name", OPS_1_0
};
#elif defined(FIXTURE_OLD_MINOR)
/* Built against an "ABI 1.0" whose vtable ended before .convert: the
 * later slots are set here but lie past struct_size, so the host must
 * read them as NULL. */
static const struct pallet_provider vt = { .abi_major = 1,
                                           .abi_minor = 0,
                                           .struct_size =
                                               offsetof (struct pallet_provider, convert),
                                           .name = "oldminor",
                                           OPS_1_0 };
#elif defined(FIXTURE_HOOKS)
/* ABI 1.1: load/unload hooks (logged to $PALLET_FIXTURE_HOOK_LOG), a
 * settings description, and ops whose two error channels agree
 * (transfer, with pallet_fail) or disagree (validate). */
#include <stdlib.h>
static void
hook_log (const char *what)
{
  const char *path = getenv ("PALLET_FIXTURE_HOOK_LOG");
  FILE *fp = path ? fopen (path, "a") : NULL;
  if (fp) {
    fprintf (fp, "%s\n", what);
    fclose (fp);
  }
}
static int
fx_load (void)
{
  hook_log ("load");
  return getenv ("PALLET_FIXTURE_LOAD_FAILS") ? PALLET_E_NOMEM : PALLET_OK;
}
static void
fx_unload (void)
{
  hook_log ("unload");
}
static void *
fx_open_nothing (struct pallet_call *call, const char *config)
{
  (void) call;
  (void) config;
  return PALLET_HANDLE_NOT_NEEDED;
}
static int
fx_mismatch (void *h, struct pallet_call *call, const char *in)
{
  (void) in;
  if (h != PALLET_HANDLE_NOT_NEEDED)
    return pallet_fail (call, PALLET_E_ABI, "handle changed");
  pallet_error (call, PALLET_E_INVALID, "vm.id is missing");
  return PALLET_E_FAILED;
}
static int
fx_agree (void *h, struct pallet_call *call, const char *in)
{
  (void) h;
  (void) in;
  return pallet_fail (call, PALLET_E_NOT_FOUND, "instance %s: not found", "i-1");
}
static const struct pallet_setting fx_settings[] = {
  { "target-az", PALLET_SETTING_STRING, NULL, "the zone" },
  { "target-region", PALLET_SETTING_STRING, NULL, "the region" },
  { "max-attempts", PALLET_SETTING_INT, "5", "attempts per request" },
  { "dry-run", PALLET_SETTING_BOOL, "false", "validate only" },
  { "vms", PALLET_SETTING_JSON, NULL, "the VMs" },
  { NULL, 0, NULL, NULL }
};
static const struct pallet_provider vt = { .abi_major = 1,
                                           .abi_minor = 1,
                                           .struct_size = sizeof vt,
                                           .name = "hooks",
                                           .open = fx_open_nothing,
                                           .close = fx_close,
                                           .validate = fx_mismatch,
                                           .inventory = fx_op,
                                           .transfer = fx_agree,
                                           .cleanup = fx_op,
                                           .load = fx_load,
                                           .unload = fx_unload,
                                           .settings = fx_settings };
#elif defined(FIXTURE_BAD_SETTINGS)
static const struct pallet_setting fx_settings[] = {
  { "region", PALLET_SETTING_STRING, NULL, NULL }, { NULL, 0, NULL, NULL }
};
static const struct pallet_provider vt = { .abi_major = 1,
                                           .abi_minor = 1,
                                           .struct_size = sizeof vt,
                                           .name = "badsettings",
                                           OPS_1_0,
                                           .settings = fx_settings };
#elif defined(FIXTURE_NEW_MINOR)
/* Built against a newer minor: a larger vtable with slots the host does
 * not know; they must be ignored. */
static const struct {
  struct pallet_provider p;
  void *future[4];
} big = {
  .p = { .abi_major = 1, .abi_minor = 99, .struct_size = sizeof big, .name = "newminor", OPS_1_0 },
  .future = { (void *) 1, (void *) 2, (void *) 3, (void *) 4 },
};
#define vt big.p
#else
#error "define one FIXTURE_*"
#endif

static const struct pallet_provider *
fixture_vtable (void)
{
  return &vt;
}
#endif
