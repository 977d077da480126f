/* SPDX-License-Identifier: Apache-2.0 */
/* Calling the provider: every call runs in a forked child, so a crash or a
 * hang becomes a report the parent judges instead of the end of the run. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef VALGRIND_COUNT_ERRORS
#define RUNNING_ON_VALGRIND   0
#define VALGRIND_COUNT_ERRORS 0
#endif

#include "conformance.h"

extern char **environ;

/* enum pc_op is open, then the header's PALLET_OP_LIST order. */
#define PC_OP_NAME(name, NAME) [PC_OP_##NAME] = #name,
const char *const pc_op_names[PC_OP_COUNT] = { [PC_OP_OPEN] = "open", PALLET_OP_LIST (PC_OP_NAME) };

pallet_validate_fn *
pc_op_fn (enum pc_op op)
{
  switch (op) {
  case PC_OP_VALIDATE: return pc.vt.validate;
  case PC_OP_INVENTORY: return pc.vt.inventory;
  case PC_OP_PREPARE_SOURCE: return pc.vt.prepare_source;
  case PC_OP_TRANSFER: return pc.vt.transfer;
  case PC_OP_CONVERT: return pc.vt.convert;
  case PC_OP_BUILD_VM: return pc.vt.build_vm;
  case PC_OP_CLEANUP: return pc.vt.cleanup;
  case PC_OP_OPEN:
  case PC_OP_COUNT: break;
  }
  return NULL;
}

bool
pc_op_present (enum pc_op op)
{
  if (op == PC_OP_OPEN)
    return pc.vt.open != NULL && pc.vt.close != NULL;
  return pc_op_fn (op) != NULL && pc.vt.open != NULL && pc.vt.close != NULL;
}

bool
pc_op_per_vm (enum pc_op op)
{
  return op != PC_OP_OPEN && op != PC_OP_INVENTORY;
}

#define STATUS_NAME(name, num, text) [num] = "PALLET_" #name,
static const char *const status_names[PALLET_E_LAST] = { PALLET_STATUS_LIST (STATUS_NAME) };

const char *
pc_status_name (int status)
{
  if (status >= 0 && status < PALLET_E_LAST)
    return status_names[status];
  return "not a pallet_status";
}

int
pc_status_of (const json_t *report)
{
  json_t *s = json_object_get (report, "status");
  return json_is_integer (s) ? (int) json_integer_value (s) : -1;
}

json_t *
pc_report_state (const json_t *report)
{
  json_t *emits = json_object_get (report, "emits"), *e, *last = NULL;
  size_t i;
  json_array_foreach (emits, i, e)
    if (json_integer_value (json_object_get (e, "kind")) == PALLET_EMIT_STATE
        && json_object_get (e, "value"))
      last = json_object_get (e, "value");
  return last;
}

char *
pc_describe (const json_t *report)
{
  char *s = NULL;
  const char *why;
  int r;
  if ((why = json_string_value (json_object_get (report, "crash"))))
    r = asprintf (&s, "crashed (%s)", why);
  else if ((why = json_string_value (json_object_get (report, "input_abuse"))))
    r = asprintf (&s, "%s", why);
  else if ((why = json_string_value (json_object_get (report, "hang"))))
    r = asprintf (&s, "hung (%s)", why);
  else if ((why = json_string_value (json_object_get (report, "open_failed"))))
    r = asprintf (&s, "could not open a session with the fixture's config (%s)", why);
  else if (json_is_true (json_object_get (report, "absent")))
    r = asprintf (&s, "op absent (NULL in the vtable)");
  else if (json_object_get (report, "opened"))
    r = asprintf (&s, "open returned %s%s%s%s",
                  json_is_true (json_object_get (report, "opened")) ? "a handle" : "NULL",
                  json_is_object (json_object_get (report, "error")) ? " with message \""
                                                                     : " without a message",
                  json_is_object (json_object_get (report, "error")) ? json_string_value (
                      json_object_get (json_object_get (report, "error"), "message"))
                                                                     : "",
                  json_is_object (json_object_get (report, "error")) ? "\"" : "");
  else {
    int st = pc_status_of (report);
    json_t *err = json_object_get (report, "error");
    const char *msg = json_string_value (json_object_get (err, "message"));
    if (msg && strlen (msg) > 200)
      r = asprintf (&s, "returned %s (%d) with message \"%.200s...\"", pc_status_name (st), st,
                    msg);
    else
      r = asprintf (&s, "returned %s (%d) %s%s%s", pc_status_name (st), st,
                    msg ? "with message \"" : "without a message", msg ? msg : "", msg ? "\"" : "");
  }
  return r < 0 ? NULL : s;
}

