/* SPDX-License-Identifier: Apache-2.0 */
/* The run journal, DIR/.pallet-v2v-run.json: which virt-v2v ran there
 * (pid and kernel start time, so a recycled pid is never killed) and,
 * once it finished, what it produced.  A host killed with -9 leaves its
 * virt-v2v running: the next run reaps it; a finished conversion is
 * adopted, never redone. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include "pallet-v2v-driver.h"
#include "driver-internal.h"

#define JOURNAL ".pallet-v2v-run.json"

static void
path_of (char *buf, size_t cap, const char *dir)
{
  snprintf (buf, cap, "%s/" JOURNAL, dir);
}

/* Field 22 of /proc/PID/stat: the start time in clock ticks. */
static unsigned long long
start_time (pid_t pid)
{
  char p[64], buf[1024];
  snprintf (p, sizeof p, "/proc/%d/stat", (int) pid);
  FILE *f = fopen (p, "re");
  if (!f)
    return 0;
  size_t n = fread (buf, 1, sizeof buf - 1, f);
  fclose (f);
  buf[n] = '\0';
  char *s = strrchr (buf, ')'); /* the command name may hold spaces */
  unsigned long long t = 0;
  if (s
      && sscanf (s + 2,
                 "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                 &t)
             != 1)
    t = 0;
  return t;
}

static int
write_journal (const char *dir, json_t *j)
{
  char p[4096], tmp[4200];
  path_of (p, sizeof p, dir);
  snprintf (tmp, sizeof tmp, "%s.tmp", p);
  int r = json_dump_file (j, tmp, JSON_COMPACT | JSON_SORT_KEYS);
  if (r == 0 && rename (tmp, p) < 0)
    r = -1;
  if (r < 0)
    unlink (tmp);
  return r;
}

static json_t *
read_journal (const char *dir)
{
  char p[4096];
  path_of (p, sizeof p, dir);
  json_t *j = json_load_file (p, 0, NULL);
  if (j && !json_is_object (j)) {
    json_decref (j);
    j = NULL;
  }
  return j;
}

void
Pallet_v2v_journal_started (const char *dir, pid_t pid)
{
  json_t *j = json_pack ("{s:I,s:I,s:b}", "pid", (json_int_t) pid, "startTime",
                         (json_int_t) start_time (pid), "done", 0);
  if (j)
    write_journal (dir, j);
  json_decref (j);
}

void
Pallet_v2v_journal_ended (const char *dir)
{
  json_t *j = read_journal (dir);
  if (j && !json_is_true (json_object_get (j, "done"))) {
    json_object_del (j, "pid");
    json_object_del (j, "startTime");
    write_journal (dir, j);
  }
  json_decref (j);
}

int
pallet_v2v_reap_stale (const char *dir)
{
  json_t *j = read_journal (dir);
  if (!j)
    return 0;
  pid_t pid = (pid_t) json_integer_value (json_object_get (j, "pid"));
  unsigned long long t = (unsigned long long) json_integer_value (json_object_get (j, "startTime"));
  int killed = 0;
  if (pid > 1 && t && start_time (pid) == t) {
    /* Still the virt-v2v we started: end its whole group. */
    if (kill (-pid, SIGKILL) == 0)
      killed = 1;
    for (int i = 0; i < 100 && start_time (pid) == t; i++)
      usleep (50 * 1000);
  }
  json_object_del (j, "pid");
  json_object_del (j, "startTime");
  write_journal (dir, j);
  json_decref (j);
  return killed;
}

int
pallet_v2v_mark_done (const char *dir, const json_t *outputs)
{
  json_t *j = json_pack ("{s:b,s:O}", "done", 1, "outputs", (json_t *) outputs);
  if (!j) {
    errno = ENOMEM;
    return -1;
  }
  int r = write_journal (dir, j);
  json_decref (j);
  return r;
}

/* Every file the outputs name must still be there. */
static int
files_present (const json_t *outputs)
{
  json_t *disks = json_object_get (outputs, "disks"), *d;
  size_t i;
  struct stat st;
  const char *yaml = json_string_value (json_object_get (outputs, "yaml"));
  if (!yaml || stat (yaml, &st) < 0 || !json_array_size (disks))
    return 0;
  json_array_foreach (disks, i, d) {
    const char *p = json_string_value (json_object_get (d, "path"));
    if (!p || stat (p, &st) < 0)
      return 0;
  }
  return 1;
}

json_t *
pallet_v2v_finished (const char *dir)
{
  json_t *j = read_journal (dir);
  json_t *out = NULL;
  if (j && json_is_true (json_object_get (j, "done"))
      && files_present (json_object_get (j, "outputs")))
    out = json_incref (json_object_get (j, "outputs"));
  json_decref (j);
  return out;
}

char *
pallet_v2v_password_file (const char *dir, const char *password)
{
  char tmpl[4096];
  snprintf (tmpl, sizeof tmpl, "%s/.pallet-v2v-pw-XXXXXX", dir);
  int fd = mkostemp (tmpl, O_CLOEXEC); /* mode 0600 */
  if (fd < 0)
    return NULL;
  size_t n = strlen (password);
  /* virt-v2v reads the whole file as the password: no newline. */
  int ok = fchmod (fd, 0600) == 0 && write (fd, password, n) == (ssize_t) n;
  int e = errno;
  close (fd);
  if (!ok) {
    unlink (tmpl);
    errno = e;
    return NULL;
  }
  return strdup (tmpl);
}

void
pallet_v2v_remove_file (char *path)
{
  if (path)
    unlink (path);
  free (path);
}

int
pallet_v2v_have_nbdkit_plugin (const char *name)
{
  static const char *const dirs[] = {
    "/usr/lib/x86_64-linux-gnu/nbdkit/plugins",
    "/usr/lib/aarch64-linux-gnu/nbdkit/plugins",
    "/usr/lib64/nbdkit/plugins",
    "/usr/lib/nbdkit/plugins",
    "/usr/local/lib/nbdkit/plugins",
  };
  const char *env = getenv ("PALLET_NBDKIT_PLUGINDIR"); /* for tests and odd layouts */
  char p[4096];
  if (env) {
    snprintf (p, sizeof p, "%s/nbdkit-%s-plugin.so", env, name);
    return access (p, R_OK) == 0;
  }
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    snprintf (p, sizeof p, "%s/nbdkit-%s-plugin.so", dirs[i], name);
    if (access (p, R_OK) == 0)
      return 1;
  }
  return 0;
}
