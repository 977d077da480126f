/* SPDX-License-Identifier: Apache-2.0 */
/* The state directory: durable JSON files, the lock and the cancel marker. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h"
#include "state.h"

char *
pallet_default_state_dir (const char *plan_name)
{
  char *p;
  if (asprintf (&p, "./.pallet-state/%s", plan_name ? plan_name : "plan") < 0)
    return NULL;
  return p;
}

/* mkdir -p with mode 0700: the dir holds state that may name resources. */
int
Pallet_mkdirs (const char *dir)
{
  char *d = strdup (dir);
  if (d == NULL)
    return -1;
  for (char *p = d + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      if (mkdir (d, 0700) != 0 && errno != EEXIST) {
        free (d);
        return -1;
      }
      *p = '/';
    }
  int r = mkdir (d, 0700);
  free (d);
  return r != 0 && errno != EEXIST ? -1 : 0;
}

static int
fsync_dir (const char *path)
{
  char *d = strdup (path);
  if (d == NULL)
    return -1;
  char *slash = strrchr (d, '/');
  if (slash == d)
    slash[1] = '\0';
  else if (slash)
    *slash = '\0';
  else
    strcpy (d, ".");
  int fd = open (d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free (d);
  if (fd < 0)
    return -1;
  int r = fsync (fd);
  close (fd);
  return r;
}

int
Pallet_write_json_file (const char *path, const json_t *j)
{
  char *text = json_dumps (j, JSON_INDENT (2) | JSON_SORT_KEYS);
  if (text == NULL) {
    Pallet_seterr ("state file %s: cannot serialize (out of memory)", path);
    return -1;
  }
  char *tmp;
  if (asprintf (&tmp, "%s.tmp", path) < 0) {
    free (text);
    return -1;
  }
  int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int ok = fd >= 0;
  size_t len = strlen (text), off = 0;
  while (ok && off < len) {
    ssize_t w = write (fd, text + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      ok = 0;
    else
      off += (size_t) w;
  }
  if (ok && write (fd, "\n", 1) != 1)
    ok = 0;
  /* An older file may have been created with another mode. */
  if (ok && fchmod (fd, 0600) != 0)
    ok = 0;
  if (ok && fsync (fd) != 0)
    ok = 0;
  if (fd >= 0 && close (fd) != 0)
    ok = 0;
  if (ok && rename (tmp, path) != 0)
    ok = 0;
  if (ok && fsync_dir (path) != 0)
    ok = 0;
  if (!ok) {
    Pallet_seterr ("state file %s: cannot write: %s; check the state dir "
                   "is writable and the disk is not full",
                   path, strerror (errno));
    unlink (tmp);
  }
  free (tmp);
  free (text);
  return ok ? 0 : -1;
}

json_t *
Pallet_read_json_file (const char *path)
{
  json_error_t err;
  json_t *j = json_load_file (path, 0, &err);
  if (j == NULL)
    Pallet_seterr ("%s: not readable JSON (line %d: %s)", path, err.line, err.text);
  return j;
}

char *
Pallet_now_iso (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r (&ts.tv_sec, &tm);
  char buf[64];
  snprintf (buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
  return strdup (buf);
}

char *
Pallet_uuid4 (void)
{
  unsigned char b[16];
  int fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read (fd, b, sizeof b) != (ssize_t) sizeof b) {
    if (fd >= 0)
      close (fd);
    return NULL;
  }
  close (fd);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  char *s;
  if (asprintf (&s,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                "%02x%02x%02x%02x%02x%02x",
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                b[13], b[14], b[15])
      < 0)
    return NULL;
  return s;
}

/* vm-<safe id>-<fnv32 of id>.json: ids may hold any character. */
char *
Pallet_vm_state_path (const char *dir, const char *id)
{
  uint32_t h = 2166136261u;
  char safe[65];
  size_t n = 0;
  for (const char *p = id; *p; p++) {
    h = (h ^ (unsigned char) *p) * 16777619u;
    if (n < sizeof safe - 1) {
      char c = *p;
      int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
               || c == '-' || c == '_' || c == '.';
      safe[n++] = ok ? c : '_';
    }
  }
  safe[n] = '\0';
  char *path;
  if (asprintf (&path, "%s/vm-%s-%08x.json", dir, safe, h) < 0)
    return NULL;
  return path;
}

int
Pallet_lock_dir (const char *dir)
{
  char *p;
  if (asprintf (&p, "%s/lock", dir) < 0)
    return -1;
  int fd = open (p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  free (p);
  if (fd < 0) {
    Pallet_seterr ("state dir %s: cannot create its lock file: %s", dir, strerror (errno));
    return -1;
  }
  if (flock (fd, LOCK_EX | LOCK_NB) != 0) {
    Pallet_seterr ("state dir %s is in use by another pallet process: "
                   "wait for it, or stop it with `pallet cancel`",
                   dir);
    close (fd);
    return -2;
  }
  return fd;
}

char *
Pallet_cancel_marker (const char *dir)
{
  char *p;
  if (asprintf (&p, "%s/cancel", dir) < 0)
    return NULL;
  return p;
}

int
pallet_request_cancel (const char *state_dir)
{
  Pallet_clearerr ();
  struct stat st;
  if (stat (state_dir, &st) != 0 || !S_ISDIR (st.st_mode)) {
    Pallet_seterr ("state dir %s does not exist: nothing to cancel (pass "
                   "--state-dir if the migration used another one)",
                   state_dir);
    return PALLET_E_NOT_FOUND;
  }
  char *p = Pallet_cancel_marker (state_dir);
  json_t *j = json_pack ("{s:s}", "requested", "");
  char *now = Pallet_now_iso ();
  if (j && now)
    json_object_set_new (j, "requested", json_string (now));
  int r = p && j ? Pallet_write_json_file (p, j) : -1;
  free (now);
  json_decref (j);
  free (p);
  return r == 0 ? PALLET_OK : PALLET_E_IO;
}

static int
is_vm_file (const struct dirent *e)
{
  size_t n = strlen (e->d_name);
  return strncmp (e->d_name, "vm-", 3) == 0 && n > 8 && strcmp (e->d_name + n - 5, ".json") == 0;
}

json_t *
Pallet_state_load_all (const char *dir)
{
  struct stat st;
  if (stat (dir, &st) != 0 || !S_ISDIR (st.st_mode)) {
    Pallet_seterr ("state dir %s does not exist: run `pallet migrate` "
                   "first, or pass --state-dir",
                   dir);
    return NULL;
  }
  json_t *out = json_object ();
  char *pp;
  if (asprintf (&pp, "%s/plan.json", dir) < 0) {
    json_decref (out);
    return NULL;
  }
  json_t *plan = access (pp, F_OK) == 0 ? Pallet_read_json_file (pp) : NULL;
  free (pp);
  json_object_set_new (out, "plan", plan ? plan : json_null ());
  json_t *vms = json_array ();
  json_object_set_new (out, "vms", vms);
  struct dirent **ents;
  int n = scandir (dir, &ents, is_vm_file, alphasort);
  for (int i = 0; i < n; i++) {
    char *f;
    if (asprintf (&f, "%s/%s", dir, ents[i]->d_name) >= 0) {
      json_t *v = Pallet_read_json_file (f);
      if (v)
        json_array_append_new (vms, v);
      free (f);
    }
    free (ents[i]);
  }
  if (n >= 0)
    free (ents);
  return out;
}

char *
pallet_state_read (const char *state_dir)
{
  Pallet_clearerr ();
  json_t *j = Pallet_state_load_all (state_dir);
  if (j == NULL)
    return NULL;
  char *s = json_dumps (j, JSON_COMPACT);
  json_decref (j);
  return s;
}
