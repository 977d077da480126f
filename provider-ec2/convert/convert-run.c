/* SPDX-License-Identifier: Apache-2.0 */
/* In-place conversion: qcow2 overlays, virt-v2v-in-place in its own process
 * group with its output streamed and parsed, then qemu-img commit. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "pallet-convert.h"
#include "convert-internal.h"

extern char **environ;

#define MAX_LINE       65536 /* longer lines are cut, never dropped */
#define TAIL_MAX       4096  /* bytes of stderr kept for error messages */
#define ERRTEXT_MAX    8192  /* bytes kept from the first "error:" line on */
#define TERM_GRACE_MS  5000  /* SIGTERM -> SIGKILL */
#define DRAIN_GRACE_MS 2000  /* after exit, wait this long for pipe EOF */

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- growable text ---------------------------------------------------- */

struct text {
  char *s;
  size_t len;
};

/* Appends LINE and a newline, keeping at most MAX bytes (the newest when
 * KEEP_TAIL, else the oldest). */
static int
text_add (struct text *t, const char *line, size_t max, int keep_tail)
{
  size_t n = strlen (line);
  char *s;

  if (!keep_tail && t->len >= max)
    return 0;
  s = realloc (t->s, t->len + n + 2);
  if (s == NULL)
    return -1;
  t->s = s;
  memcpy (t->s + t->len, line, n);
  t->len += n;
  t->s[t->len++] = '\n';
  t->s[t->len] = '\0';
  if (keep_tail && t->len > max) {
    size_t cut = t->len - max;
    memmove (t->s, t->s + cut, t->len - cut + 1);
    t->len -= cut;
  }
  return 0;
}

/* ---- one child process's output --------------------------------------- */

struct run {
  const struct Pallet_convert_options *opts;
  struct Pallet_convert_result *res;
  struct text tail;    /* last stderr lines */
  struct text errtext; /* from the first "error:" line on */
  char *last_step;
  int parse_v2v; /* parse steps/warnings (not for qemu-img) */
  int nomem;
};

struct linebuf {
  char buf[MAX_LINE + 1];
  size_t len;
};

static void
on_line (struct run *r, int stream, char *line)
{
  const struct Pallet_convert_options *o = r->opts;
  const char *text;
  double secs;

  if (o && o->line)
    o->line (o->opaque, stream, line);
  if (stream == 2 && text_add (&r->tail, line, TAIL_MAX, 1) == -1)
    r->nomem = 1;
  if (Pallet_convert_parse_error (line) || r->errtext.len > 0) {
    if (text_add (&r->errtext, line, ERRTEXT_MAX, 0) == -1)
      r->nomem = 1;
  }
  if (!r->parse_v2v)
    return;
  if (Pallet_convert_parse_step (line, &secs, &text)) {
    char *copy = strdup (text);
    if (copy == NULL) {
      r->nomem = 1;
      return;
    }
    free (r->last_step);
    r->last_step = copy;
    if (o && o->progress)
      o->progress (o->opaque, text, secs, r->res->steps);
    r->res->steps++;
  }
  else if ((text = Pallet_convert_parse_warning (line)) != NULL) {
    char **w = realloc (r->res->warnings, (r->res->nwarnings + 1) * sizeof *w);
    char *copy = strdup (text);
    if (w == NULL || copy == NULL) {
      free (copy);
      if (w)
        r->res->warnings = w;
      r->nomem = 1;
      return;
    }
    r->res->warnings = w;
    w[r->res->nwarnings++] = copy;
  }
}

/* Splits DATA into lines on \n (and \r, which progress bars use). */
static void
feed (struct run *r, int stream, struct linebuf *lb, const char *data, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    char c = data[i];
    if (c == '\n' || c == '\r') {
      /* Blank lines matter (they end an error's first paragraph); a \r
       * before \n must not make one. */
      if (lb->len > 0 || c == '\n') {
        lb->buf[lb->len] = '\0';
        on_line (r, stream, lb->buf);
      }
      lb->len = 0;
    }
    else if (lb->len < MAX_LINE)
      lb->buf[lb->len++] = c;
  }
}

/* ---- spawning --------------------------------------------------------- */

/* The environment for the child: ours, with LC_ALL=C (we parse its
 * messages) and the libguestfs backend when FORCE_TCG. */
