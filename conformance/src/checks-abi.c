/* SPDX-License-Identifier: Apache-2.0 */
/* ABI checks: the export list, the entry point's major check, the vtable. */
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"

/* The size of the ABI 1.0 vtable: everything up to and including cleanup. */
#define PC_VTABLE_1_0_SIZE \
  (offsetof (struct pallet_provider, cleanup) + sizeof (pallet_cleanup_fn *))

void
pc_check_abi_exports (void)
{
  static const char rule[] =
      "a provider exports exactly one dynamic symbol, "
      "pallet_provider_entry (build with -fvisibility=hidden and the version "
      "script pallet-provider.map)";
  char *why = NULL, *list;
  json_t *names = pc_elf_exports (pc.path, &why);

  if (names == NULL) {
    PC_FAIL ("abi-exports", rule, "cannot read the export list: %s", why ? why : "?");
    free (why);
    return;
  }
  list = json_dumps (names, JSON_COMPACT);
  if (json_array_size (names) != 1
      || strcmp (json_string_value (json_array_get (names, 0)), PALLET_PROVIDER_ENTRY_SYMBOL) != 0)
    PC_FAIL ("abi-exports", rule, "%s exports %zu symbols: %s", pc.path, json_array_size (names),
             list ? list : "?");
  free (list);
  json_decref (names);
}

static json_t *
major_child (void *arg)
{
  pallet_provider_entry_fn *entry;
  const struct pallet_provider *up, *down;
  (void) arg;
  *(void **) (&entry) = dlsym (pc.dl, PALLET_PROVIDER_ENTRY_SYMBOL);
  up = entry (PALLET_ABI_MAJOR + 1, &pc_host);
  down = entry (PALLET_ABI_MAJOR - 1, &pc_host);
  return json_pack ("{sb sb}", "up", up != NULL, "down", down != NULL);
}

void
pc_check_abi_major (void)
{
  static const char rule[] = "pallet_provider_entry returns NULL for a host "
                             "ABI major other than its own (PALLET_PROVIDER_DEFINE does this)";
  json_t *r = pc_in_child (major_child, NULL, 30);
  if (json_object_get (r, "up") == NULL) {
    char *d = pc_describe (r);
    PC_FAIL ("abi-major", rule, "pallet_provider_entry with another major %s", d ? d : "?");
    free (d);
  }
  else {
    if (json_is_true (json_object_get (r, "up")))
      PC_FAIL ("abi-major", rule,
               "pallet_provider_entry (%u, host) returned "
               "a vtable; it must return NULL",
               PALLET_ABI_MAJOR + 1);
    if (json_is_true (json_object_get (r, "down")))
      PC_FAIL ("abi-major", rule,
               "pallet_provider_entry (%u, host) returned "
               "a vtable; it must return NULL",
               PALLET_ABI_MAJOR - 1);
  }
  json_decref (r);
}

static bool
valid_name (const char *s)
{
  if (*s == '\0')
    return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
      return false;
  return true;
}

/* Strings are read in a child: a wild pointer must not end the run. */
static json_t *
vtable_child (void *arg)
{
  const struct pallet_provider *p = pc.raw;
  json_t *r = json_object ();
  (void) arg;
  json_object_set_new (r, "abi_major", json_integer (p->abi_major));
  json_object_set_new (r, "struct_size", json_integer ((json_int_t) p->struct_size));
  json_object_set_new (r, "name", pc.vt.name ? pc_text (pc.vt.name) : json_null ());
  json_object_set_new (r, "version", pc.vt.version ? pc_text (pc.vt.version) : json_null ());
  return r;
}

void
pc_check_abi_vtable (void)
{
  json_t *r = pc_in_child (vtable_child, NULL, 30);
  const char *name, *version;
  struct {
    const char *op;
    bool present;
  } req[] = {
    { "open", pc.vt.open != NULL },         { "close", pc.vt.close != NULL },
    { "validate", pc.vt.validate != NULL }, { "inventory", pc.vt.inventory != NULL },
    { "transfer", pc.vt.transfer != NULL }, { "cleanup", pc.vt.cleanup != NULL },
  };

  if (json_object_get (r, "abi_major") == NULL) {
    char *d = pc_describe (r);
    PC_FAIL ("abi-vtable",
             "the vtable's name and version are readable "
             "strings",
             "reading them %s", d ? d : "?");
    free (d);
    json_decref (r);
    return;
  }
  if (json_integer_value (json_object_get (r, "abi_major")) != PALLET_ABI_MAJOR)
    PC_FAIL ("abi-vtable",
             "the vtable's abi_major is the header's "
             "PALLET_ABI_MAJOR (use PALLET_PROVIDER_DEFINE)",
             "abi_major is %lld, expected %u",
             (long long) json_integer_value (json_object_get (r, "abi_major")), PALLET_ABI_MAJOR);
  if (json_integer_value (json_object_get (r, "struct_size")) < (json_int_t) PC_VTABLE_1_0_SIZE)
    PC_FAIL ("abi-vtable",
             "struct_size is at least the ABI 1.0 vtable size "
             "(use PALLET_PROVIDER_DEFINE)",
             "struct_size is %lld, less than %zu",
             (long long) json_integer_value (json_object_get (r, "struct_size")),
             (size_t) PC_VTABLE_1_0_SIZE);
  name = json_string_value (json_object_get (r, "name"));
  if (name == NULL || !valid_name (name) || strlen (name) > 64)
    PC_FAIL ("abi-vtable",
             "the provider's name matches [a-z0-9-]+ (at most "
             "64 characters)",
             "name is %s%s%s", name ? "\"" : "", name ? name : "NULL", name ? "\"" : "");
  version = json_string_value (json_object_get (r, "version"));
  if (version == NULL || *version == '\0')
    PC_FAIL ("abi-vtable", "the provider's version is a non-empty string", "version is %s",
             version ? "\"\"" : "NULL");
  if (pc.vt.thread_model < PALLET_THREAD_MODEL_SERIALIZE_ALL
      || pc.vt.thread_model > PALLET_THREAD_MODEL_PARALLEL)
    PC_FAIL ("abi-vtable",
             "thread_model is one of enum pallet_thread_model "
             "(0, 1, 2)",
             "thread_model is %d", pc.vt.thread_model);
  for (size_t i = 0; i < sizeof req / sizeof req[0]; i++)
    if (!req[i].present)
      PC_FAIL ("abi-vtable",
               "the required ops are present: open, close, "
               "validate, inventory, transfer, cleanup",
               "provider must have a .%s callback; it is NULL", req[i].op);
  json_decref (r);
}
