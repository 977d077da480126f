/* SPDX-License-Identifier: Apache-2.0 */
/* Finding and loading provider shared objects. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h"

#define PREFIX "pallet-provider-"
#define SUFFIX ".so"

void
Pallet_vtable_copy (struct pallet_provider *dst, const void *src, uint64_t struct_size)
{
  size_t n = struct_size < sizeof *dst ? (size_t) struct_size : sizeof *dst;
  memset (dst, 0, sizeof *dst);
  memcpy (dst, src, n);
}

static int
valid_name (const char *s)
{
  if (s == NULL || *s == '\0' || strlen (s) > 64)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
      return 0;
  return 1;
}

/* The search path: $PALLET_PROVIDER_PATH entries, then the install dir.
 * Returns a malloc'd colon list. */
static char *
search_path (void)
{
  const char *env = getenv ("PALLET_PROVIDER_PATH");
  char *p;
  if (env && *env) {
    if (asprintf (&p, "%s:%s", env, PALLET_PROVIDER_DIR) < 0)
      return NULL;
  }
  else
    p = strdup (PALLET_PROVIDER_DIR);
  return p;
}

char *
pallet_provider_find (const char *name_or_path)
{
  Pallet_clearerr ();
  if (name_or_path == NULL || *name_or_path == '\0') {
    Pallet_seterr ("no provider given: pass --provider NAME or PATH");
    return NULL;
  }
  if (strchr (name_or_path, '/')) {
    if (access (name_or_path, F_OK) != 0) {
      Pallet_seterr ("provider %s: file not found: check the path, or pass "
                     "a provider NAME to search $PALLET_PROVIDER_PATH",
                     name_or_path);
      return NULL;
    }
    return strdup (name_or_path);
  }
  if (!valid_name (name_or_path)) {
    Pallet_seterr ("provider name '%s' is not valid: a NAME matches "
                   "[a-z0-9-]+; give a PATH with a '/' to load a file",
                   name_or_path);
    return NULL;
  }
  char *sp = search_path ();
  if (sp == NULL) {
    Pallet_seterr ("out of memory");
    return NULL;
  }
  char *save = NULL;
  for (char *dir = strtok_r (sp, ":", &save); dir; dir = strtok_r (NULL, ":", &save)) {
    char *f;
    if (asprintf (&f, "%s/" PREFIX "%s" SUFFIX, dir, name_or_path) < 0)
      break;
    if (access (f, F_OK) == 0) {
      free (sp);
      return f;
    }
    free (f);
  }
  free (sp);
  sp = search_path ();
  Pallet_seterr ("provider '%s' not found: no " PREFIX "%s" SUFFIX
                 " in %s; set PALLET_PROVIDER_PATH to the directory that "
                 "holds it, or pass a PATH",
                 name_or_path, name_or_path, sp ? sp : "(search path)");
  free (sp);
  return NULL;
}

int
pallet_provider_list (void (*fn) (const char *, const char *, void *), void *opaque)
{
  char *sp = search_path ();
  if (sp == NULL)
    return 0;
  int count = 0;
  char **seen = NULL;
  size_t nseen = 0;
  char *save = NULL;
  for (char *dir = strtok_r (sp, ":", &save); dir; dir = strtok_r (NULL, ":", &save)) {
    struct dirent **ents;
    int n = scandir (dir, &ents, NULL, alphasort);
    if (n < 0)
      continue;
    for (int i = 0; i < n; i++) {
      const char *e = ents[i]->d_name;
      size_t len = strlen (e);
      if (strncmp (e, PREFIX, strlen (PREFIX)) == 0 && len > strlen (PREFIX) + strlen (SUFFIX)
          && strcmp (e + len - strlen (SUFFIX), SUFFIX) == 0) {
        char *name = strndup (e + strlen (PREFIX), len - strlen (PREFIX) - strlen (SUFFIX));
        int dup = 0;
        for (size_t j = 0; name && j < nseen; j++)
          if (strcmp (seen[j], name) == 0)
            dup = 1;
        char *path = NULL;
        if (name && !dup && asprintf (&path, "%s/%s", dir, e) >= 0) {
          fn (name, path, opaque);
          count++;
          char **ns = realloc (seen, (nseen + 1) * sizeof *seen);
          if (ns) {
            seen = ns;
            seen[nseen++] = name;
            name = NULL;
          }
        }
        free (path);
        free (name);
      }
      free (ents[i]);
    }
    free (ents);
  }
  for (size_t j = 0; j < nseen; j++)
    free (seen[j]);
  free (seen);
  free (sp);
  return count;
}

