/* SPDX-License-Identifier: Apache-2.0 */
/* pallet doctor: can conversions run on this host?  Fast checks (no
 * appliance boot unless --deep), each reported as OK / WARN / FAIL with
 * the fix.  The checks report through a callback; only the renderers at
 * the end of this file print. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <linux/kvm.h>

#include "pallet/host.h"
#include "cli-verbs.h"

extern char **environ;

enum doc_status { DOC_OK, DOC_WARN, DOC_FAIL };
static const char *const doc_status_name[] = { "OK", "WARN", "FAIL" };

typedef void (*doc_report_fn) (void *opaque, enum doc_status st, const char *check,
                               const char *message, const char *fix);

struct doc_ctx {
  const char *boot_dir, *modules_dir;
  uint64_t min_free; /* FAIL below; WARN below 4 times this */
  const char **dirs; /* extra work dirs (--dir) */
  size_t ndirs;
  doc_report_fn report;
  void *opaque;
};

/* printf into a report: message and fix are formatted separately. */
static void say (const struct doc_ctx *c, enum doc_status st, const char *check, const char *fix,
                 const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));
static void
say (const struct doc_ctx *c, enum doc_status st, const char *check, const char *fix,
     const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  c->report (c->opaque, st, check, msg, fix);
}

/* Runs argv (PATH lookup), stdout and stderr into out (NUL-terminated,
 * truncated).  Returns the exit status, -1 if it could not run (errno),
 * -2 on timeout (the process group is killed). */