static char **
child_env (int force_tcg)
{
  static const char *const drop[] = {
    "LC_ALL=", "LANG=", "LANGUAGE=", "LIBGUESTFS_BACKEND=", "LIBGUESTFS_BACKEND_SETTINGS=", NULL
  };
  size_t n = 0, o = 0;
  char **env;

  while (environ && environ[n])
    n++;
  env = calloc (n + 4, sizeof *env);
  if (env == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    int skip = 0;
    for (size_t d = 0; drop[d]; d++)
      if (strncmp (environ[i], drop[d], strlen (drop[d])) == 0)
        skip = 1;
    if (!skip)
      env[o++] = environ[i];
  }
  env[o++] = (char *) "LC_ALL=C";
  if (force_tcg) {
    env[o++] = (char *) "LIBGUESTFS_BACKEND=direct";
    env[o++] = (char *) "LIBGUESTFS_BACKEND_SETTINGS=force_tcg";
  }
  env[o] = NULL;
  return env;
}

/* SIGTERM to the group, then SIGKILL after a grace period; reaps PID. */
static void
kill_group (pid_t pid, int *status)
{
  double until = now () + TERM_GRACE_MS / 1000.0;

  kill (-pid, SIGTERM);
  while (now () < until) {
    if (waitpid (pid, status, WNOHANG) == pid) {
      kill (-pid, SIGKILL); /* stragglers (the appliance's qemu) */
      return;
    }
    poll (NULL, 0, 100);
  }
  kill (-pid, SIGKILL);
  while (waitpid (pid, status, 0) == -1 && errno == EINTR)
    ;
}

enum outcome { RAN, CANCELLED, TIMED_OUT, SPAWN_FAILED, SYS_FAILED };

/* Starts argv in its own process group with stdin from /dev/null and
   stdout/stderr on the pipes' write ends; returns posix_spawnp's result. */
static int
spawn_child (char *const *argv, char *const *envp, int out_w, int err_w, pid_t *pid)
{
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t mask, defs;
  int rc;

  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2 (&fa, out_w, 1);
  posix_spawn_file_actions_adddup2 (&fa, err_w, 2);
  posix_spawnattr_init (&attr);
  sigemptyset (&mask);
  sigemptyset (&defs);
  sigaddset (&defs, SIGPIPE);
  sigaddset (&defs, SIGTERM);
  sigaddset (&defs, SIGINT);
  sigaddset (&defs, SIGCHLD);
  posix_spawnattr_setsigmask (&attr, &mask);
  posix_spawnattr_setsigdefault (&attr, &defs);
  posix_spawnattr_setpgroup (&attr, 0); /* its own group: killable whole */
  posix_spawnattr_setflags (&attr,
                            POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  rc = posix_spawnp (pid, argv[0], &fa, &attr, argv, envp);
  posix_spawn_file_actions_destroy (&fa);
  posix_spawnattr_destroy (&attr);
  return rc;
}

/* Reads what the pipes have into the line buffers; closes a pipe at EOF. */
static void
read_pipes (struct run *r, struct pollfd pfd[2], struct linebuf *lb, int out[2], int err[2])
{
  for (int i = 0; i < 2; i++) {
    char buf[8192];
    ssize_t n;
    if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
      continue;
    n = read (pfd[i].fd, buf, sizeof buf);
    if (n > 0)
      feed (r, i + 1, &lb[i], buf, (size_t) n);
    else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      close (pfd[i].fd);
      pfd[i].fd = -1;
      if (i == 0)
        out[0] = -1;
      else
        err[0] = -1;
    }
  }
}

/* Relays the child's output until it exits and the pipes close, or it is
   cancelled or past the deadline (then its group is killed). */
static enum outcome
watch_child (struct run *r, pid_t pid, int out[2], int err[2], struct linebuf *lb, double deadline,
             int *status)
{
  const struct Pallet_convert_options *o = r->opts;
  struct pollfd pfd[2];
  enum outcome oc = RAN;
  double exited_at = 0;
  int exited = 0;

  pfd[0].fd = out[0];
  pfd[1].fd = err[0];
  pfd[0].events = pfd[1].events = POLLIN;
  while (pfd[0].fd >= 0 || pfd[1].fd >= 0 || !exited) {
    if (!exited && waitpid (pid, status, WNOHANG) == pid) {
      exited = 1;
      exited_at = now ();
    }
    if (exited && (pfd[0].fd < 0 && pfd[1].fd < 0))
      break;
    if (exited && now () - exited_at > DRAIN_GRACE_MS / 1000.0) {
      kill (-pid, SIGKILL); /* something in its group holds the pipes */
      break;
    }
    if (!exited && o && o->cancel && o->cancel (o->opaque)) {
      kill_group (pid, status);
      oc = CANCELLED;
      break;
    }
    if (!exited && deadline > 0 && now () >= deadline) {
      kill_group (pid, status);
      oc = TIMED_OUT;
      break;
    }
    if (poll (pfd, 2, 200) == -1 && errno != EINTR) {
      kill_group (pid, status);
      oc = SYS_FAILED;
      break;
    }
    read_pipes (r, pfd, lb, out, err);
  }
  if (!exited && oc == RAN)
    while (waitpid (pid, status, 0) == -1 && errno == EINTR)
      ;
  return oc;
}

