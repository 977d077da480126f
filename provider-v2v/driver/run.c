/* SPDX-License-Identifier: Apache-2.0 */
/* Running virt-v2v: posix_spawn into its own process group, its output
 * read line by line, cancellation and timeouts that end the whole group
 * (virt-v2v's qemu and nbdkit children included). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "pallet-v2v-driver.h"
#include "driver-internal.h"

extern char **environ;

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

struct reader {
  int fd;
  char buf[8192];
  size_t len;
};

struct run {
  const struct pallet_v2v_run_opts *o;
  struct pallet_v2v_result *res;
  FILE *log;
  struct pallet_v2v_lines lines;
};

static void
line_out (struct run *r, char *line)
{
  if (r->log) {
    fputs (line, r->log);
    fputc ('\n', r->log);
  }
  struct pallet_v2v_event ev;
  if (!pallet_v2v_parse_line (line, &ev, &r->lines))
    return;
  if (ev.kind == PALLET_V2V_EV_ERROR)
    snprintf (r->res->error, sizeof r->res->error, "%s", ev.text);
  if (r->o->event)
    r->o->event (r->o->event_opaque, &ev);
}

/* Reads what is there; splits lines on \n and \r (nbdcopy's bar uses \r). */
static int
drain (struct run *r, struct reader *rd)
{
  ssize_t n = read (rd->fd, rd->buf + rd->len, sizeof rd->buf - 1 - rd->len);
  if (n < 0)
    return errno == EINTR ? 0 : errno == EAGAIN ? 1 : -1;
  if (n == 0) {
    if (rd->len) {
      rd->buf[rd->len] = '\0';
      line_out (r, rd->buf);
      rd->len = 0;
    }
    return -1;
  }
  rd->len += (size_t) n;
  size_t start = 0;
  for (size_t i = 0; i < rd->len; i++)
    if (rd->buf[i] == '\n' || rd->buf[i] == '\r') {
      rd->buf[i] = '\0';
      if (i > start)
        line_out (r, rd->buf + start);
      start = i + 1;
    }
  memmove (rd->buf, rd->buf + start, rd->len - start);
  rd->len -= start;
  if (rd->len == sizeof rd->buf - 1) { /* an endless line: cut it */
    rd->buf[rd->len] = '\0';
    line_out (r, rd->buf);
    rd->len = 0;
  }
  return 0;
}

static void
kill_group (pid_t pgid, pid_t pid, unsigned grace_ms, int *status)
{
  kill (-pgid, SIGTERM);
  for (unsigned waited = 0; waited < grace_ms; waited += 50) {
    if (waitpid (pid, status, WNOHANG) == pid) {
      kill (-pgid, SIGKILL); /* children that outlived it */
      return;
    }
    usleep (50 * 1000);
  }
  kill (-pgid, SIGKILL);
  while (waitpid (pid, status, 0) < 0 && errno == EINTR)
    ;
}

/* 1 if prog runs: a path, or a name found in PATH.  Checked before the
 * spawn because a failed exec in the child is not always reported back
 * (under valgrind it exits 127 instead). */
static int
runnable (const char *prog)
{
  if (strchr (prog, '/'))
    return access (prog, X_OK) == 0;
  const char *path = getenv ("PATH");
  char buf[4096];
  for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
    size_t n = strcspn (p, ":");
    snprintf (buf, sizeof buf, "%.*s/%s", (int) n, p, prog);
    if (n && access (buf, X_OK) == 0)
      return 1;
    p += n + (p[n] == ':');
  }
  return 0;
}

