/* SPDX-License-Identifier: Apache-2.0 */
/* credential_process: the command line is split as botocore does it on
 * POSIX (shlex.split: whitespace separates words, '...' is literal,
 * "..." keeps \" and \\ escapes, a backslash outside quotes escapes the
 * next byte, no comments) and run with posix_spawnp: no shell, so no
 * globbing, variables or pipes, exactly as written.  Its stdout is the
 * JSON of the process credential protocol (Version 1). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <openssl/crypto.h>
#include "aws-internal.h"
#include "credsrc.h"

extern char **environ;

#define PROCESS_TIMEOUT_MS (60 * 1000) /* the Go SDK's default */
#define PROCESS_MAX_OUTPUT (1 << 20)

void
Pallet_aws_argv_free (char **argv)
{
  for (size_t i = 0; argv && argv[i]; i++)
    free (argv[i]);
  free (argv);
}

static int
push_word (char ***argv, size_t *n, struct Pallet_aws_buf *w)
{
  char **a = realloc (*argv, (*n + 2) * sizeof *a);
  if (!a)
    return -1;
  *argv = a;
  a[*n] = strdup (w->data ? w->data : "");
  if (!a[*n])
    return -1;
  a[++*n] = NULL;
  w->len = 0;
  if (w->data)
    w->data[0] = '\0';
  return 0;
}

char **
Pallet_aws_split_command (const char *cmd, char **errmsg)
{
  char **argv = calloc (1, sizeof *argv);
  size_t n = 0;
  struct Pallet_aws_buf w = { 0 };
  bool in_word = false;
  char quote = 0;
  const char *p = cmd;
  for (; argv && *p; p++) {
    char ch = *p;
    if (quote == '\'') {
      if (ch == '\'')
        quote = 0;
      else
        Pallet_aws_buf_add (&w, p, 1);
    }
    else if (quote == '"') {
      if (ch == '"')
        quote = 0;
      else if (ch == '\\' && (p[1] == '"' || p[1] == '\\'))
        Pallet_aws_buf_add (&w, ++p, 1);
      else
        Pallet_aws_buf_add (&w, p, 1);
    }
    else if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
      if (in_word && push_word (&argv, &n, &w) < 0)
        break;
      in_word = false;
    }
    else {
      in_word = true;
      if (ch == '\'' || ch == '"')
        quote = ch;
      else if (ch == '\\') {
        if (!p[1]) {
          Pallet_aws_strf (errmsg, "credential_process \"%s\" ends with a lone backslash", cmd);
          goto fail;
        }
        Pallet_aws_buf_add (&w, ++p, 1);
      }
      else
        Pallet_aws_buf_add (&w, p, 1);
      Pallet_aws_buf_reserve (&w, 1); /* "" is a word too */
    }
  }
  if (!argv || w.oom || (in_word && !quote && push_word (&argv, &n, &w) < 0)) {
    Pallet_aws_strf (errmsg, "out of memory splitting credential_process");
    goto fail;
  }
  if (quote) {
    Pallet_aws_strf (errmsg, "credential_process \"%s\" has an unclosed %c quote; close it", cmd,
                     quote);
    goto fail;
  }
  if (n == 0) {
    Pallet_aws_strf (errmsg, "credential_process is empty; give the command to run");
    goto fail;
  }
  Pallet_aws_buf_free (&w);
  return argv;
fail:
  Pallet_aws_buf_free (&w);
  Pallet_aws_argv_free (argv);
  return NULL;
}

static long
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Reads stdout and stderr until both close or the deadline; 0, or -1 on
 * timeout / too much output. */
static int
collect (int *out_fd, int *err_fd, struct Pallet_aws_buf *out, struct Pallet_aws_buf *err,
         const char **why)
{
  struct pollfd pf[2] = { { *out_fd, POLLIN, 0 }, { *err_fd, POLLIN, 0 } };
  int *fds[2] = { out_fd, err_fd };
  long deadline = now_ms () + PROCESS_TIMEOUT_MS;
  char chunk[4096];
  while (pf[0].fd >= 0 || pf[1].fd >= 0) {
    long left = deadline - now_ms ();
    if (left <= 0) {
      *why = "did not finish within 60 s";
      return -1;
    }
    if (poll (pf, 2, (int) left) < 0 && errno != EINTR) {
      *why = "poll failed";
      return -1;
    }
    for (int i = 0; i < 2; i++) {
      if (pf[i].fd < 0 || !pf[i].revents)
        continue;
      ssize_t r = read (pf[i].fd, chunk, sizeof chunk);
      if (r <= 0) {
        if (r < 0 && errno == EINTR)
          continue;
        close (pf[i].fd);
        pf[i].fd = *fds[i] = -1;
        continue;
      }
      struct Pallet_aws_buf *b = i == 0 ? out : err;
      if (b->len + (size_t) r > PROCESS_MAX_OUTPUT) {
        *why = "wrote more than 1 MiB";
        return -1;
      }
      Pallet_aws_buf_add (b, chunk, (size_t) r);
    }
  }
  OPENSSL_cleanse (chunk, sizeof chunk);
  return 0;
}