/* Runs ARGV in a new process group, streaming its output into R.
 * DEADLINE is a now() time, 0 for none.  Sets *STATUS (waitpid). */
static enum outcome
run_child (struct run *r, char *const *argv, char *const *envp, double deadline, int *status,
           int *spawn_errno)
{
  int out[2] = { -1, -1 }, err[2] = { -1, -1 };
  struct linebuf *lb = NULL;
  enum outcome oc = RAN;
  int rc;
  pid_t pid;

  *status = -1;
  lb = calloc (2, sizeof *lb);
  if (lb == NULL)
    return SYS_FAILED;
  if (pipe2 (out, O_CLOEXEC) == -1 || pipe2 (err, O_CLOEXEC) == -1) {
    *spawn_errno = errno;
    oc = SYS_FAILED;
    goto close_pipes;
  }
  rc = spawn_child (argv, envp, out[1], err[1], &pid);
  close (out[1]);
  close (err[1]);
  out[1] = err[1] = -1;
  if (rc != 0) {
    *spawn_errno = rc;
    oc = SPAWN_FAILED;
    goto close_pipes;
  }
  oc = watch_child (r, pid, out, err, lb, deadline, status);
  for (int i = 0; i < 2; i++) /* a last line without a newline */
    if (lb[i].len > 0)
      feed (r, i + 1, &lb[i], "\n", 1);

close_pipes:
  for (int i = 0; i < 2; i++) {
    if (out[i] >= 0)
      close (out[i]);
    if (err[i] >= 0)
      close (err[i]);
  }
  free (lb);
  return oc;
}

/* ---- the conversion --------------------------------------------------- */

/* Whether PROG can be run: checked up front because posix_spawn reports a
 * missing program only as exit status 127 in some environments (valgrind,
 * old glibc). */
static int
can_run (const char *prog)
{
  const char *path = getenv ("PATH");
  char buf[PATH_MAX];

  if (strchr (prog, '/'))
    return access (prog, X_OK) == 0;
  if (path == NULL)
    path = "/usr/local/bin:/usr/bin:/bin";
  while (*path) {
    size_t n = strcspn (path, ":");
    if (snprintf (buf, sizeof buf, "%.*s/%s", (int) n, n ? path : ".", prog) < (int) sizeof buf
        && access (buf, X_OK) == 0)
      return 1;
    path += n;
    if (*path == ':')
      path++;
  }
  return 0;
}