static int
spawn (char *const argv[], int out_fd, int err_fd, pid_t *pid)
{
  if (!runnable (argv[0]))
    return ENOENT;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init (&fa);
  posix_spawnattr_init (&at);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2 (&fa, out_fd, 1);
  posix_spawn_file_actions_adddup2 (&fa, err_fd, 2);
  /* A group of its own: a cancel ends virt-v2v and its qemu/nbdkit. */
  posix_spawnattr_setflags (&at,
                            POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup (&at, 0);
  sigset_t none, all;
  sigemptyset (&none);
  sigfillset (&all);
  posix_spawnattr_setsigmask (&at, &none);
  posix_spawnattr_setsigdefault (&at, &all);
  int e = posix_spawnp (pid, argv[0], &fa, &at, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  posix_spawnattr_destroy (&at);
  return e;
}

static void
finish (struct pallet_v2v_result *res, int status, int cancelled, int timed_out, unsigned timeout_s)
{
  res->exit_status = WIFEXITED (status)     ? WEXITSTATUS (status)
                     : WIFSIGNALED (status) ? 128 + WTERMSIG (status)
                                            : 255;
  if (cancelled) {
    res->outcome = PALLET_V2V_CANCELLED;
    snprintf (res->error, sizeof res->error, "cancelled; virt-v2v and its children were stopped");
  }
  else if (timed_out) {
    res->outcome = PALLET_V2V_TIMEOUT;
    snprintf (
        res->error, sizeof res->error,
        "virt-v2v ran longer than the timeout (%u s) and was stopped; raise the setting v2v-timeout",
        timeout_s);
  }
  else if (res->exit_status != 0) {
    res->outcome = PALLET_V2V_FAILED;
    if (!res->error[0])
      snprintf (res->error, sizeof res->error, "virt-v2v %s %d without an error message",
                WIFSIGNALED (status) ? "was killed by signal" : "exited with status",
                WIFSIGNALED (status) ? WTERMSIG (status) : res->exit_status);
  }
  else
    res->outcome = PALLET_V2V_OK;
}

void
pallet_v2v_run (char *const argv[], const struct pallet_v2v_run_opts *o,
                struct pallet_v2v_result *res)
{
  memset (res, 0, sizeof *res);
  struct run r = { .o = o, .res = res };
  int po[2] = { -1, -1 }, pe[2] = { -1, -1 };
  double t0 = now_s ();
  if (pipe2 (po, O_CLOEXEC) < 0 || pipe2 (pe, O_CLOEXEC) < 0) {
    res->outcome = PALLET_V2V_SPAWN;
    res->sys_errno = errno;
    snprintf (res->error, sizeof res->error, "cannot create pipes: %s", strerror (errno));
    goto out;
  }
  if (o->log_path)
    r.log = fopen (o->log_path, "ae");
  pid_t pid;
  int e = spawn (argv, po[1], pe[1], &pid);
  close (po[1]);
  close (pe[1]);
  po[1] = pe[1] = -1;
  if (e) {
    res->outcome = PALLET_V2V_SPAWN;
    res->sys_errno = e;
    snprintf (res->error, sizeof res->error, "cannot run %s: %s%s", argv[0], strerror (e),
              e == ENOENT ? "; install virt-v2v (apt-get install virt-v2v nbdkit)" : "");
    goto out;
  }
  if (o->journal_dir)
    Pallet_v2v_journal_started (o->journal_dir, pid);
  struct reader ro = { .fd = po[0] }, re = { .fd = pe[0] };
  int open_fds = 2, status = 0, cancelled = 0, timed_out = 0;
  while (open_fds > 0) {
    struct pollfd p[2] = { { ro.fd, POLLIN, 0 }, { re.fd, POLLIN, 0 } };
    int n = poll (p, 2, 200);
    for (int i = 0; i < 2 && n > 0; i++)
      if (p[i].revents && p[i].fd >= 0 && drain (&r, i ? &re : &ro) == -1) {
        close (p[i].fd);
        *(i ? &re.fd : &ro.fd) = -1;
        open_fds--;
      }
    if (o->cancelled && o->cancelled (o->cancel_opaque))
      cancelled = 1;
    else if (o->timeout_s && now_s () - t0 > o->timeout_s)
      timed_out = 1;
    if (cancelled || timed_out)
      break;
  }
  if (cancelled || timed_out)
    kill_group (pid, pid, o->kill_grace_ms ? o->kill_grace_ms : 5000, &status);
  else
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
      ;
  /* What the group wrote before it ended, without waiting on a straggler
   * that still holds the pipe. */
  struct reader *left[2] = { &ro, &re };
  for (int i = 0; i < 2; i++)
    if (left[i]->fd >= 0) {
      fcntl (left[i]->fd, F_SETFL, O_NONBLOCK);
      while (drain (&r, left[i]) == 0)
        ;
      close (left[i]->fd);
    }
  po[0] = pe[0] = -1;
  if (o->journal_dir)
    Pallet_v2v_journal_ended (o->journal_dir);
  finish (res, status, cancelled, timed_out, o->timeout_s);
out:
  for (int i = 0; i < 2; i++) {
    if (po[i] >= 0)
      close (po[i]);
    if (pe[i] >= 0)
      close (pe[i]);
  }
  if (r.log)
    fclose (r.log);
  res->seconds = now_s () - t0;
}