/* An ELF shared object starts with \x7fELF; dlerror() alone is cryptic. */
static int
looks_like_elf (const char *path)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  char magic[4];
  ssize_t r = read (fd, magic, sizeof magic);
  close (fd);
  return r == 4
         && memcmp (magic,
                    "\x7f"
                    "ELF",
                    4)
                == 0;
}

static const struct {
  size_t off;
  const char *name;
} required_ops[] = {
  { offsetof (struct pallet_provider, open), "open" },
  { offsetof (struct pallet_provider, close), "close" },
  { offsetof (struct pallet_provider, validate), "validate" },
  { offsetof (struct pallet_provider, inventory), "inventory" },
  { offsetof (struct pallet_provider, transfer), "transfer" },
  { offsetof (struct pallet_provider, cleanup), "cleanup" },
};

static const char *
setting_type_name (int type)
{
  switch (type) {
  case PALLET_SETTING_STRING: return "string";
  case PALLET_SETTING_BOOL: return "bool";
  case PALLET_SETTING_INT: return "int";
  case PALLET_SETTING_JSON: return "json";
  }
  return NULL;
}

/* A described setting has a name, a known type and help; at most 1024
 * entries, so a table without its { NULL } end is caught, not overrun
 * far. */
static int
check_settings_table (const struct pallet_module *m)
{
  const struct pallet_setting *t = m->vt.settings;
  for (size_t i = 0; t; i++) {
    if (i == 1024) {
      Pallet_seterr ("provider %s: .settings has no end: finish the array "
                     "with { NULL }",
                     m->path);
      return -1;
    }
    if (t[i].name == NULL)
      return 0;
    if (*t[i].name == '\0' || setting_type_name (t[i].type) == NULL || t[i].help == NULL) {
      Pallet_seterr ("provider %s: .settings[%zu] ('%s') needs a name, a "
                     "PALLET_SETTING_* type and a help line",
                     m->path, i, t[i].name);
      return -1;
    }
  }
  return 0;
}

static int
fail (struct pallet_module *m, int status)
{
  if (m->dl)
    dlclose (m->dl);
  free (m->path);
  free (m);
  return status;
}

/* Opens path as a shared object into m->dl. */
static int
open_shared_object (struct pallet_module *m)
{
  const char *path = m->path;
  struct stat st;
  if (stat (path, &st) != 0 || !S_ISREG (st.st_mode)) {
    Pallet_seterr ("provider %s: not a regular file: pass the path of a "
                   "pallet-provider-NAME.so",
                   path);
    return PALLET_E_NOT_FOUND;
  }
  if (!looks_like_elf (path)) {
    Pallet_seterr ("provider %s: not a shared object (no ELF header): "
                   "build it with pallet_add_provider() or check the path",
                   path);
    return PALLET_E_IO;
  }
  m->dl = dlopen (path, RTLD_NOW | RTLD_LOCAL);
  if (m->dl == NULL) {
    const char *e = dlerror ();
    Pallet_seterr ("provider %s: cannot be loaded as a shared object: %s; "
                   "check it was linked with -shared and that its "
                   "libraries are installed",
                   path, e ? e : "dlopen failed");
    return PALLET_E_IO;
  }
  return PALLET_OK;
}

