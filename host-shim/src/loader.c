/* Finding and loading provider shared objects. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define PREFIX "pallet-provider-"
#define SUFFIX ".so"

void
Pallet_vtable_copy (struct pallet_provider *dst, const void *src,
                     uint64_t struct_size)
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
  for (char *dir = strtok_r (sp, ":", &save); dir;
       dir = strtok_r (NULL, ":", &save)) {
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
pallet_provider_list (void (*fn) (const char *, const char *, void *),
                      void *opaque)
{
  char *sp = search_path ();
  if (sp == NULL)
    return 0;
  int count = 0;
  char **seen = NULL;
  size_t nseen = 0;
  char *save = NULL;
  for (char *dir = strtok_r (sp, ":", &save); dir;
       dir = strtok_r (NULL, ":", &save)) {
    struct dirent **ents;
    int n = scandir (dir, &ents, NULL, alphasort);
    if (n < 0)
      continue;
    for (int i = 0; i < n; i++) {
      const char *e = ents[i]->d_name;
      size_t len = strlen (e);
      if (strncmp (e, PREFIX, strlen (PREFIX)) == 0
          && len > strlen (PREFIX) + strlen (SUFFIX)
          && strcmp (e + len - strlen (SUFFIX), SUFFIX) == 0) {
        char *name = strndup (e + strlen (PREFIX),
                              len - strlen (PREFIX) - strlen (SUFFIX));
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
  return r == 4 && memcmp (magic, "\x7f" "ELF", 4) == 0;
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

static int
fail (struct pallet_module *m, int status)
{
  if (m->dl)
    dlclose (m->dl);
  free (m->path);
  free (m);
  return status;
}

int
pallet_module_load (const char *name_or_path, unsigned flags,
                    struct pallet_module **out)
{
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

  struct stat st;
  if (stat (path, &st) != 0 || !S_ISREG (st.st_mode)) {
    Pallet_seterr ("provider %s: not a regular file: pass the path of a "
                    "pallet-provider-NAME.so", path);
    return fail (m, PALLET_E_NOT_FOUND);
  }
  if (!looks_like_elf (path)) {
    Pallet_seterr ("provider %s: not a shared object (no ELF header): "
                    "build it with pallet_add_provider() or check the path",
                    path);
    return fail (m, PALLET_E_IO);
  }
  m->dl = dlopen (path, RTLD_NOW | RTLD_LOCAL);
  if (m->dl == NULL) {
    const char *e = dlerror ();
    Pallet_seterr ("provider %s: cannot be loaded as a shared object: %s; "
                    "check it was linked with -shared and that its "
                    "libraries are installed", path, e ? e : "dlopen failed");
    return fail (m, PALLET_E_IO);
  }
  dlerror ();
  void *sym = dlsym (m->dl, PALLET_PROVIDER_ENTRY_SYMBOL);
  if (sym == NULL) {
    Pallet_seterr ("provider %s: no '%s' symbol: a provider must define "
                    "its vtable with PALLET_PROVIDER_DEFINE()",
                    path, PALLET_PROVIDER_ENTRY_SYMBOL);
    return fail (m, PALLET_E_ABI);
  }
  pallet_provider_entry_fn *entry;
  *(void **) &entry = sym;
  const struct pallet_provider *p = entry (PALLET_ABI_MAJOR, &Pallet_host);
  if (p == NULL) {
    Pallet_seterr ("provider %s: %s() returned NULL for host ABI major %d: "
                    "the provider was probably built for another ABI major; "
                    "rebuild it against this pallet's <pallet/provider.h>",
                    path, PALLET_PROVIDER_ENTRY_SYMBOL, PALLET_ABI_MAJOR);
    return fail (m, PALLET_E_ABI);
  }
  /* The three header fields are pinned at 0, 4, 8 in every major. */
  if (p->abi_major != PALLET_ABI_MAJOR) {
    Pallet_seterr ("provider %s: built for ABI major %u but this host "
                    "speaks major %d: rebuild the provider against this "
                    "pallet's <pallet/provider.h>",
                    path, (unsigned) p->abi_major, PALLET_ABI_MAJOR);
    return fail (m, PALLET_E_ABI);
  }
  const uint64_t header = offsetof (struct pallet_provider, name);
  if (p->struct_size < header) {
    Pallet_seterr ("provider %s: struct_size %llu is smaller than the "
                    "%llu bytes of the ABI header fields: define the "
                    "vtable with PALLET_PROVIDER_DEFINE(), which stamps it",
                    path, (unsigned long long) p->struct_size,
                    (unsigned long long) header);
    return fail (m, PALLET_E_ABI);
  }
  m->declared_size = p->struct_size;
  Pallet_vtable_copy (&m->vt, p, p->struct_size);

  if (!valid_name (m->vt.name)) {
    Pallet_seterr ("provider %s: name %s%s%s is not valid: it must match "
                    "[a-z0-9-]+ (at most 64 characters), e.g. \"ec2\"",
                    path, m->vt.name ? "'" : "",
                    m->vt.name ? m->vt.name : "(missing)",
                    m->vt.name ? "'" : "");
    return fail (m, PALLET_E_ABI);
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
        return fail (m, PALLET_E_ABI);
      }
    }
  }
  if (m->vt.thread_model < PALLET_THREAD_MODEL_SERIALIZE_ALL
      || m->vt.thread_model > PALLET_THREAD_MODEL_PARALLEL) {
    Pallet_log (PALLET_LOG_WARNING, "provider %s: unknown thread_model %d; "
                 "using SERIALIZE_ALL", path, m->vt.thread_model);
    m->vt.thread_model = PALLET_THREAD_MODEL_SERIALIZE_ALL;
  }
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

void
pallet_module_dump (const struct pallet_module *m, FILE *fp)
{
  const struct pallet_provider *v = &m->vt;
  static const char *caps[] = {
    "cold_migration", "warm_migration", "zero_copy", "copy",
    "cross_account", "cross_region", "guest_conversion", "inventory_query",
  };
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
}