static int
run_capture (char *const argv[], int timeout_s, char *out, size_t outsz)
{
  int fds[2], st = 0, r;
  size_t len = 0;
  pid_t pid;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t sa;

  out[0] = '\0';
  if (pipe2 (fds, O_CLOEXEC) != 0)
    return -1;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_adddup2 (&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2 (&fa, fds[1], 2);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawnattr_init (&sa);
  posix_spawnattr_setflags (&sa, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup (&sa, 0);
  r = posix_spawnp (&pid, argv[0], &fa, &sa, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  posix_spawnattr_destroy (&sa);
  close (fds[1]);
  if (r != 0) {
    close (fds[0]);
    errno = r;
    return -1;
  }
  time_t deadline = time (NULL) + timeout_s;
  for (;;) {
    struct pollfd p = { fds[0], POLLIN, 0 };
    long left = (long) (deadline - time (NULL));
    if (left <= 0 || poll (&p, 1, (int) left * 1000) == 0) {
      kill (-pid, SIGKILL);
      waitpid (pid, &st, 0);
      close (fds[0]);
      return -2;
    }
    char buf[4096];
    ssize_t n = read (fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    size_t keep = (size_t) n < outsz - 1 - len ? (size_t) n : outsz - 1 - len;
    memcpy (out + len, buf, keep);
    len += keep;
    out[len] = '\0';
  }
  close (fds[0]);
  while (waitpid (pid, &st, 0) == -1)
    if (errno != EINTR)
      return -1;
  return WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
}

/* The first line of s, without its newline, in buf. */
static const char *
first_line (const char *s, char *buf, size_t n)
{
  size_t i = strcspn (s, "\n");
  if (i >= n)
    i = n - 1;
  memcpy (buf, s, i);
  buf[i] = '\0';
  return buf;
}

/* Compares kernel versions the way sort -V would, near enough
 * (digits numerically). */
static int
version_cmp (const char *a, const char *b)
{
  while (*a && *b) {
    if (isdigit ((unsigned char) *a) && isdigit ((unsigned char) *b)) {
      char *ea, *eb;
      unsigned long long x = strtoull (a, &ea, 10), y = strtoull (b, &eb, 10);
      if (x != y)
        return x < y ? -1 : 1;
      a = ea, b = eb;
    }
    else {
      if (*a != *b)
        return (unsigned char) *a < (unsigned char) *b ? -1 : 1;
      a++, b++;
    }
  }
  return *a ? 1 : *b ? -1 : 0;
}

/* What supermin builds the appliance from: $SUPERMIN_KERNEL, else the
 * newest BOOT/vmlinuz-V that has MODULES/V. */
static void
check_kernel (const struct doc_ctx *c)
{
  static const char fix[] =
      "apt-get install linux-image-amd64 (or run "
      "scripts/install-deps.sh); supermin boots the host's kernel in the appliance";
  const char *env = getenv ("SUPERMIN_KERNEL");
  if (env && *env) {
    if (access (env, R_OK) == 0)
      say (c, DOC_OK, "kernel", NULL, "appliance kernel %s (SUPERMIN_KERNEL)", env);
    else
      say (c, DOC_FAIL, "kernel", "unset SUPERMIN_KERNEL or point it at a readable kernel",
           "SUPERMIN_KERNEL=%s: %s", env, strerror (errno));
    return;
  }
  DIR *d = opendir (c->boot_dir);
  char best[NAME_MAX + 1] = "";
  struct dirent *e;
  while (d && (e = readdir (d)) != NULL) {
    char mod[PATH_MAX];
    struct stat sb;
    if (strncmp (e->d_name, "vmlinuz-", 8) != 0)
      continue;
    snprintf (mod, sizeof mod, "%s/%s", c->modules_dir, e->d_name + 8);
    if (stat (mod, &sb) == 0 && S_ISDIR (sb.st_mode)
        && (!*best || version_cmp (e->d_name + 8, best + 8) > 0))
      snprintf (best, sizeof best, "%s", e->d_name);
  }
  if (d)
    closedir (d);
  if (!*best) {
    say (c, DOC_FAIL, "kernel", fix,
         "no kernel for the libguestfs appliance: no "
         "%s/vmlinuz-VERSION with a %s/VERSION directory (supermin: \"failed to find "
         "a suitable kernel\")",
         c->boot_dir, c->modules_dir);
    return;
  }
  char path[PATH_MAX];
  snprintf (path, sizeof path, "%s/%s", c->boot_dir, best);
  if (access (path, R_OK) != 0)
    say (c, DOC_FAIL, "kernel", "run as root, or chmod 0644 the kernel (supermin reads it)",
         "appliance kernel %s is not readable: %s", path, strerror (errno));
  else
    say (c, DOC_OK, "kernel", NULL, "appliance kernel %s (modules in %s/%s)", path, c->modules_dir,
         best + 8);
}

/* Whether QEMU can start a KVM vCPU: some nested set-ups open /dev/kvm
 * and create VMs, then abort QEMU when it loads the vCPU's MSRs ("failed
 * to set MSR").  -S stops before running guest code, after that load: a
 * QEMU still alive after 2 s passed it. */
static const char *
qemu_kvm_problem (char *buf, size_t n)
{
  char out[4096], line[200];
  char *argv[] = { (char *) "qemu-system-x86_64",
                   (char *) "-machine",
                   (char *) "accel=kvm",
                   (char *) "-cpu",
                   (char *) "host",
                   (char *) "-m",
                   (char *) "64",
                   (char *) "-display",
                   (char *) "none",
                   (char *) "-nodefaults",
                   (char *) "-S",
                   NULL };
  int r = run_capture (argv, 2, out, sizeof out);
  if (r == -2)
    return NULL;
  if (r == -1)
    snprintf (buf, n, "qemu-system-x86_64 not found on PATH");
  else
    snprintf (buf, n, "QEMU cannot run a KVM guest here (%s: %s)",
              r > 128 ? "killed by a signal" : "exited", first_line (out, line, sizeof line));
  return buf;
}

/* Whether KVM can run a VM here: NULL if so, else why not.  Opening
 * /dev/kvm is not enough (nested virtualisation may be off). */
static const char *
kvm_problem (char *buf, size_t n, int *fatal)
{
  int fd = open ("/dev/kvm", O_RDWR | O_CLOEXEC), vm, ok = 0;
  if (fd < 0) {
    snprintf (buf, n, "/dev/kvm: %s", strerror (errno));
    return buf;
  }
  if (ioctl (fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
    snprintf (buf, n, "/dev/kvm is not a KVM device (KVM_GET_API_VERSION: %s)", strerror (errno));
  else if ((vm = ioctl (fd, KVM_CREATE_VM, 0)) < 0)
    snprintf (buf, n, "/dev/kvm cannot create a VM: %s", strerror (errno));
  else {
    close (vm);
    ok = 1;
  }
  close (fd);
  /* libguestfs falls back to TCG when KVM is absent, not when QEMU aborts. */
  *fatal = ok;
  return ok ? qemu_kvm_problem (buf, n) : buf;
}

static void
check_kvm (const struct doc_ctx *c)
{
  const char *settings = getenv ("LIBGUESTFS_BACKEND_SETTINGS");
  int forced = settings && strstr (settings, "force_tcg");
  char why[512];
  if (forced) {
    say (c, DOC_OK, "kvm", NULL,
         "TCG forced (LIBGUESTFS_BACKEND_SETTINGS=%s): KVM not "
         "checked",
         settings);
    return;
  }
  int fatal = 0;
  const char *problem = kvm_problem (why, sizeof why, &fatal);
  if (problem == NULL)
    say (c, DOC_OK, "kvm", NULL, "KVM is usable: the appliance runs under KVM");
  else if (fatal)
    say (c, DOC_FAIL, "kvm",
         "force TCG: set the Provider setting force-tcg: \"true\", or "
         "export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg",
         "%s: libguestfs would try KVM and its QEMU would abort", problem);
  else
    say (c, DOC_WARN, "kvm",
         "give this user /dev/kvm (group kvm), or accept TCG (the "
         "Provider setting force-tcg: \"true\", or LIBGUESTFS_BACKEND_SETTINGS=force_tcg)",
         "%s: the appliance and conversions run under TCG (software emulation, "
         "several times slower)",
         problem);
}

static void
check_backend (const struct doc_ctx *c)
{
  const char *b = getenv ("LIBGUESTFS_BACKEND");
  if (b == NULL || *b == '\0' || strcmp (b, "direct") == 0)
    say (c, DOC_OK, "backend", NULL, "libguestfs backend %s",
         b && *b ? "direct" : "default (direct on Debian)");
  else if (strncmp (b, "libvirt", 7) == 0)
    say (c, DOC_WARN, "backend", "export LIBGUESTFS_BACKEND=direct unless libvirtd runs here",
         "LIBGUESTFS_BACKEND=%s: needs a running libvirtd", b);
  else
    say (c, DOC_FAIL, "backend", "export LIBGUESTFS_BACKEND=direct (or unset it)",
         "LIBGUESTFS_BACKEND=%s is not a libguestfs backend (direct, libvirt, "
         "libvirt:URI)",
         b);
}

static void
check_program_version (const struct doc_ctx *c, const char *prog, const char *pkg)
{
  char out[4096], line[256], fix[128];
  char *argv[] = { (char *) prog, (char *) "--version", NULL };
  int r = run_capture (argv, 30, out, sizeof out);
  snprintf (fix, sizeof fix, "apt-get install %s (or run scripts/install-deps.sh)", pkg);
  if (r == -1)
    say (c, DOC_FAIL, prog, fix, "%s not found on PATH: %s", prog, strerror (errno));
  else if (r != 0)
    say (c, DOC_FAIL, prog, fix, "%s --version failed (%s): %s", prog,
         r == -2 ? "timed out" : "exit status", first_line (out, line, sizeof line));
  else
    say (c, DOC_OK, prog, NULL, "%s", first_line (out, line, sizeof line));
}

static void
check_nbdkit (const struct doc_ctx *c)
{
  static const struct {
    const char *name, *use;
    enum doc_status missing;
    const char *fix;
  } plugins[] = {
    { "curl", "HTTPS sources (vCenter/ESXi disks, URLs)", DOC_FAIL,
      "apt-get install nbdkit (Debian builds the curl plugin into it)" },
    { "ssh", "SSH sources (-i vmx over ssh, Xen)", DOC_FAIL,
      "apt-get install nbdkit (Debian builds the ssh plugin into it)" },
    { "vddk", "VMware VDDK transfers", DOC_WARN,
      "only if you need VDDK: build nbdkit's vddk plugin against VMware's VDDK; "
      "vSphere disks are read over HTTPS (curl) without it, more slowly" },
  };
  char out[8192], line[256];
  char *argv[] = { (char *) "nbdkit", (char *) "--version", NULL };
  int r = run_capture (argv, 30, out, sizeof out);
  if (r != 0) {
    say (c, DOC_FAIL, "nbdkit", "apt-get install nbdkit (or run scripts/install-deps.sh)",
         "nbdkit %s", r == -1 ? "not found on PATH" : "--version failed");
    return;
  }
  say (c, DOC_OK, "nbdkit", NULL, "%s", first_line (out, line, sizeof line));
  for (size_t i = 0; i < sizeof plugins / sizeof plugins[0]; i++) {
    char check[32];
    char *pargv[] = { (char *) "nbdkit", (char *) plugins[i].name, (char *) "--dump-plugin", NULL };
    snprintf (check, sizeof check, "nbdkit-%s", plugins[i].name);
    /* --dump-plugin loads it: a plugin whose libraries are missing fails too. */
    r = run_capture (pargv, 30, out, sizeof out);
    if (r == 0)
      say (c, DOC_OK, check, NULL, "nbdkit %s plugin loads (%s)", plugins[i].name, plugins[i].use);
    else
      say (c, plugins[i].missing, check, plugins[i].fix, "nbdkit %s plugin missing: %s %s",
           plugins[i].name, plugins[i].use,
           plugins[i].missing == DOC_WARN ? "are not available (Debian's nbdkit has no VDDK plugin)"
                                          : "cannot be converted");
  }
}

/* dir is what var names (an environment variable or option); it holds what. */
static void
check_free (const struct doc_ctx *c, const char *dir, const char *var, const char *what)
{
  struct statvfs sv;
  char fix[512];
  if (statvfs (dir, &sv) != 0) {
    snprintf (fix, sizeof fix, "create %s, or point %s elsewhere", dir, var);
    say (c, DOC_FAIL, "space", fix, "%s (%s: %s): %s", dir, var, what, strerror (errno));
    return;
  }
  uint64_t avail = (uint64_t) sv.f_bavail * sv.f_frsize;
  snprintf (fix, sizeof fix, "free space in %s, or point %s at a larger file system", dir, var);
  enum doc_status st = avail < c->min_free ? DOC_FAIL : avail / 4 < c->min_free ? DOC_WARN : DOC_OK;
  say (c, st, "space", st == DOC_OK ? NULL : fix, "%s (%s: %s): %.1f GiB free%s", dir, var, what,
       (double) avail / (1 << 30),
       st == DOC_OK     ? ""
       : st == DOC_FAIL ? ", below the minimum"
                        : ", little above the minimum");
}

static void
check_space (const struct doc_ctx *c)
{
  const char *tmp = getenv ("TMPDIR"), *cache = getenv ("LIBGUESTFS_CACHEDIR");
  if (tmp == NULL || *tmp == '\0')
    tmp = "/var/tmp";
  check_free (c, tmp, "TMPDIR", "virt-v2v's overlays, the appliance");
  if (cache && *cache && strcmp (cache, tmp) != 0)
    check_free (c, cache, "LIBGUESTFS_CACHEDIR", "the appliance");
  check_free (c, ".", "--state-dir", "the default state dir");
  for (size_t i = 0; i < c->ndirs; i++)
    check_free (c, c->dirs[i], "--dir", "disks and manifests");
}

static void
check_windows (const struct doc_ctx *c)
{
  struct stat sb;
  if (stat ("/usr/share/virtio-win", &sb) == 0)
    say (c, DOC_OK, "windows", NULL, "virtio-win drivers in /usr/share/virtio-win");
  else
    say (c, DOC_WARN, "windows",
         "install virtio-win and rhsrvany (not packaged by Debian) "
         "if you convert Windows guests",
         "no /usr/share/virtio-win: Windows guests cannot "
         "be converted (Linux guests can)");
}

/* Boots the appliance, as libguestfs-test-tool does. */
static void
check_deep (const struct doc_ctx *c)
{
  static char out[1 << 16];
  char *argv[] = { (char *) "libguestfs-test-tool", (char *) "-t", (char *) "600", NULL };
  int r = run_capture (argv, 660, out, sizeof out);
  if (r == 0) {
    say (c, DOC_OK, "appliance", NULL, "libguestfs-test-tool booted the appliance");
    return;
  }
  /* The first line that names an error: the later ones only say "see
   * earlier error messages". */
  const char *why = "no error line in its output";
  char *save = NULL;
  for (char *l = strtok_r (out, "\n", &save); l; l = strtok_r (NULL, "\n", &save))
    if (strstr (l, "error") || strstr (l, "Assertion")) {
      why = l;
      break;
    }
  say (c, DOC_FAIL, "appliance",
       "see the lines above, then `libguestfs-test-tool` for the "
       "whole log",
       "libguestfs-test-tool %s: %s",
       r == -1   ? "not found"
       : r == -2 ? "timed out"
                 : "failed",
       why);
}

/* -------------------------------------------------------------------- */

struct render {
  int json;
  unsigned counts[3];
  json_t *list;
};

static void
render_line (void *opaque, enum doc_status st, const char *check, const char *message,
             const char *fix)
{
  struct render *r = opaque;
  r->counts[st]++;
  if (r->json) {
    json_array_append_new (r->list,
                           json_pack ("{s:s, s:s, s:s, s:s?}", "check", check, "status",
                                      doc_status_name[st], "message", message, "fix", fix));
    return;
  }
  printf ("%-4s %-18s %s\n", doc_status_name[st], check, message);
  if (fix)
    printf ("     %-18s fix: %s\n", "", fix);
  fflush (stdout);
}

static int
parse_size (const char *s, uint64_t *out)
{
  char *end;
  errno = 0;
  unsigned long long v = strtoull (s, &end, 10);
  int shift = 0;
  switch (*end) {
  case 'K':
    shift = 10;
    end++;
    break;
  case 'M':
    shift = 20;
    end++;
    break;
  case 'G':
    shift = 30;
    end++;
    break;
  case 'T':
    shift = 40;
    end++;
    break;
  }
  if (errno || end == s || *end || s[0] == '-' || (shift && v > (UINT64_MAX >> shift)))
    return -1;
  *out = (uint64_t) v << shift;
  return 0;
}

static const char doctor_help[] =
    "Usage: pallet doctor [--deep] [-o text|json] [--dir DIR]... [--min-free SIZE]\n"
    "                     [--boot-dir DIR] [--modules-dir DIR]\n"
    "Checks that conversions can run on this host, in seconds: the kernel the\n"
    "libguestfs appliance boots, /dev/kvm or TCG, virt-v2v and virt-v2v-in-place,\n"
    "nbdkit and its curl, ssh and vddk plugins, free space in TMPDIR,\n"
    "LIBGUESTFS_CACHEDIR, the current directory and each --dir, Windows drivers.\n"
    "Each line is OK, WARN or FAIL, with the fix.  --deep also boots the\n"
    "appliance (libguestfs-test-tool; a minute or more under TCG).\n"
    "  --min-free SIZE   FAIL below SIZE free, WARN below 4 x SIZE (default 1G;\n"
    "                    suffixes K M G T)\n"
    "  --boot-dir DIR    where the kernels are (default /boot)\n"
    "  --modules-dir DIR where their modules are (default /lib/modules)\n"
    "Exit status: 0 no FAIL (WARNs allowed), 1 at least one FAIL, 2 usage error.\n";

int
Pallet_cli_doctor (int argc, char **argv)
{
  static const struct option opts[] = {
    { "deep", no_argument, NULL, 'd' },           { "output", required_argument, NULL, 'o' },
    { "dir", required_argument, NULL, 'D' },      { "min-free", required_argument, NULL, 'm' },
    { "boot-dir", required_argument, NULL, 'b' }, { "modules-dir", required_argument, NULL, 'M' },
    { "help", no_argument, NULL, 'h' },           { NULL, 0, NULL, 0 },
  };
  struct render rd = { 0 };
  struct doc_ctx c = { "/boot", "/lib/modules", 1ULL << 30, NULL, 0, render_line, &rd };
  int deep = 0, opt;
  c.dirs = calloc ((size_t) argc, sizeof *c.dirs);
  if (c.dirs == NULL)
    return PALLET_EXIT_USAGE;
  optind = 1;
  while ((opt = getopt_long (argc, argv, "o:h", opts, NULL)) != -1) {
    switch (opt) {
    case 'd': deep = 1; break;
    case 'D': c.dirs[c.ndirs++] = optarg; break;
    case 'b': c.boot_dir = optarg; break;
    case 'M': c.modules_dir = optarg; break;
    case 'h':
      fputs (doctor_help, stdout);
      free (c.dirs);
      return PALLET_EXIT_OK;
    case 'o':
      if (strcmp (optarg, "json") == 0)
        rd.json = 1;
      else if (strcmp (optarg, "text") != 0) {
        fprintf (stderr, "pallet doctor: -o '%s': expected text or json\n", optarg);
        free (c.dirs);
        return PALLET_EXIT_USAGE;
      }
      break;
    case 'm':
      if (parse_size (optarg, &c.min_free) == 0)
        break;
      fprintf (stderr,
               "pallet doctor: --min-free '%s': expected a size such as 500M "
               "or 2G\n",
               optarg);
      /* fall through */
    default:
      fprintf (stderr, "Try `pallet doctor --help`.\n");
      free (c.dirs);
      return PALLET_EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf (stderr, "pallet doctor: unexpected argument '%s'\nTry `pallet doctor --help`.\n",
             argv[optind]);
    free (c.dirs);
    return PALLET_EXIT_USAGE;
  }
  if (rd.json)
    rd.list = json_array ();
  check_kernel (&c);
  check_kvm (&c);
  check_backend (&c);
  check_program_version (&c, "supermin", "supermin");
  check_program_version (&c, "qemu-system-x86_64", "qemu-system-x86");
  check_program_version (&c, "virt-v2v", "virt-v2v");
  check_program_version (&c, "virt-v2v-in-place", "virt-v2v");
  check_nbdkit (&c);
  check_space (&c);
  check_windows (&c);
  if (deep)
    check_deep (&c);
  if (rd.json) {
    json_t *doc = json_pack ("{s:o, s:I, s:I, s:b}", "checks", rd.list, "failed",
                             (json_int_t) rd.counts[DOC_FAIL], "warnings",
                             (json_int_t) rd.counts[DOC_WARN], "ok", rd.counts[DOC_FAIL] == 0);
    json_dumpf (doc, stdout, JSON_INDENT (2));
    putchar ('\n');
    json_decref (doc);
  }
  else
    printf ("doctor: %u FAIL, %u WARN, %u OK%s\n", rd.counts[DOC_FAIL], rd.counts[DOC_WARN],
            rd.counts[DOC_OK], deep ? "" : " (--deep also boots the appliance)");
  free (c.dirs);
  return rd.counts[DOC_FAIL] ? 1 : PALLET_EXIT_OK;
}