/* Calls the entry symbol and copies the vtable it returns into m->vt. */
static int
copy_vtable (struct pallet_module *m, unsigned flags)
{
  const char *path = m->path;
  dlerror ();
  void *sym = dlsym (m->dl, PALLET_PROVIDER_ENTRY_SYMBOL);
  if (sym == NULL) {
    Pallet_seterr ("provider %s: no '%s' symbol: a provider must define "
                   "its vtable with PALLET_PROVIDER_DEFINE()",
                   path, PALLET_PROVIDER_ENTRY_SYMBOL);
    return PALLET_E_ABI;
  }
  pallet_provider_entry_fn *entry;
  *(void **) &entry = sym;
  const struct pallet_provider *p = entry (PALLET_ABI_MAJOR, &Pallet_host);
  if (p == NULL) {
    Pallet_seterr ("provider %s: %s() returned NULL for host ABI major %d: "
                   "the provider was probably built for another ABI major; "
                   "rebuild it against this pallet's <pallet/provider.h>",
                   path, PALLET_PROVIDER_ENTRY_SYMBOL, PALLET_ABI_MAJOR);
    return PALLET_E_ABI;
  }
  /* The three header fields are pinned at 0, 4, 8 in every major. */
  if (p->abi_major != PALLET_ABI_MAJOR) {
    Pallet_seterr ("provider %s: built for ABI major %u but this host "
                   "speaks major %d: rebuild the provider against this "
                   "pallet's <pallet/provider.h>",
                   path, (unsigned) p->abi_major, PALLET_ABI_MAJOR);
    return PALLET_E_ABI;
  }
  const uint64_t header = offsetof (struct pallet_provider, name);
  if (p->struct_size < header) {
    Pallet_seterr ("provider %s: struct_size %llu is smaller than the "
                   "%llu bytes of the ABI header fields: define the "
                   "vtable with PALLET_PROVIDER_DEFINE(), which stamps it",
                   path, (unsigned long long) p->struct_size, (unsigned long long) header);
    return PALLET_E_ABI;
  }
  m->declared_size = p->struct_size;
  Pallet_vtable_copy (&m->vt, p, p->struct_size);
  /* Every 1.x vtable holds at least the 1.0 slots; a smaller one was not
   * made by PALLET_PROVIDER_DEFINE.  The lenient load (for --dump) still
   * shows what it has. */
  if (!(flags & PALLET_LOAD_LENIENT) && p->struct_size < PALLET_PROVIDER_SIZE_1_0) {
    Pallet_seterr ("provider %s: struct_size %llu is smaller than the "
                   "%llu bytes of the ABI 1.0 vtable: define the vtable "
                   "with PALLET_PROVIDER_DEFINE(), which stamps it, and "
                   "rebuild against this pallet's <pallet/provider.h>",
                   path, (unsigned long long) p->struct_size,
                   (unsigned long long) PALLET_PROVIDER_SIZE_1_0);
    return PALLET_E_ABI;
  }
  return PALLET_OK;
}

/* The copied vtable's name, required ops, thread model and settings. */
static int
check_vtable (struct pallet_module *m, unsigned flags)
{
  const char *path = m->path;
  if (!valid_name (m->vt.name)) {
    Pallet_seterr ("provider %s: name %s%s%s is not valid: it must match "
                   "[a-z0-9-]+ (at most 64 characters), e.g. \"ec2\"",
                   path, m->vt.name ? "'" : "", m->vt.name ? m->vt.name : "(missing)",
                   m->vt.name ? "'" : "");
    return PALLET_E_ABI;
  }
  if (!(flags & PALLET_LOAD_LENIENT)) {
    for (size_t i = 0; i < sizeof required_ops / sizeof required_ops[0]; i++) {
      void *fp;
      memcpy (&fp, (const char *) &m->vt + required_ops[i].off, sizeof fp);
      if (fp == NULL) {
        Pallet_seterr ("provider %s must have a .%s callback: set .%s in "
                       "PALLET_PROVIDER_DEFINE() (required ops: open, "
                       "close, validate, inventory, transfer, cleanup)",
                       path, required_ops[i].name, required_ops[i].name);
        return PALLET_E_ABI;
      }
    }
  }
  if (m->vt.thread_model < PALLET_THREAD_MODEL_SERIALIZE_ALL
      || m->vt.thread_model > PALLET_THREAD_MODEL_PARALLEL) {
    Pallet_log (PALLET_LOG_WARNING,
                "provider %s: unknown thread_model %d; "
                "using SERIALIZE_ALL",
                path, m->vt.thread_model);
    m->vt.thread_model = PALLET_THREAD_MODEL_SERIALIZE_ALL;
  }
  if (!(flags & PALLET_LOAD_LENIENT) && check_settings_table (m) != 0)
    return PALLET_E_ABI;
  return PALLET_OK;
}

/* The provider's own process-wide set-up, if it has one. */
static int
run_load_hook (struct pallet_module *m)
{
  if (m->vt.load) {
    int r = m->vt.load ();
    if (r != PALLET_OK) {
      Pallet_seterr ("provider %s: load() returned %s (%s): the provider "
                     "could not set up its process-wide state; see its "
                     "log, or check the libraries it needs",
                     m->path, pallet_status_name (r), pallet_strerror (r));
      return r > PALLET_PENDING && r < PALLET_E_LAST ? r : PALLET_E_ABI;
    }
  }
  return PALLET_OK;
}