static void set_message (struct Pallet_convert_result *res, enum Pallet_convert_error e,
                         const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
static void
set_message (struct Pallet_convert_result *res, enum Pallet_convert_error e, const char *fmt, ...)
{
  va_list ap;

  free (res->message);
  res->message = NULL;
  res->error = e;
  va_start (ap, fmt);
  if (vasprintf (&res->message, fmt, ap) < 0) {
    res->message = NULL;
    res->error = PALLET_CONVERT_E_NOMEM;
  }
  va_end (ap);
}

static void
run_reset (struct run *r)
{
  free (r->tail.s);
  free (r->errtext.s);
  r->tail.s = r->errtext.s = NULL;
  r->tail.len = r->errtext.len = 0;
}

/* Runs qemu-img with ARGV; on failure sets RES from its stderr. */
static int
qemu_img (struct run *r, char *const *argv, char *const *envp, const char *disk, const char *what)
{
  int status, spawn_errno = 0;
  enum outcome oc;

  run_reset (r);
  r->parse_v2v = 0;
  oc = run_child (r, argv, envp, 0, &status, &spawn_errno);
  if (oc == SPAWN_FAILED) {
    set_message (r->res, PALLET_CONVERT_E_TOOL,
                 "%s for %s: cannot run %s: %s; fix: install qemu-utils "
                 "(scripts/install-deps.sh)",
                 what, disk, argv[0], strerror (spawn_errno));
    return -1;
  }
  if (oc != RAN || !WIFEXITED (status) || WEXITSTATUS (status) != 0) {
    char *said = Pallet_convert_condense (r->tail.s ? r->tail.s : "", 400);
    enum Pallet_convert_error e = Pallet_convert_map_error (r->tail.s, NULL, 0, NULL);
    if (e == PALLET_CONVERT_E_FAILED)
      e = PALLET_CONVERT_E_IO;
    set_message (r->res, e,
                 "%s for %s failed: %s; fix: check the disk is "
                 "readable, in the stated format, and that the work "
                 "directory has space",
                 what, disk, said ? said : "");
    free (said);
    return -1;
  }
  return 0;
}

static void
cleanup_work (char *const *overlays, size_t n, const char *xml, const char *dir)
{
  for (size_t i = 0; i < n; i++)
    if (overlays[i])
      unlink (overlays[i]);
  if (xml)
    unlink (xml);
  if (dir)
    rmdir (dir);
}

/* One conversion: its inputs and what it made so far (freed by job_end). */
struct job {
  const char *const *disks;
  size_t ndisks;
  const struct Pallet_convert_options *o;
  struct Pallet_convert_result *res;
  const char *fmt, *prog, *qimg, *base;
  char **abs, **overlays;
  char *dir, *xml, *who;
  char **envp;
  struct run r;
  int keep_work;
};

/* The arguments, the tools and the work directory's name. */
static int
job_start (struct job *j)
{
  struct Pallet_convert_result *res = j->res;
  if (j->disks == NULL || j->ndisks == 0 || j->ndisks > 26) {
    set_message (res, PALLET_CONVERT_E_INVALID,
                 "convert: %zu disks given; fix: pass 1 to 26 disk paths", j->ndisks);
    return -1;
  }
  for (size_t i = 0; i < j->ndisks; i++)
    if (j->disks[i] == NULL) {
      set_message (res, PALLET_CONVERT_E_INVALID, "convert: disk %zu is NULL; fix: pass a path", i);
      return -1;
    }
  if (j->base == NULL || *j->base == '\0')
    j->base = "/var/tmp";
  j->who = Pallet_convert_join_disks (j->disks, j->ndisks);
  j->abs = calloc (j->ndisks, sizeof *j->abs);
  j->overlays = calloc (j->ndisks, sizeof *j->overlays);
  j->envp = child_env (j->o->force_tcg);
  if (j->who == NULL || j->abs == NULL || j->overlays == NULL || j->envp == NULL
      || asprintf (&j->dir, "%s/pallet-convert-XXXXXX", j->base) < 0) {
    j->dir = NULL;
    set_message (res, PALLET_CONVERT_E_NOMEM, "convert: out of memory");
    return -1;
  }
  if (!can_run (j->prog) || !can_run (j->qimg)) {
    set_message (res, PALLET_CONVERT_E_TOOL,
                 "converting %s: cannot run %s: not found or not executable; "
                 "fix: install virt-v2v and qemu-utils "
                 "(scripts/install-deps.sh)",
                 j->who, can_run (j->prog) ? j->qimg : j->prog);
    return -1;
  }
  return 0;
}

/* Checks the disks up front (clearer than qemu's words for it), makes the
 * work directory and the overlays: they take every write, and the disks
 * stay untouched until the commit. */
static int
make_overlays (struct job *j)
{
  struct Pallet_convert_result *res = j->res;
  for (size_t i = 0; i < j->ndisks; i++) {
    struct stat st;
    j->abs[i] = realpath (j->disks[i], NULL);
    if (j->abs[i] == NULL || access (j->abs[i], R_OK | W_OK) != 0 || stat (j->abs[i], &st) != 0) {
      set_message (res, PALLET_CONVERT_E_DISK,
                   "converting %s: cannot open disk %s: %s; fix: check the "
                   "path exists and is readable and writable",
                   j->who, j->disks[i], strerror (errno));
      return -1;
    }
    if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode)) {
      set_message (res, PALLET_CONVERT_E_DISK,
                   "converting %s: disk %s is not a file or block device; "
                   "fix: pass a disk image",
                   j->who, j->disks[i]);
      return -1;
    }
  }
  if (mkdtemp (j->dir) == NULL) {
    set_message (res, PALLET_CONVERT_E_IO,
                 "converting %s: cannot create a work directory in %s: %s; "
                 "fix: set work_dir (or TMPDIR) to a writable directory",
                 j->who, j->base, strerror (errno));
    free (j->dir);
    j->dir = NULL;
    return -1;
  }
  for (size_t i = 0; i < j->ndisks; i++) {
    if (asprintf (&j->overlays[i], "%s/overlay-%zu.qcow2", j->dir, i) < 0) {
      j->overlays[i] = NULL;
      set_message (res, PALLET_CONVERT_E_NOMEM, "convert: out of memory");
      return -1;
    }
    const char *cargv[] = { j->qimg,   "create", "-q",   "-f",           "qcow2", "-b",
                            j->abs[i], "-F",     j->fmt, j->overlays[i], NULL };
    if (qemu_img (&j->r, (char *const *) cargv, j->envp, j->disks[i], "creating the qcow2 overlay")
        == -1)
      return -1;
  }
  return 0;
}