/* The last line of what the process wrote to stderr, for the error. */
static const char *
stderr_tail (struct Pallet_aws_buf *err)
{
  const char *s = Pallet_aws_buf_str (err);
  if (!s)
    return "";
  size_t l = strlen (s);
  while (l > 0 && (s[l - 1] == '\n' || s[l - 1] == '\r'))
    err->data[--l] = '\0';
  const char *nl = strrchr (s, '\n');
  return nl ? nl + 1 : s;
}

static int
spawn (char **argv, int out_pipe[2], int err_pipe[2], pid_t *pid)
{
  posix_spawn_file_actions_t fa;
  if (posix_spawn_file_actions_init (&fa) != 0)
    return ENOMEM;
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2 (&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2 (&fa, err_pipe[1], 2);
  posix_spawn_file_actions_addclose (&fa, out_pipe[0]);
  posix_spawn_file_actions_addclose (&fa, err_pipe[0]);
  int e = posix_spawnp (pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  return e;
}

/* Runs it and parses its output.  0, -1 (*errmsg), -2. */
int
Pallet_aws_process_creds (const char *profile, const char *cmd, struct Pallet_aws_creds *out,
                          char **errmsg)
{
  char **argv = Pallet_aws_split_command (cmd, errmsg);
  if (!argv)
    return -1;
  int op[2] = { -1, -1 }, ep[2] = { -1, -1 };
  pid_t pid = -1;
  struct Pallet_aws_buf o = { 0 }, e = { 0 };
  int rc = -1, err = 0;
  const char *why = NULL;
  /* A path that cannot run is said so (posix_spawnp may only report it
   * as exit status 127 of the child). */
  if (strchr (argv[0], '/') && access (argv[0], X_OK) != 0)
    err = errno;
  if (err || pipe2 (op, O_CLOEXEC) < 0 || pipe2 (ep, O_CLOEXEC) < 0
      || (err = spawn (argv, op, ep, &pid))) {
    Pallet_aws_strf (errmsg,
                     "profile \"%s\": cannot run credential_process %s: %s; check the "
                     "program path in credential_process",
                     profile, argv[0], strerror (err ? err : errno));
    goto out;
  }
  close (op[1]);
  close (ep[1]);
  op[1] = ep[1] = -1;
  int crc = collect (&op[0], &ep[0], &o, &e, &why);
  if (crc < 0)
    kill (pid, SIGKILL);
  int st = 0;
  while (waitpid (pid, &st, 0) < 0 && errno == EINTR)
    ;
  if (crc < 0) {
    Pallet_aws_strf (errmsg, "profile \"%s\": credential_process %s %s; it was killed", profile,
                     argv[0], why);
    goto out;
  }
  if (!WIFEXITED (st) || WEXITSTATUS (st) != 0) {
    const char *tail = stderr_tail (&e);
    Pallet_aws_strf (errmsg,
                     "profile \"%s\": credential_process %s %s %d%s%s; fix the command or "
                     "its login",
                     profile, argv[0],
                     WIFEXITED (st) ? "exited with status" : "was killed by signal",
                     WIFEXITED (st) ? WEXITSTATUS (st) : WTERMSIG (st), *tail ? ": " : "", tail);
    goto out;
  }
  rc = Pallet_aws_creds_from_json (Pallet_aws_buf_str (&o), o.len, "process", out, errmsg);
  if (rc == -1) {
    char *inner = *errmsg;
    *errmsg = NULL;
    Pallet_aws_strf (errmsg, "profile \"%s\": credential_process %s: %s", profile, argv[0],
                     inner ? inner : "bad output");
    free (inner);
  }
out:
  for (int i = 0; i < 2; i++) {
    if (op[i] >= 0)
      close (op[i]);
    if (ep[i] >= 0)
      close (ep[i]);
  }
  if (o.data)
    OPENSSL_cleanse (o.data, o.cap);
  Pallet_aws_buf_free (&o);
  Pallet_aws_buf_free (&e);
  Pallet_aws_argv_free (argv);
  return rc;
}