/* ---- children ---- */

static bool
write_all (int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write (fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    p += w;
    n -= (size_t) w;
  }
  return true;
}

/* Reads fd to EOF or until the deadline; returns the text (malloc'd) and
 * sets *late if the deadline passed first. */
static char *
read_until (int fd, unsigned timeout_s, bool *late)
{
  size_t len = 0, cap = 4096;
  char *buf = malloc (cap);
  struct timespec start;
  clock_gettime (CLOCK_MONOTONIC, &start);
  *late = false;
  if (buf == NULL)
    return NULL;
  for (;;) {
    double left = (double) timeout_s * 1000.0 - pc_elapsed_ms (&start);
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int pr;
    if (left <= 0) {
      *late = true;
      break;
    }
    pr = poll (&pfd, 1, left > 1000 ? 1000 : (int) left + 1);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr < 0)
      break;
    if (pr == 0)
      continue;
    if (len + 4096 > cap) {
      char *nb = realloc (buf, cap * 2);
      if (nb == NULL)
        break;
      buf = nb;
      cap *= 2;
    }
    ssize_t n = read (fd, buf + len, cap - len - 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t) n;
  }
  buf[len] = '\0';
  return buf;
}

static json_t *bad_end (const char *key, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
static json_t *
bad_end (const char *key, const char *fmt, ...)
{
  char *s = NULL;
  va_list ap;
  json_t *r;
  va_start (ap, fmt);
  if (vasprintf (&s, fmt, ap) < 0)
    s = NULL;
  va_end (ap);
  r = json_pack ("{so}", key, pc_text (s ? s : "?"));
  free (s);
  return r;
}

json_t *
pc_in_child (json_t *(*fn) (void *), void *arg, unsigned timeout_s)
{
  int fds[2], status;
  pid_t pid;
  char *text;
  bool late;
  json_t *r;
  json_error_t err;

  if (timeout_s == 0)
    timeout_s = pc.fx.call_timeout_s;
  if (pipe2 (fds, O_CLOEXEC) == -1)
    return bad_end ("crash", "pipe: %s", strerror (errno));
  fflush (NULL);
  pid = fork ();
  if (pid == -1) {
    close (fds[0]);
    close (fds[1]);
    return bad_end ("crash", "fork: %s", strerror (errno));
  }
  if (pid == 0) {
    char *s;
    close (fds[0]);
    /* The backstop: the parent kills us at the deadline anyway. */
    alarm (timeout_s + 5);
    unsigned errors = RUNNING_ON_VALGRIND ? VALGRIND_COUNT_ERRORS : 0;
    r = fn (arg);
    /* Memcheck's errors during the call.  Its leak report when this
     * child exits is not about the call: it sees the parent's heap as
     * forked, with pointers the parent held in registers, as lost. */
    if (RUNNING_ON_VALGRIND && json_is_object (r))
      json_object_set_new (r, "memcheck_errors",
                           json_integer ((json_int_t) (VALGRIND_COUNT_ERRORS - errors)));
    s = json_dumps (r, JSON_COMPACT);
    json_decref (r);
    if (s == NULL || !write_all (fds[1], s, strlen (s)))
      _exit (3);
    free (s);
    close (fds[1]);
    fflush (NULL);
    _exit (0);
  }
  close (fds[1]);
  text = read_until (fds[0], timeout_s, &late);
  close (fds[0]);
  if (late)
    kill (pid, SIGKILL);
  while (waitpid (pid, &status, 0) == -1 && errno == EINTR)
    ;
  if (late)
    r = bad_end ("hang", "no answer after %u s; killed", timeout_s);
  else if (WIFSIGNALED (status) && WTERMSIG (status) == SIGALRM)
    r = bad_end ("hang", "no answer after %u s", timeout_s);
  else if (WIFEXITED (status) && WEXITSTATUS (status) == PC_EXIT_WROTE)
    r = bad_end ("input_abuse", "the provider wrote to a host-owned input "
                                "(the input text is read-only: copy it, or parse it with "
                                "jansson, before changing it)");
  else if (WIFEXITED (status) && WEXITSTATUS (status) == PC_EXIT_FREED)
    r = bad_end ("input_abuse", "the provider freed a host-owned input (the "
                                "host owns input_json and config_json: never free them)");
  else if (WIFSIGNALED (status))
    r = bad_end ("crash", "killed by signal %d, %s", WTERMSIG (status),
                 strsignal (WTERMSIG (status)));
  else if (WEXITSTATUS (status) != 0 && text && (r = json_loads (text, 0, &err)) != NULL) {
    /* The call returned and reported.  Under valgrind, the exit status is
     * memcheck's verdict on the forked heap (see above): the errors that
     * count are those during the call. */
    json_t *me = json_object_get (r, "memcheck_errors");
    if (!json_is_integer (me) || json_integer_value (me) > 0) {
      pc_fail (pc_current_check (), "a provider call makes no memory errors (valgrind, ASan)",
               __FILE__, __LINE__,
               "a child process exited with status %d "
               "after reporting its call%s; see the log above",
               WEXITSTATUS (status), json_is_integer (me) ? " with memcheck errors during it" : "");
    }
  }
  else if (WEXITSTATUS (status) != 0)
    r = bad_end ("crash", "the process exited with status %d during the call",
                 WEXITSTATUS (status));
  else if (text == NULL || (r = json_loads (text, 0, &err)) == NULL)
    r = bad_end ("crash", "the process exited without a report");
  free (text);
  return r;
}

/* ---- host-owned inputs in read-only pages ---- */

/* The guarded copies of this child: [guard, data, end) each. */
#define GUARDED 8
static uintptr_t guarded[GUARDED][3];
static unsigned nguarded;

static void
on_segv (int sig, siginfo_t *si, void *ctx)
{
  uintptr_t a = (uintptr_t) si->si_addr;
  (void) ctx;
  for (unsigned i = 0; i < nguarded && i < GUARDED; i++) {
    if (a >= guarded[i][1] && a < guarded[i][2])
      _exit (PC_EXIT_WROTE);
    /* free() reads the chunk header just before the pointer. */
    if (a >= guarded[i][0] && a < guarded[i][1])
      _exit (PC_EXIT_FREED);
  }
  signal (sig, SIG_DFL); /* any other fault: crash as it would */
}

void
pc_guard_inputs (void)
{
  struct sigaction sa;
  memset (&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGSEGV, &sa, NULL);
  sigaction (SIGBUS, &sa, NULL);
}

const char *
pc_ro_copy (const char *text)
{
  size_t page = (size_t) sysconf (_SC_PAGESIZE), len = strlen (text) + 1;
  size_t data = (len + page - 1) / page * page;
  char *m = mmap (NULL, page + data, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    return text;
  memcpy (m + page, text, len);
  if (mprotect (m, page, PROT_NONE) != 0 || mprotect (m + page, data, PROT_READ) != 0)
    return text;
  /* The oldest entry gives way: a child guards a handful of inputs. */
  unsigned i = nguarded++ % GUARDED;
  guarded[i][0] = (uintptr_t) m;
  guarded[i][1] = (uintptr_t) m + page;
  guarded[i][2] = (uintptr_t) m + page + data;
  return m + page;
}

/* ---- one op call ---- */

/* The provider's writes to fd 1 go to a memory file during the call:
 * a provider never prints (the host's stdout may be a protocol). */
static int
capture_stdout (void)
{
  int fd = memfd_create ("pallet-conformance-stdout", MFD_CLOEXEC);
  fflush (stdout);
  if (fd >= 0 && dup2 (fd, 1) < 0) {
    close (fd);
    return -1;
  }
  return fd;
}

static void
report_stdout (int fd, json_t *r)
{
  char buf[121];
  ssize_t n;
  off_t size;
  if (fd < 0)
    return;
  fflush (stdout);
  size = lseek (fd, 0, SEEK_END);
  if (size > 0 && lseek (fd, 0, SEEK_SET) == 0 && (n = read (fd, buf, sizeof buf - 1)) > 0) {
    buf[n] = '\0';
    json_object_set_new (r, "stdout",
                         json_pack ("{sI so}", "bytes", (json_int_t) size, "head", pc_text (buf)));
  }
  close (fd);
}

static json_t *
invoke_child (void *arg)
{
  const struct pc_req *req = arg;
  struct pc_call oc, *c;
  void *h;
  json_t *r;
  pallet_validate_fn *fn;
  int out = capture_stdout ();
  const char *input = pc_ro_copy (req->input);
  const char *config = pc_ro_copy (pc.fx.config_text);

  pc_guard_inputs ();
  pc_call_init (&oc, "open");
  oc.dirs = req->dirs;
  if (req->op == PC_OP_OPEN) {
    oc.cancel = req->cancel;
    oc.cancel_after_ms = req->cancel_after_ms;
    h = pc.vt.open (&oc.call, input);
    r = pc_call_report (&oc, h ? PALLET_OK : PALLET_E_FAILED);
    json_object_set_new (r, "opened", json_boolean (h != NULL));
    pc_call_free (&oc);
    if (h)
      pc.vt.close (h);
    report_stdout (out, r);
    return r;
  }
  fn = pc_op_fn (req->op);
  if (fn == NULL || !pc_op_present (req->op)) {
    pc_call_free (&oc);
    return json_pack ("{sb}", "absent", 1);
  }
  h = pc.vt.open (&oc.call, config);
  if (h == NULL) {
    r = json_pack ("{so}", "open_failed",
                   pc_text (oc.error_msg ? oc.error_msg : "open returned NULL without a message"));
    pc_call_free (&oc);
    return r;
  }
  pc_call_free (&oc);
  /* On the heap and never reused: a service called with it after the
   * call returned (from a thread the provider left running) is stale. */
  c = malloc (sizeof *c);
  if (c == NULL)
    return json_pack ("{ss}", "crash", "out of memory");
  pc_call_init (c, pc_op_names[req->op]);
  c->cancel = req->cancel;
  c->cancel_after_ms = req->cancel_after_ms;
  c->dirs = req->dirs;
  int st = fn (h, &c->call, input);
  r = pc_call_report (c, st);
  pc_call_end (c);
  pc.vt.close (h);
  report_stdout (out, r);
  if (pc_stale_uses)
    json_object_set_new (r, "stale_uses", json_integer (pc_stale_uses));
  return r;
}

json_t *
pc_invoke (const struct pc_req *req)
{
  json_t *r = pc_in_child (invoke_child, (void *) req, req->timeout_s);
  if (pc.verbose) {
    char *d = pc_describe (r);
    fprintf (stderr, "  call %s: %s\n", pc_op_names[req->op], d ? d : "?");
    free (d);
  }
  return r;
}

char *
pc_vm_input_ex (const json_t *vm, const json_t *state, const char *uid, enum pc_op op,
                bool rollback, bool succeeded)
{
  json_t *st = state ? json_incref ((json_t *) state) : json_object ();
  /* The options the real host sends (host-shim's driver). */
  json_t *in =
      json_pack ("{sO sO so s{ss sb sb ss si sb sb}}", "plan", pc.fx.plan, "vm", vm, "state", st,
                 "options", "migrationUID", uid, "cancelled", 0, "rollback", rollback, "step",
                 pc_op_names[op], "attempt", 1, "succeeded", succeeded, "cutover", 0);
  char *s;
  if (in == NULL)
    return NULL;
  s = json_dumps (in, JSON_COMPACT);
  json_decref (in);
  return s;
}

char *
pc_vm_input (const json_t *vm, const json_t *state, const char *uid)
{
  return pc_vm_input_ex (vm, state, uid, PC_OP_VALIDATE, false, false);
}

/* ---- the resource counter ---- */

json_t *
pc_count (char **why)
{
  posix_spawn_file_actions_t fa;
  int fds[2], status, e;
  pid_t pid;
  char *text;
  bool late;
  json_t *r;
  json_error_t err;

  *why = NULL;
  if (pc.fx.count_argv == NULL)
    return NULL;
  if (pipe2 (fds, O_CLOEXEC) == -1) {
    if (asprintf (why, "count_command: pipe: %s", strerror (errno)) < 0)
      *why = NULL;
    return NULL;
  }
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_adddup2 (&fa, fds[1], 1);
  fflush (NULL);
  e = posix_spawnp (&pid, pc.fx.count_argv[0], &fa, NULL, pc.fx.count_argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  close (fds[1]);
  if (e != 0) {
    close (fds[0]);
    if (asprintf (why,
                  "count_command %s: cannot run it: %s; fix the "
                  "fixture's count_command",
                  pc.fx.count_argv[0], strerror (e))
        < 0)
      *why = NULL;
    return NULL;
  }
  text = read_until (fds[0], 120, &late);
  close (fds[0]);
  if (late)
    kill (pid, SIGKILL);
  while (waitpid (pid, &status, 0) == -1 && errno == EINTR)
    ;
  r = NULL;
  e = 0;
  if (late)
    e = asprintf (why, "count_command %s: no answer after 120 s", pc.fx.count_argv[0]);
  else if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    e = asprintf (why,
                  "count_command %s: failed (wait status %d); run it by "
                  "hand to see why",
                  pc.fx.count_argv[0], status);
  else if (text == NULL || (r = json_loads (text, JSON_DECODE_ANY, &err)) == NULL)
    e = asprintf (why,
                  "count_command %s: its output is not JSON (%s); it "
                  "must print a JSON object or a number",
                  pc.fx.count_argv[0], text ? err.text : "no output");
  else if (!json_is_object (r) && !json_is_number (r)) {
    json_decref (r);
    r = NULL;
    e = asprintf (why,
                  "count_command %s: printed neither a JSON object nor "
                  "a number",
                  pc.fx.count_argv[0]);
  }
  if (r == NULL && e < 0)
    *why = NULL;
  free (text);
  return r;
}