/* The device-name fix-up on the overlays, before virt-v2v inspects. */
static int
fix_device_names (struct job *j)
{
  const struct Pallet_convert_options *o = j->o;
  struct Pallet_convert_fixup_options fo = { .force_tcg = o->force_tcg,
                                             .disk_format = "qcow2",
                                             .devices = o->devices,
                                             .ndevices = o->ndevices };
  char *msg = NULL;
  if (!o->fix_device_names)
    return 0;
  if (o->progress)
    o->progress (o->opaque, "Rewriting EC2 device names in the guest (pallet)", 0, j->res->steps++);
  enum Pallet_convert_error e =
      Pallet_convert_fixup ((const char *const *) j->overlays, j->ndisks, &fo, &j->res->rewrites,
                            &j->res->nrewrites, &msg);
  if (e == PALLET_CONVERT_OK)
    return 0;
  free (j->res->message);
  j->res->error = e;
  j->res->message = msg;
  if (msg == NULL)
    set_message (j->res, e, "converting %s: the device-name fix-up failed (%s)", j->who,
                 Pallet_convert_error_name (e));
  return -1;
}

/* virt-v2v-in-place's command line: one disk directly, several (or
 * use_libvirtxml) through a domain XML in the work directory. */
static int
v2v_argv (struct job *j, const char *argv[16])
{
  const struct Pallet_convert_options *o = j->o;
  size_t a = 0;
  argv[a++] = j->prog;
  if (o->verbose) {
    argv[a++] = "-v";
    argv[a++] = "-x";
  }
  if (j->ndisks == 1 && !o->use_libvirtxml) {
    argv[a++] = "-i";
    argv[a++] = "disk";
    argv[a++] = "-if";
    argv[a++] = "qcow2";
    argv[a++] = j->overlays[0];
  }
  else {
    if (asprintf (&j->xml, "%s/domain.xml", j->dir) < 0) {
      j->xml = NULL;
      set_message (j->res, PALLET_CONVERT_E_NOMEM, "convert: out of memory");
      return -1;
    }
    if (Pallet_convert_write_domain_xml (j->xml, o->guest_name, (const char *const *) j->overlays,
                                         j->ndisks, "qcow2")
        == -1) {
      set_message (j->res, PALLET_CONVERT_E_IO,
                   "converting %s: cannot write %s: %s; fix: check the work "
                   "directory is writable and has space",
                   j->who, j->xml, strerror (errno));
      return -1;
    }
    argv[a++] = "-i";
    argv[a++] = "libvirtxml";
    argv[a++] = j->xml;
  }
  if (o->root) {
    argv[a++] = "--root";
    argv[a++] = o->root;
  }
  argv[a] = NULL;
  return 0;
}

/* virt-v2v could not mount a device the guest names: say where the guest
 * names it (file and line), from a dry run of the fix-up's scan. */
static void
add_references (struct job *j)
{
  const struct Pallet_convert_options *o = j->o;
  struct Pallet_convert_fixup_options fo = { o->force_tcg, "qcow2", o->devices, o->ndevices, 1 };
  struct Pallet_convert_rewrite *rw = NULL;
  size_t nrw = 0;
  char *msg = NULL, *buf = NULL, *m2 = NULL;
  size_t len = 0;
  enum Pallet_convert_error e =
      Pallet_convert_fixup ((const char *const *) j->overlays, j->ndisks, &fo, &rw, &nrw, &msg);
  FILE *fp = open_memstream (&buf, &len);
  if (fp == NULL)
    goto out;
  if (e == PALLET_CONVERT_OK)
    for (size_t i = 0; i < nrw; i++)
      fprintf (fp, "%s%s line %u names %s (it is %s)", i ? ", " : "", rw[i].file, rw[i].line,
               rw[i].from, rw[i].to);
  else if (msg)
    fputs (msg, fp);
  if (fclose (fp) == 0 && len > 0
      && asprintf (&m2, "%s; where the guest names EC2 devices: %s", j->res->message, buf) >= 0) {
    free (j->res->message);
    j->res->message = m2;
  }
out:
  free (buf);
  free (msg);
  Pallet_convert_rewrites_free (rw, nrw);
}