int
pallet_module_load (const char *name_or_path, unsigned flags, struct pallet_module **out)
{
  Pallet_clearerr ();
  char *path = pallet_provider_find (name_or_path);
  if (path == NULL)
    return PALLET_E_NOT_FOUND;
  struct pallet_module *m = calloc (1, sizeof *m);
  if (m == NULL) {
    free (path);
    Pallet_seterr ("out of memory");
    return PALLET_E_NOMEM;
  }
  m->path = path;
  int r = open_shared_object (m);
  if (r == PALLET_OK)
    r = copy_vtable (m, flags);
  if (r == PALLET_OK)
    r = check_vtable (m, flags);
  if (r == PALLET_OK)
    r = run_load_hook (m);
  if (r != PALLET_OK)
    return fail (m, r);
  pthread_mutex_init (&m->serialize, NULL);
  *out = m;
  return PALLET_OK;
}

void
pallet_module_free (struct pallet_module *m)
{
  if (m == NULL)
    return;
  pthread_mutex_destroy (&m->serialize);
  if (m->vt.unload)
    m->vt.unload ();
  /* Under valgrind/ASan keep symbols for leak reports. */
  if (getenv ("PALLET_NO_DLCLOSE") == NULL)
    dlclose (m->dl);
  free (m->path);
  free (m);
}

const struct pallet_provider *
pallet_module_vtable (const struct pallet_module *m)
{
  return &m->vt;
}

const char *
pallet_module_path (const struct pallet_module *m)
{
  return m->path;
}

uint64_t
pallet_module_struct_size (const struct pallet_module *m)
{
  return m->declared_size;
}

static const char *
thread_model_name (int tm)
{
  switch (tm) {
  case PALLET_THREAD_MODEL_SERIALIZE_ALL: return "serialize_all";
  case PALLET_THREAD_MODEL_SERIALIZE_PER_HANDLE: return "serialize_per_handle";
  case PALLET_THREAD_MODEL_PARALLEL: return "parallel";
  }
  return "unknown";
}