/* A virt-v2v that did not exit 0: the error its output names. */
static void
v2v_failed (struct job *j, int status)
{
  struct Pallet_convert_result *res = j->res;
  const char *text = j->r.errtext.s ? j->r.errtext.s : j->r.tail.s;
  char *msg = NULL;
  enum Pallet_convert_error e = Pallet_convert_map_error (text, j->disks, j->ndisks, &msg);
  /* The cause may precede the error line (supermin prints its own): a
   * more specific rule matching the stderr tail wins. */
  if (j->r.tail.s && text != j->r.tail.s
      && Pallet_convert_error_rule (j->r.tail.s) < Pallet_convert_error_rule (text)) {
    free (msg);
    msg = NULL;
    e = Pallet_convert_map_error (j->r.tail.s, j->disks, j->ndisks, &msg);
  }
  res->error = e;
  res->message = msg;
  if (msg && e == PALLET_CONVERT_E_DEVICE_NAME)
    add_references (j);
  if (msg && !WIFEXITED (status)) {
    char *m2 = NULL;
    if (asprintf (&m2, "%s (killed by signal %d)", msg,
                  WIFSIGNALED (status) ? WTERMSIG (status) : 0)
        >= 0) {
      free (msg);
      res->message = m2;
    }
  }
  if (res->message == NULL && e != PALLET_CONVERT_E_NOMEM)
    res->error = PALLET_CONVERT_E_NOMEM;
}

/* Runs virt-v2v-in-place on the overlays, within the timeout. */
static int
run_v2v (struct job *j, double t0)
{
  const struct Pallet_convert_options *o = j->o;
  struct Pallet_convert_result *res = j->res;
  const char *argv[16];
  int status, spawn_errno = 0;
  if (v2v_argv (j, argv) < 0)
    return -1;
  run_reset (&j->r);
  j->r.parse_v2v = 1;
  double deadline = o->timeout_seconds ? t0 + o->timeout_seconds : 0;
  enum outcome oc =
      run_child (&j->r, (char *const *) argv, j->envp, deadline, &status, &spawn_errno);
  if (WIFEXITED (status))
    res->exit_status = WEXITSTATUS (status);
  if (j->r.nomem) {
    set_message (res, PALLET_CONVERT_E_NOMEM, "convert: out of memory");
    return -1;
  }
  const char *step = j->r.last_step ? j->r.last_step : "start-up";
  switch (oc) {
  case SPAWN_FAILED:
    set_message (res, PALLET_CONVERT_E_TOOL,
                 "converting %s: cannot run %s: %s; fix: install virt-v2v "
                 "(scripts/install-deps.sh)",
                 j->who, j->prog, strerror (spawn_errno));
    return -1;
  case SYS_FAILED:
    set_message (res, PALLET_CONVERT_E_IO, "converting %s: %s: %s; fix: retry", j->who, j->prog,
                 strerror (spawn_errno ? spawn_errno : EIO));
    return -1;
  case CANCELLED:
    set_message (res, PALLET_CONVERT_E_CANCELLED,
                 "converting %s: cancelled during '%s'; the disks are "
                 "unchanged; fix: start the conversion again when wanted",
                 j->who, step);
    return -1;
  case TIMED_OUT:
    set_message (res, PALLET_CONVERT_E_TIMEOUT,
                 "converting %s: timed out after %u s during '%s'; the disks "
                 "are unchanged; fix: raise the timeout (a conversion under "
                 "TCG takes 3-10 minutes) or use a host with KVM",
                 j->who, o->timeout_seconds, step);
    return -1;
  case RAN: break;
  }
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
    v2v_failed (j, status);
    return -1;
  }
  return 0;
}

/* First-boot and run scripts (virt-customize) on the converted overlays,
 * so they are committed with the conversion or not at all. */
static int
run_customize (struct job *j, double t0)
{
  const struct Pallet_convert_options *o = j->o;
  const char *prog = o->customize ? o->customize : "virt-customize";
  char *msg = NULL;
  int status = 0, spawn_errno = 0;
  if (o->nfirstboot == 0 && o->nrun_scripts == 0)
    return 0;
  char **argv = Pallet_convert_customize_argv (prog, j->overlays, j->ndisks, "qcow2", o, &msg);
  if (argv == NULL) {
    set_message (j->res, msg ? PALLET_CONVERT_E_INVALID : PALLET_CONVERT_E_NOMEM,
                 "converting %s: %s", j->who, msg ? msg : "out of memory");
    free (msg);
    return -1;
  }
  run_reset (&j->r);
  j->r.parse_v2v = 0;
  enum outcome oc =
      run_child (&j->r, argv, j->envp, o->timeout_seconds ? t0 + o->timeout_seconds : 0, &status,
                 &spawn_errno);
  free (argv);
  char *said = Pallet_convert_condense (j->r.errtext.s ? j->r.errtext.s
                                        : j->r.tail.s  ? j->r.tail.s
                                                       : "",
                                        400);
  if (oc == SPAWN_FAILED)
    set_message (j->res, PALLET_CONVERT_E_TOOL,
                 "converting %s: cannot run %s for the first-boot scripts: %s; fix: install "
                 "guestfs-tools (scripts/install-deps.sh)",
                 j->who, prog, strerror (spawn_errno));
  else if (oc == CANCELLED || oc == TIMED_OUT)
    set_message (j->res, oc == CANCELLED ? PALLET_CONVERT_E_CANCELLED : PALLET_CONVERT_E_TIMEOUT,
                 "converting %s: %s while installing the first-boot scripts; the disks are "
                 "unchanged; fix: %s",
                 j->who, oc == CANCELLED ? "cancelled" : "timed out",
                 oc == CANCELLED ? "start again when wanted" : "raise the timeout");
  else if (oc != RAN || !WIFEXITED (status) || WEXITSTATUS (status) != 0)
    set_message (j->res, PALLET_CONVERT_E_FAILED,
                 "converting %s: %s could not install the first-boot scripts (%s); the disks "
                 "are unchanged; fix: check the scripts (a --run script must exit 0)",
                 j->who, prog, said ? said : "");
  free (said);
  return j->res->message ? -1 : 0;
}

/* Success: folds the overlays into the disks.  A failed commit keeps the
 * work directory and says how to finish by hand. */
static int
commit_overlays (struct job *j)
{
  struct Pallet_convert_result *res = j->res;
  for (size_t i = 0; i < j->ndisks; i++) {
    const char *cargv[] = { j->qimg, "commit", "-q", "-f", "qcow2", j->overlays[i], NULL };
    if (qemu_img (&j->r, (char *const *) cargv, j->envp, j->disks[i],
                  "committing the converted overlay")
        == -1) {
      char *m2 = NULL;
      j->keep_work = 1;
      if (asprintf (&m2,
                    "%s; disk %s may be partly written (disks before "
                    "it are converted); the overlays are kept in %s: run "
                    "'qemu-img commit' on %s and the ones after it",
                    res->message ? res->message : "commit failed", j->disks[i], j->dir,
                    j->overlays[i])
          >= 0) {
        free (res->message);
        res->message = m2;
      }
      return -1;
    }
  }
  return 0;
}

static void
job_end (struct job *j)
{
  if (j->dir && !j->keep_work)
    cleanup_work (j->overlays, j->ndisks, j->xml, j->dir);
  for (size_t i = 0; j->abs && i < j->ndisks; i++)
    free (j->abs[i]);
  for (size_t i = 0; j->overlays && i < j->ndisks; i++)
    free (j->overlays[i]);
  free (j->abs);
  free (j->overlays);
  free (j->envp);
  free (j->xml);
  free (j->dir);
  free (j->who);
  free (j->r.last_step);
  run_reset (&j->r);
}

enum Pallet_convert_error
Pallet_convert_run (const char *const *disks, size_t ndisks,
                    const struct Pallet_convert_options *opts, struct Pallet_convert_result *res)
{
  static const struct Pallet_convert_options defaults;
  const struct Pallet_convert_options *o = opts ? opts : &defaults;
  double t0 = now ();

  if (res == NULL)
    return PALLET_CONVERT_E_INVALID;
  memset (res, 0, sizeof *res);
  res->exit_status = -1;
  struct job j = {
    .disks = disks,
    .ndisks = ndisks,
    .o = o,
    .res = res,
    .fmt = o->disk_format ? o->disk_format : "raw",
    .prog = o->program ? o->program : "virt-v2v-in-place",
    .qimg = o->qemu_img ? o->qemu_img : "qemu-img",
    .base = o->work_dir ? o->work_dir : getenv ("TMPDIR"),
    .r = { .opts = o, .res = res },
  };
  if (job_start (&j) == 0 && make_overlays (&j) == 0 && fix_device_names (&j) == 0
      && run_v2v (&j, t0) == 0 && run_customize (&j, t0) == 0 && commit_overlays (&j) == 0)
    res->error = PALLET_CONVERT_OK;
  job_end (&j);
  res->elapsed = now () - t0;
  return res->error;
}