/* Edit distance (Levenshtein), for "did you mean"; names are short. */
static size_t
edit_distance (const char *a, const char *b)
{
  size_t la = strlen (a), lb = strlen (b);
  if (la > 64 || lb > 64)
    return (size_t) -1;
  size_t row[65];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

static const struct pallet_setting *
setting_find (const struct pallet_setting *t, const char *name, const char **nearest)
{
  size_t best = (size_t) -1;
  *nearest = NULL;
  for (; t->name; t++) {
    if (strcmp (t->name, name) == 0)
      return t;
    size_t d = edit_distance (name, t->name);
    if (d < best) {
      best = d;
      *nearest = t->name;
    }
  }
  /* A suggestion only when it is plausibly the same word. */
  if (best > 3 || best * 2 > strlen (name))
    *nearest = NULL;
  return NULL;
}

static int
setting_value_ok (int type, const json_t *v)
{
  const char *s = json_string_value (v);
  switch (type) {
  case PALLET_SETTING_STRING: return s != NULL;
  case PALLET_SETTING_BOOL:
    return json_is_boolean (v) || (s && (strcmp (s, "true") == 0 || strcmp (s, "false") == 0));
  case PALLET_SETTING_INT:
    if (json_is_integer (v))
      return 1;
    if (s == NULL || *s == '\0')
      return 0;
    for (s += *s == '-'; *s; s++)
      if (*s < '0' || *s > '9')
        return 0;
    return 1;
  }
  return 1;
}

static int
settings_object_check (const struct pallet_module *m, const json_t *obj, const char *where)
{
  const char *key;
  json_t *v;
  json_object_foreach ((json_t *) obj, key, v) {
    const char *near;
    const struct pallet_setting *st = setting_find (m->vt.settings, key, &near);
    if (st == NULL) {
      Pallet_seterr ("unknown setting '%s' for provider %s%s%s%s (in %s; "
                     "`pallet providers --dump %s` lists its settings)",
                     key, m->vt.name, near ? "; did you mean '" : "", near ? near : "",
                     near ? "'?" : "", where, m->vt.name);
      return PALLET_E_INVALID;
    }
    if (!setting_value_ok (st->type, v)) {
      Pallet_seterr ("setting '%s' for provider %s (in %s) must be a %s: "
                     "%s",
                     key, m->vt.name, where, setting_type_name (st->type), st->help);
      return PALLET_E_INVALID;
    }
  }
  return PALLET_OK;
}

int
Pallet_settings_check (const struct pallet_module *m, const char *config_json)
{
  if (m == NULL || m->vt.settings == NULL || config_json == NULL)
    return PALLET_OK;
  /* Not JSON, or not an object: open() reports that in its own words. */
  json_t *cfg = json_loads (config_json, 0, NULL);
  if (!json_is_object (cfg)) {
    json_decref (cfg);
    return PALLET_OK;
  }
  int r = PALLET_OK;
  const json_t *set = json_object_get (cfg, "settings");
  const json_t *spec = json_object_get (json_object_get (cfg, "provider"), "spec");
  /* The Provider's own first: from a plan, config.settings is a copy of
   * it, and the user wrote the Provider. */
  if (json_is_object (json_object_get (spec, "settings")))
    r = settings_object_check (m, json_object_get (spec, "settings"),
                               "the Provider's spec.settings");
  if (r == PALLET_OK && json_is_object (set))
    r = settings_object_check (m, set, "config.settings");
  json_decref (cfg);
  return r;
}

static void
dump_settings (const struct pallet_provider *v, FILE *fp)
{
  fprintf (fp, "settings=%s\n", v->settings ? "described" : "undescribed");
  const struct pallet_setting *t = v->settings;
  for (size_t i = 0; t && t->name && i < 1024; t++, i++) {
    const char *type = setting_type_name (t->type);
    fprintf (fp, "setting.%s.type=%s\n", t->name, type ? type : "unknown");
    fprintf (fp, "setting.%s.default=%s\n", t->name, t->default_value ? t->default_value : "");
    fprintf (fp, "setting.%s.help=%s\n", t->name, t->help ? t->help : "");
  }
}

char *
pallet_module_dump_text (const struct pallet_module *m)
{
  Pallet_clearerr ();
  char *buf = NULL;
  size_t len = 0;
  FILE *fp = open_memstream (&buf, &len);
  if (fp == NULL) {
    Pallet_seterr ("pallet_module_dump_text: out of memory");
    return NULL;
  }
  pallet_module_dump (m, fp);
  if (fclose (fp) != 0) {
    free (buf);
    Pallet_seterr ("pallet_module_dump_text: out of memory");
    return NULL;
  }
  return buf;
}

void
pallet_module_dump (const struct pallet_module *m, FILE *fp)
{
  const struct pallet_provider *v = &m->vt;
#define CAP_NAME(NAME, name) name,
  static const char *caps[] = { PALLET_CAP_LIST (CAP_NAME) };
#undef CAP_NAME
  fprintf (fp, "path=%s\n", m->path);
  fprintf (fp, "abi_major=%u\n", (unsigned) v->abi_major);
  fprintf (fp, "abi_minor=%u\n", (unsigned) v->abi_minor);
  fprintf (fp, "struct_size=%llu\n", (unsigned long long) m->declared_size);
  fprintf (fp, "host_abi_major=%d\n", PALLET_ABI_MAJOR);
  fprintf (fp, "host_abi_minor=%d\n", PALLET_ABI_MINOR);
  fprintf (fp, "name=%s\n", v->name ? v->name : "");
  fprintf (fp, "version=%s\n", v->version ? v->version : "");
  fprintf (fp, "description=%s\n", v->description ? v->description : "");
  fprintf (fp, "thread_model=%s\n", thread_model_name (v->thread_model));
  fprintf (fp, "cancel_bound_ms=%u\n", (unsigned) v->cancel_bound_ms);
  fprintf (fp, "capabilities=");
  int first = 1;
  for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
    if (v->capabilities & (UINT64_C (1) << i)) {
      fprintf (fp, "%s%s", first ? "" : ",", caps[i]);
      first = 0;
    }
  fprintf (fp, "\n");
  fprintf (fp, "has_open=%d\n", v->open != NULL);
  fprintf (fp, "has_close=%d\n", v->close != NULL);
  fprintf (fp, "has_validate=%d\n", v->validate != NULL);
  fprintf (fp, "has_inventory=%d\n", v->inventory != NULL);
  fprintf (fp, "has_prepare_source=%d\n", v->prepare_source != NULL);
  fprintf (fp, "has_transfer=%d\n", v->transfer != NULL);
  fprintf (fp, "has_convert=%d\n", v->convert != NULL);
  fprintf (fp, "has_build_vm=%d\n", v->build_vm != NULL);
  fprintf (fp, "has_cleanup=%d\n", v->cleanup != NULL);
  fprintf (fp, "has_load=%d\n", v->load != NULL);
  fprintf (fp, "has_unload=%d\n", v->unload != NULL);
  dump_settings (v, fp);
}