void
Pallet_convert_result_free (struct Pallet_convert_result *res)
{
  if (res == NULL)
    return;
  for (size_t i = 0; i < res->nwarnings; i++)
    free (res->warnings[i]);
  free (res->warnings);
  free (res->message);
  Pallet_convert_rewrites_free (res->rewrites, res->nrewrites);
  res->rewrites = NULL;
  res->nrewrites = 0;
  res->warnings = NULL;
  res->message = NULL;
  res->nwarnings = 0;
}

static json_t *
result_object (const struct Pallet_convert_result *res)
{
  json_t *o, *w;
  int e = 0;

  if (res == NULL)
    return NULL;
  o = json_object ();
  w = json_array ();
  if (o == NULL || w == NULL) {
    json_decref (o);
    json_decref (w);
    return NULL;
  }
  for (size_t i = 0; i < res->nwarnings; i++)
    e |= json_array_append_new (w, json_string (res->warnings[i]));
  e |= json_object_set_new (o, "ok", json_boolean (res->error == PALLET_CONVERT_OK));
  e |= json_object_set_new (o, "error", json_string (Pallet_convert_error_name (res->error)));
  e |= json_object_set_new (o, "message", res->message ? json_string (res->message) : json_null ());
  e |= json_object_set_new (o, "warnings", w);
  e |= json_object_set_new (o, "exitStatus", json_integer (res->exit_status));
  e |= json_object_set_new (o, "steps", json_integer (res->steps));
  e |= json_object_set_new (o, "elapsed", json_real (res->elapsed));
  e |= json_object_set_new (o, "deviceNameRewrites",
                            Pallet_convert_rewrites_json (res->rewrites, res->nrewrites));
  if (e) {
    json_decref (o);
    return NULL;
  }
  return o;
}

char *
Pallet_convert_result_to_json (const struct Pallet_convert_result *res)
{
  json_t *o = result_object (res);
  char *s = o ? json_dumps (o, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
  json_decref (o);
  return s;
}

/* Dumps O; NULL when out of memory or longer than MAX - 1 bytes. */
static char *
dump_within (const json_t *o, size_t max)
{
  char *s = json_dumps (o, JSON_SORT_KEYS | JSON_COMPACT);
  if (s && strlen (s) >= max) {
    free (s);
    s = NULL;
  }
  return s;
}

char *
Pallet_convert_result_to_json_max (const struct Pallet_convert_result *res, size_t max)
{
  json_t *o = result_object (res);
  char *s = NULL;

  if (o == NULL || max < 256)
    goto out;
  if ((s = dump_within (o, max)) != NULL)
    goto out;
  /* Too long: the rewrites matter most (they say what changed in the
   * guest), then the error; the warnings go first, then the message's
   * tail, then rewrites from the end, each cut counted. */
  json_t *w = json_object_get (o, "warnings");
  json_object_set_new (o, "warningsOmitted", json_integer ((json_int_t) json_array_size (w)));
  json_array_clear (w);
  const char *m = json_string_value (json_object_get (o, "message"));
  if (m && strlen (m) > 512) {
    char cut[513];
    size_t n = 509;
    while (n > 0 && ((unsigned char) m[n] & 0xc0) == 0x80) /* not inside a UTF-8 sequence */
      n--;
    snprintf (cut, sizeof cut, "%.*s...", (int) n, m);
    json_object_set_new (o, "message", json_string (cut));
  }
  json_t *rw = json_object_get (o, "deviceNameRewrites");
  size_t dropped = 0;
  while ((s = dump_within (o, max)) == NULL && json_array_size (rw) > 0) {
    json_array_remove (rw, json_array_size (rw) - 1);
    json_object_set_new (o, "rewritesOmitted", json_integer ((json_int_t) ++dropped));
  }
  if (s == NULL) { /* still too long: only the outcome */
    json_object_set_new (o, "message", json_null ());
    s = dump_within (o, max);
  }
out:
  json_decref (o);
  return s;
}
