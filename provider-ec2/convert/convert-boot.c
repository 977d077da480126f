/* SPDX-License-Identifier: Apache-2.0 */
/* Boot verification: the converted guest booted under QEMU on a throwaway
 * overlay, its serial console watched for a login prompt.  Verification
 * of files (convert-verify.c) cannot tell that GRUB finds its root or
 * that systemd reaches multi-user; only a boot can. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "pallet-convert.h"
#include "convert-internal.h"

extern char **environ;

#define BOOT_MAX_DISKS 26
#define LINE_MAX_BYTES 4096
/* A KVM start that fails does so at once (vCPU set-up); give it this long
 * to print anything on the console before a failed exit counts as the
 * guest's own. */
#define KVM_EARLY_SECONDS 15.0

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- OVMF ----------------------------------------------------------------- */

static int
json_array_has (const json_t *a, const char *s)
{
  size_t i;
  json_t *v;
  json_array_foreach (a, i, v)
    if (json_is_string (v) && strcmp (json_string_value (v), s) == 0)
      return 1;
  return 0;
}

/* A firmware.json descriptor fit for a plain UEFI q35 boot: flash, x86_64,
 * no secure boot (its varstore would need enrolled keys and SMM). */
static int
descriptor_fits (const json_t *d, const char **code, const char **vars)
{
  const json_t *m = json_object_get (d, "mapping"), *t;
  size_t i;
  int q35 = 0;

  if (!json_array_has (json_object_get (d, "interface-types"), "uefi")
      || json_array_has (json_object_get (d, "features"), "secure-boot")
      || json_array_has (json_object_get (d, "features"), "requires-smm")
      || !json_is_string (json_object_get (m, "device"))
      || strcmp (json_string_value (json_object_get (m, "device")), "flash") != 0)
    return 0;
  json_array_foreach (json_object_get (d, "targets"), i, t)
    if (json_is_string (json_object_get (t, "architecture"))
        && strcmp (json_string_value (json_object_get (t, "architecture")), "x86_64") == 0) {
      size_t k;
      json_t *mm;
      json_array_foreach (json_object_get (t, "machines"), k, mm)
        if (json_is_string (mm) && strncmp (json_string_value (mm), "pc-q35", 6) == 0)
          q35 = 1;
    }
  *code = json_string_value (json_object_get (json_object_get (m, "executable"), "filename"));
  *vars = json_string_value (json_object_get (json_object_get (m, "nvram-template"), "filename"));
  return q35 && *code && *vars && access (*code, R_OK) == 0 && access (*vars, R_OK) == 0;
}

static int
cmp_names (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Descriptors are read in name order: their numeric prefixes are QEMU's
 * priority order. */
static int
ovmf_from_descriptors (const char *dir, char **code, char **vars)
{
  DIR *d = opendir (dir);
  char *names[256];
  size_t n = 0;
  struct dirent *e;
  int found = -1;

  if (d == NULL)
    return -1;
  while ((e = readdir (d)) != NULL && n < 256)
    if (strlen (e->d_name) > 5 && strcmp (e->d_name + strlen (e->d_name) - 5, ".json") == 0)
      if ((names[n] = strdup (e->d_name)) != NULL)
        n++;
  closedir (d);
  qsort (names, n, sizeof *names, cmp_names);
  for (size_t i = 0; i < n; i++) {
    char path[4096];
    const char *c, *v;
    snprintf (path, sizeof path, "%s/%s", dir, names[i]);
    json_t *j = found ? json_load_file (path, 0, NULL) : NULL;
    if (j && descriptor_fits (j, &c, &v)) {
      *code = strdup (c);
      *vars = strdup (v);
      found = (*code && *vars) ? 0 : -1;
    }
    json_decref (j);
    free (names[i]);
  }
  return found;
}

int
Pallet_convert_boot_mode (const char *s)
{
  if (s == NULL || strcmp (s, "false") == 0)
    return PALLET_CONVERT_BOOT_OFF;
  if (strcmp (s, "true") == 0)
    return PALLET_CONVERT_BOOT_ON;
  if (strcmp (s, "warn") == 0)
    return PALLET_CONVERT_BOOT_WARN;
  return -1;
}

int
Pallet_convert_find_ovmf (char **code, char **vars)
{
  static const char *const known[][2] = {
    { "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd" },
    { "/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd" },
    { "/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd" },
    { "/usr/share/edk2/x64/OVMF_CODE.4m.fd", "/usr/share/edk2/x64/OVMF_VARS.4m.fd" },
  };

  *code = *vars = NULL;
  if (ovmf_from_descriptors ("/usr/share/qemu/firmware", code, vars) == 0)
    return 0;
  free (*code);
  free (*vars);
  *code = *vars = NULL;
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (access (known[i][0], R_OK) == 0 && access (known[i][1], R_OK) == 0) {
      *code = strdup (known[i][0]);
      *vars = strdup (known[i][1]);
      return *code && *vars ? 0 : -1;
    }
  return -1;
}

/* ---- the job -------------------------------------------------------------- */

struct boot {
  const struct Pallet_convert_boot_options *o;
  struct Pallet_convert_boot_result *res;
  const char *const *disks;
  size_t ndisks;
  const char *fmt, *qemu, *qimg;
  char *dir; /* work directory */
  char *overlays[BOOT_MAX_DISKS];
  char *vars;      /* the NVRAM copy */
  char *ovmf_vars; /* its template */
  unsigned tail_max;
  char **ring; /* console tail, oldest first once unrolled */
  size_t ring_n, ring_head;
  char *qemu_err; /* QEMU's stderr (first bytes) */
  size_t qemu_err_len;
  int up;          /* login prompt or cloud-init seen */
  char *fail_line; /* a console line saying the boot failed */
  int nomem;
};

static void boot_fail (struct boot *b, enum Pallet_convert_error e, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
static void
boot_fail (struct boot *b, enum Pallet_convert_error e, const char *fmt, ...)
{
  va_list ap;
  free (b->res->message);
  b->res->message = NULL;
  b->res->error = e;
  va_start (ap, fmt);
  if (vasprintf (&b->res->message, fmt, ap) < 0) {
    b->res->message = NULL;
    b->res->error = PALLET_CONVERT_E_NOMEM;
  }
  va_end (ap);
}

/* Spawns ARGV in its own process group (so one kill reaches everything it
 * starts), stdin from /dev/null, stdout and stderr to OUT_FD/ERR_FD (-1:
 * /dev/null). */
static int
spawn_group (char *const *argv, int out_fd, int err_fd, pid_t *pid)
{
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  int r;

  posix_spawn_file_actions_init (&fa);
  posix_spawnattr_init (&attr);
  posix_spawnattr_setpgroup (&attr, 0);
  posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  if (out_fd >= 0)
    posix_spawn_file_actions_adddup2 (&fa, out_fd, 1);
  else
    posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  if (err_fd >= 0)
    posix_spawn_file_actions_adddup2 (&fa, err_fd, 2);
  else
    posix_spawn_file_actions_addopen (&fa, 2, "/dev/null", O_WRONLY, 0);
  r = posix_spawnp (pid, argv[0], &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  posix_spawnattr_destroy (&attr);
  return r;
}

static void
kill_and_reap (pid_t pid, int *status)
{
  kill (-pid, SIGKILL);
  while (waitpid (pid, status, 0) == -1 && errno == EINTR)
    ;
}

/* qemu-img create -f qcow2 -b DISK -F FMT OVERLAY: QEMU writes there. */
static int
make_overlay (struct boot *b, size_t i)
{
  char *abs = realpath (b->disks[i], NULL);
  int status = 0, r;
  pid_t pid;

  if (abs == NULL || access (abs, R_OK) != 0) {
    boot_fail (b, PALLET_CONVERT_E_DISK,
               "boot check: cannot open disk %s: %s; fix: pass the converted disk's path",
               b->disks[i], strerror (errno));
    free (abs);
    return -1;
  }
  if (asprintf (&b->overlays[i], "%s/boot-%zu.qcow2", b->dir, i) < 0) {
    b->overlays[i] = NULL;
    free (abs);
    boot_fail (b, PALLET_CONVERT_E_NOMEM, "boot check: out of memory");
    return -1;
  }
  const char *argv[] = { b->qimg, "create", "-q",   "-f",           "qcow2", "-b",
                         abs,     "-F",     b->fmt, b->overlays[i], NULL };
  r = spawn_group ((char *const *) argv, -1, -1, &pid);
  if (r == 0)
    while (waitpid (pid, &status, 0) == -1 && errno == EINTR)
      ;
  free (abs);
  if (r != 0 || !WIFEXITED (status) || WEXITSTATUS (status) != 0) {
    boot_fail (b, r ? PALLET_CONVERT_E_TOOL : PALLET_CONVERT_E_IO,
               "boot check: cannot create the overlay of %s with %s (%s); fix: install "
               "qemu-utils and check %s has space",
               b->disks[i], b->qimg, r ? strerror (r) : "it failed", b->dir);
    return -1;
  }
  return 0;
}

/* Copies the NVRAM template: the firmware writes its variables there. */
static int
copy_vars (struct boot *b)
{
  char buf[65536];
  ssize_t n = 0;
  int in, out, ok = 1;

  if (asprintf (&b->vars, "%s/vars.fd", b->dir) < 0) {
    b->vars = NULL;
    return -1;
  }
  in = open (b->ovmf_vars, O_RDONLY | O_CLOEXEC);
  out = open (b->vars, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  while (in >= 0 && out >= 0 && (n = read (in, buf, sizeof buf)) > 0)
    ok &= write (out, buf, (size_t) n) == n;
  ok &= in >= 0 && out >= 0 && n == 0;
  if (in >= 0)
    close (in);
  if (out >= 0 && close (out) != 0)
    ok = 0;
  return ok ? 0 : -1;
}

/* The firmware: SeaBIOS by default, OVMF for UEFI guests. */
static int
prepare_firmware (struct boot *b)
{
  const struct Pallet_convert_boot_options *o = b->o;
  const char *fw = o->firmware ? o->firmware : "bios";
  char *code = NULL, *vars = NULL;

  if (strcmp (fw, "bios") == 0)
    return 0;
  if (strcmp (fw, "uefi") != 0 && strcmp (fw, "efi") != 0) {
    boot_fail (b, PALLET_CONVERT_E_INVALID,
               "boot check: firmware \"%s\" is unknown; fix: use bios or uefi", fw);
    return -1;
  }
  if (o->ovmf_code && o->ovmf_vars) {
    code = strdup (o->ovmf_code);
    vars = strdup (o->ovmf_vars);
  }
  else if (Pallet_convert_find_ovmf (&code, &vars) != 0) {
    free (code);
    free (vars);
    boot_fail (b, PALLET_CONVERT_E_TOOL,
               "boot check: the guest boots with UEFI but no OVMF firmware was found "
               "(/usr/share/qemu/firmware/*.json, /usr/share/OVMF); fix: install the ovmf "
               "package (scripts/install-deps.sh)");
    return -1;
  }
  b->res->firmware_code = code;
  b->ovmf_vars = vars;
  if (code == NULL || vars == NULL || access (code, R_OK) != 0 || copy_vars (b) != 0) {
    boot_fail (b, PALLET_CONVERT_E_TOOL,
               "boot check: cannot read the OVMF firmware %s / %s; fix: reinstall the ovmf "
               "package or fix the paths",
               code ? code : "?", vars ? vars : "?");
    return -1;
  }
  return 0;
}

/* ---- the console ------------------------------------------------------------ */

static void
keep_line (struct boot *b, const char *line)
{
  char *copy = strdup (line);
  if (copy == NULL) {
    b->nomem = 1;
    return;
  }
  if (b->ring_n < b->tail_max)
    b->ring[b->ring_n++] = copy;
  else {
    free (b->ring[b->ring_head]);
    b->ring[b->ring_head] = copy;
    b->ring_head = (b->ring_head + 1) % b->tail_max;
  }
}

/* Length of the well-formed UTF-8 sequence at S (1 to 4), or 0. */
static size_t
utf8_length (const unsigned char *s)
{
  size_t n = s[0] < 0x80                    ? 1
             : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
             : s[0] >= 0xe0 && s[0] <= 0xef ? 3
             : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                            : 0;
  unsigned long cp = n == 1 ? s[0] : s[0] & (0x7f >> n);

  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
      || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

/* The console is bytes, the report JSON text: a byte that is not part of
 * well-formed UTF-8 (firmware box drawing, a line cut at LINE_MAX_BYTES)
 * becomes '?', or the whole report could not be made. */
static void
make_utf8 (char *line)
{
  unsigned char *p = (unsigned char *) line;

  while (*p) {
    size_t n = utf8_length (p);
    if (n == 0)
      *p++ = '?';
    else
      p += n;
  }
}

/* What a console line says about the boot. */
static void
console_line (struct boot *b, char *line, double t0)
{
  static const char *const failures[] = {
    "No bootable device",           /* SeaBIOS */
    "No bootable option or device", /* OVMF */
    "UEFI Interactive Shell",       /* OVMF found no boot loader */
    "Kernel panic",
    "Gave up waiting for root",
    "(initramfs)",
    "grub rescue>",
    "You are in emergency mode",
  };
  const struct Pallet_convert_boot_options *o = b->o;
  size_t n = strlen (line);

  while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
    line[--n] = '\0';
  make_utf8 (line);
  if (o->line)
    o->line (o->opaque, 1, line);
  keep_line (b, line);
  for (size_t i = 0; i < b->res->nexpect; i++)
    if (!b->res->seen[i] && strstr (line, o->expect[i]))
      b->res->seen[i] = 1;
  if (!b->up
      && (strstr (line, "login:")
          || (strstr (line, "Cloud-init v.") && strstr (line, "finished")))) {
    b->up = 1;
    b->res->up_seconds = now () - t0;
    free (b->res->matched);
    if ((b->res->matched = strdup (line)) == NULL)
      b->nomem = 1;
  }
  for (size_t i = 0; !b->up && !b->fail_line && i < sizeof failures / sizeof failures[0]; i++)
    if (strstr (line, failures[i]) && (b->fail_line = strdup (line)) == NULL)
      b->nomem = 1;
}

static int
all_seen (const struct boot *b)
{
  for (size_t i = 0; i < b->res->nexpect; i++)
    if (!b->res->seen[i])
      return 0;
  return 1;
}

struct lines {
  char buf[LINE_MAX_BYTES + 1];
  size_t len;
  int esc; /* 1: after ESC, 2: in a CSI sequence */
  int cr;  /* the last byte was \r */
};

/* Reads what FD has; calls console_line per line (stream 1) or keeps
 * QEMU's stderr (stream 2).  Returns 0 at EOF. */
static int
drain (struct boot *b, int fd, int stream, struct lines *lb, double t0)
{
  char data[8192];
  ssize_t n = read (fd, data, sizeof data);

  if (n < 0)
    return errno == EINTR || errno == EAGAIN ? 1 : 0;
  if (n == 0) {
    if (stream == 1 && lb->len > 0) {
      lb->buf[lb->len] = '\0';
      console_line (b, lb->buf, t0);
      lb->len = 0;
    }
    return 0;
  }
  if (stream == 2) {
    if (b->qemu_err_len < 4096) {
      size_t k = (size_t) n < 4096 - b->qemu_err_len ? (size_t) n : 4096 - b->qemu_err_len;
      char *s = realloc (b->qemu_err, b->qemu_err_len + k + 1);
      if (s) {
        memcpy (s + b->qemu_err_len, data, k);
        b->qemu_err_len += k;
        s[b->qemu_err_len] = '\0';
        b->qemu_err = s;
      }
    }
    return 1;
  }
  for (ssize_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char) data[i];
    /* Terminal escapes (firmware screen clears, colours) stay out of the
     * report: ESC, then "[params letter" or one character. */
    if (lb->esc) {
      lb->esc = lb->esc == 1 && c == '[' ? 2 : lb->esc == 2 && !(c >= 0x40 && c <= 0x7e) ? 2 : 0;
      continue;
    }
    /* \r ends a line too (countdowns rewrite one); \r\n is one end. */
    int after_cr = lb->cr;
    lb->cr = c == '\r';
    if (c == 0x1b)
      lb->esc = 1;
    else if ((c == '\n' && !after_cr) || (c == '\r' && lb->len > 0)) {
      lb->buf[lb->len] = '\0';
      console_line (b, lb->buf, t0);
      lb->len = 0;
    }
    else if (lb->len < LINE_MAX_BYTES && (c >= 0x20 || c == '\t'))
      lb->buf[lb->len++] = (char) c;
  }
  return 1;
}

/* ---- QEMU ----------------------------------------------------------------- */

/* The command line: q35 (KubeVirt's machine), the firmware, the disks on
 * virtio-blk (or AHCI SATA) and one NIC on user networking that cannot
 * reach anything (restrict=on), the serial console on stdout. */
static char **
qemu_argv (struct boot *b, int kvm)
{
  const struct Pallet_convert_boot_options *o = b->o;
  char **v = calloc (48 + 4 * b->ndisks, sizeof *v);
  size_t a = 0;
  int e = 0;
#define ARG(s)    (v[a++] = strdup (s), e |= v[a - 1] == NULL)
#define ARGF(...) (e |= asprintf (&v[a++], __VA_ARGS__) < 0)

  if (v == NULL)
    return NULL;
  ARG (b->qemu);
  ARG ("-machine");
  ARG ("q35,graphics=off");
  ARG ("-accel");
  ARG (kvm ? "kvm" : "tcg");
  if (kvm) {
    ARG ("-cpu");
    ARG ("host");
  }
  ARG ("-m");
  ARGF ("%u", o->memory_mib ? o->memory_mib : 1024);
  ARG ("-smp");
  ARG ("1");
  ARG ("-nodefaults");
  ARG ("-display");
  ARG ("none");
  ARG ("-monitor");
  ARG ("none");
  ARG ("-serial");
  ARG ("stdio");
  /* SeaBIOS retries a failed boot after 5 s; the console line says why. */
  ARG ("-boot");
  ARG ("strict=on,reboot-timeout=5000");
  if (b->res->firmware_code) {
    ARG ("-drive");
    ARGF ("if=pflash,format=raw,unit=0,readonly=on,file=%s", b->res->firmware_code);
    ARG ("-drive");
    ARGF ("if=pflash,format=raw,unit=1,file=%s", b->vars);
  }
  for (size_t i = 0; i < b->ndisks; i++) {
    ARG ("-drive");
    ARGF ("file=%s,format=qcow2,if=none,id=d%zu", b->overlays[i], i);
    ARG ("-device");
    if (o->compat)
      ARGF ("ide-hd,drive=d%zu,bus=ide.%zu%s", i, i, i == 0 ? ",bootindex=0" : "");
    else
      ARGF ("virtio-blk-pci,drive=d%zu%s", i, i == 0 ? ",bootindex=0" : "");
  }
  ARG ("-netdev");
  ARG ("user,id=n0,restrict=on");
  ARG ("-device");
  ARG (o->compat ? "e1000e,netdev=n0" : "virtio-net-pci,netdev=n0");
#undef ARG
#undef ARGF
  if (e) {
    for (size_t i = 0; i < a; i++)
      free (v[i]);
    free (v);
    return NULL;
  }
  return v;
}

static void
free_argv (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

enum ran { UP, DOWN, EXITED, TIMED_OUT, CANCELLED, NOT_STARTED };

/* Watches one QEMU run until the guest is up (and every expected string
 * seen), fails, exits, times out or is cancelled; QEMU is gone on return. */
static enum ran
watch (struct boot *b, pid_t pid, int out, int err, double t0, double deadline, int *status)
{
  struct lines *lb = calloc (1, sizeof *lb);
  struct pollfd pf[2] = { { out, POLLIN, 0 }, { err, POLLIN, 0 } };
  int open_out = 1, open_err = 1;
  enum ran r = EXITED;

  if (lb == NULL) {
    b->nomem = 1;
    kill_and_reap (pid, status);
    return NOT_STARTED;
  }
  for (;;) {
    if (b->up && all_seen (b)) {
      r = UP;
      break;
    }
    if (b->fail_line || b->nomem) {
      r = DOWN;
      break;
    }
    if (b->o->cancel && b->o->cancel (b->o->opaque)) {
      r = CANCELLED;
      break;
    }
    if (now () >= deadline) {
      r = TIMED_OUT;
      break;
    }
    if (!open_out && !open_err)
      break; /* EXITED */
    pf[0].fd = open_out ? out : -1;
    pf[1].fd = open_err ? err : -1;
    if (poll (pf, 2, 200) < 0 && errno != EINTR)
      break;
    if (open_out && (pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
      open_out = drain (b, out, 1, lb, t0);
    if (open_err && (pf[1].revents & (POLLIN | POLLHUP | POLLERR)))
      open_err = drain (b, err, 2, lb, t0);
  }
  free (lb);
  if (r == EXITED)
    while (waitpid (pid, status, 0) == -1 && errno == EINTR)
      ;
  else
    kill_and_reap (pid, status);
  return r;
}

/* One QEMU run, on KVM or TCG. */
static enum ran
run_qemu (struct boot *b, int kvm, double t0, double deadline, int *status)
{
  int out[2] = { -1, -1 }, err[2] = { -1, -1 }, r;
  char **argv = qemu_argv (b, kvm);
  pid_t pid;
  enum ran ran = NOT_STARTED;

  if (argv == NULL) {
    b->nomem = 1;
    return NOT_STARTED;
  }
  if (pipe2 (out, O_CLOEXEC) != 0 || pipe2 (err, O_CLOEXEC) != 0) {
    boot_fail (b, PALLET_CONVERT_E_IO, "boot check: pipe: %s; fix: retry", strerror (errno));
    goto out;
  }
  r = spawn_group (argv, out[1], err[1], &pid);
  close (out[1]);
  close (err[1]);
  out[1] = err[1] = -1;
  if (r != 0) {
    boot_fail (b, PALLET_CONVERT_E_TOOL,
               "boot check: cannot run %s: %s; fix: install qemu-system-x86 "
               "(scripts/install-deps.sh)",
               b->qemu, strerror (r));
    goto out;
  }
  ran = watch (b, pid, out[0], err[0], t0, deadline, status);
out:
  for (int i = 0; i < 2; i++) {
    if (out[i] >= 0)
      close (out[i]);
    if (err[i] >= 0)
      close (err[i]);
  }
  free_argv (argv);
  return ran;
}

/* KVM when asked, or when "auto" and /dev/kvm can be opened. */
static int
want_kvm (struct boot *b)
{
  const char *accel = b->o->accel ? b->o->accel : "auto";
  int fd;

  if (strcmp (accel, "tcg") == 0)
    return 0;
  if (strcmp (accel, "kvm") == 0)
    return 1;
  fd = open ("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (asprintf (&b->res->kvm_fallback, "/dev/kvm: %s", strerror (errno)) < 0)
      b->res->kvm_fallback = NULL;
    return 0;
  }
  close (fd);
  return 1;
}

/* Back to the state before a run: a KVM start that failed is retried on
 * TCG from a fresh overlay. */
static int
reset_run (struct boot *b)
{
  for (size_t i = 0; i < b->ring_n; i++)
    free (b->ring[i]);
  b->ring_n = b->ring_head = 0;
  memset (b->res->seen, 0, b->res->nexpect * sizeof *b->res->seen);
  free (b->fail_line);
  free (b->qemu_err);
  b->fail_line = b->qemu_err = NULL;
  b->qemu_err_len = 0;
  for (size_t i = 0; i < b->ndisks; i++) {
    unlink (b->overlays[i]);
    free (b->overlays[i]);
    b->overlays[i] = NULL;
    if (make_overlay (b, i) != 0)
      return -1;
  }
  return b->vars ? copy_vars (b) : 0;
}

/* The guest did not come up: the message says what the console showed. */
static void
report_outcome (struct boot *b, enum ran ran, int status, double secs)
{
  const struct Pallet_convert_boot_options *o = b->o;
  const char *last = b->ring_n ? b->ring[(b->ring_head + b->ring_n - 1) % b->ring_n] : NULL;
  char *err = Pallet_convert_condense (b->qemu_err ? b->qemu_err : "", 300);
  const char *what = o->firmware && strcmp (o->firmware, "bios") ? "UEFI" : "BIOS";
  char missing[512] = "";

  for (size_t i = 0; i < b->res->nexpect; i++)
    if (!b->res->seen[i] && strlen (missing) + strlen (o->expect[i]) + 8 < sizeof missing)
      snprintf (missing + strlen (missing), sizeof missing - strlen (missing), "%s\"%s\"",
                *missing ? ", " : "", o->expect[i]);
  switch (ran) {
  case UP: b->res->error = PALLET_CONVERT_OK; break;
  case DOWN:
    boot_fail (b, PALLET_CONVERT_E_FAILED,
               "boot check: the converted guest did not boot (%s, %s, %s): the console "
               "shows \"%s\" after %.0f s; fix: the console tail in the report shows where "
               "it stopped: check the boot loader and root= (and that the VM's firmware is "
               "the guest's), then convert again",
               what, o->compat ? "SATA/e1000e" : "virtio-blk/virtio-net", b->res->accel,
               b->fail_line ? b->fail_line : "?", secs);
    break;
  case EXITED:
    boot_fail (b, PALLET_CONVERT_E_FAILED,
               "boot check: QEMU exited (%s %d) after %.0f s before the guest came up%s%s; "
               "fix: the console tail in the report shows how far it got",
               WIFSIGNALED (status) ? "signal" : "status",
               WIFSIGNALED (status) ? WTERMSIG (status) : WEXITSTATUS (status), secs,
               err && *err ? ": " : "", err ? err : "");
    break;
  case TIMED_OUT:
    boot_fail (b, PALLET_CONVERT_E_TIMEOUT,
               "boot check: %s within %u s (%s); last console line: \"%s\"; fix: raise "
               "verify-boot-timeout (a TCG boot takes 1-3 minutes) or read the console tail",
               b->up ? "the guest came up but did not print" : "no login prompt",
               o->timeout_seconds ? o->timeout_seconds : 300, b->up ? missing : b->res->accel,
               last ? last : "(nothing)");
    break;
  case CANCELLED:
    boot_fail (b, PALLET_CONVERT_E_CANCELLED,
               "boot check: cancelled after %.0f s; the disks are unchanged", secs);
    break;
  case NOT_STARTED:
    if (b->res->error == PALLET_CONVERT_OK || b->nomem)
      boot_fail (b, PALLET_CONVERT_E_NOMEM, "boot check: out of memory");
    break;
  }
  free (err);
}

/* The runs: KVM first when usable, TCG after a KVM start that failed. */
static void
boot_runs (struct boot *b, double t0)
{
  const struct Pallet_convert_boot_options *o = b->o;
  double deadline = t0 + (o->timeout_seconds ? o->timeout_seconds : 300);
  int kvm = want_kvm (b), status = 0;
  int fallback_ok = !o->accel || strcmp (o->accel, "auto") == 0;
  double start = now ();
  enum ran ran;

  b->res->accel = strdup (kvm ? "kvm" : "tcg");
  ran = run_qemu (b, kvm, start, deadline, &status);
  if (kvm && fallback_ok && ran == EXITED && b->ring_n == 0 && now () - start < KVM_EARLY_SECONDS) {
    char *why = Pallet_convert_condense (b->qemu_err ? b->qemu_err : "no message", 300);
    free (b->res->kvm_fallback);
    if (asprintf (&b->res->kvm_fallback, "QEMU with KVM exited at start (%s %d): %s",
                  WIFSIGNALED (status) ? "signal" : "status",
                  WIFSIGNALED (status) ? WTERMSIG (status) : WEXITSTATUS (status), why ? why : "")
        < 0)
      b->res->kvm_fallback = NULL;
    free (why);
    free (b->res->accel);
    b->res->accel = strdup ("tcg");
    if (reset_run (b) != 0)
      return;
    start = now ();
    ran = run_qemu (b, 0, start, deadline, &status);
  }
  if (b->res->accel == NULL)
    b->nomem = 1;
  report_outcome (b, ran, status, now () - start);
}

static int
boot_start (struct boot *b)
{
  const char *base = b->o->work_dir ? b->o->work_dir : getenv ("TMPDIR");

  if (b->disks == NULL || b->ndisks == 0 || b->ndisks > BOOT_MAX_DISKS) {
    boot_fail (b, PALLET_CONVERT_E_INVALID,
               "boot check: %zu disks given; fix: pass 1 to %d disk paths", b->ndisks,
               BOOT_MAX_DISKS);
    return -1;
  }
  for (size_t i = 0; b->o->expect && b->o->expect[i]; i++)
    b->res->nexpect++;
  b->tail_max = b->o->tail_lines ? b->o->tail_lines : 40;
  b->ring = calloc (b->tail_max, sizeof *b->ring);
  b->res->seen = calloc (b->res->nexpect + 1, sizeof *b->res->seen);
  if (b->ring == NULL || b->res->seen == NULL
      || asprintf (&b->dir, "%s/pallet-boot-XXXXXX", base && *base ? base : "/var/tmp") < 0) {
    b->dir = NULL;
    boot_fail (b, PALLET_CONVERT_E_NOMEM, "boot check: out of memory");
    return -1;
  }
  if (mkdtemp (b->dir) == NULL) {
    boot_fail (b, PALLET_CONVERT_E_IO,
               "boot check: cannot create a work directory %s: %s; fix: set work_dir (or "
               "TMPDIR) to a writable directory",
               b->dir, strerror (errno));
    free (b->dir);
    b->dir = NULL;
    return -1;
  }
  if (prepare_firmware (b) != 0)
    return -1;
  for (size_t i = 0; i < b->ndisks; i++)
    if (make_overlay (b, i) != 0)
      return -1;
  return 0;
}

/* The tail, oldest line first, into the result. */
static void
boot_end (struct boot *b)
{
  struct Pallet_convert_boot_result *res = b->res;

  res->tail = calloc (b->ring_n + 1, sizeof *res->tail);
  for (size_t i = 0; i < b->ring_n; i++) {
    char *l = b->ring[(b->ring_head + i) % b->ring_n];
    if (res->tail)
      res->tail[res->ntail++] = l;
    else
      free (l);
  }
  for (size_t i = 0; i < b->ndisks; i++)
    if (b->overlays[i]) {
      unlink (b->overlays[i]);
      free (b->overlays[i]);
    }
  if (b->vars)
    unlink (b->vars);
  if (b->dir)
    rmdir (b->dir);
  free (b->ring);
  free (b->vars);
  free (b->ovmf_vars);
  free (b->dir);
  free (b->fail_line);
  free (b->qemu_err);
}

enum Pallet_convert_error
Pallet_convert_boot (const char *const *disks, size_t ndisks,
                     const struct Pallet_convert_boot_options *opts,
                     struct Pallet_convert_boot_result *res)
{
  static const struct Pallet_convert_boot_options defaults;
  double t0 = now ();

  if (res == NULL)
    return PALLET_CONVERT_E_INVALID;
  memset (res, 0, sizeof *res);
  struct boot b = {
    .o = opts ? opts : &defaults,
    .res = res,
    .disks = disks,
    .ndisks = ndisks,
  };
  b.fmt = b.o->disk_format ? b.o->disk_format : "raw";
  b.qemu = b.o->qemu ? b.o->qemu : "qemu-system-x86_64";
  b.qimg = b.o->qemu_img ? b.o->qemu_img : "qemu-img";
  if (boot_start (&b) == 0)
    boot_runs (&b, t0);
  boot_end (&b);
  if (b.nomem && res->error == PALLET_CONVERT_OK)
    boot_fail (&b, PALLET_CONVERT_E_NOMEM, "boot check: out of memory");
  res->elapsed = now () - t0;
  return res->error;
}

void
Pallet_convert_boot_result_free (struct Pallet_convert_boot_result *r)
{
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->ntail; i++)
    free (r->tail[i]);
  free (r->tail);
  free (r->seen);
  free (r->message);
  free (r->matched);
  free (r->accel);
  free (r->kvm_fallback);
  free (r->firmware_code);
  memset (r, 0, sizeof *r);
}

static json_t *
str_or_null (const char *s)
{
  return s ? json_string (s) : json_null ();
}

json_t *
Pallet_convert_boot_result_json (const struct Pallet_convert_boot_result *r,
                                 const char *const *expect)
{
  json_t *o = json_object (), *tail = json_array (), *ex = json_array ();
  int e = o == NULL || tail == NULL || ex == NULL;

  for (size_t i = 0; !e && i < r->ntail; i++)
    e |= json_array_append_new (tail, json_string (r->tail[i]));
  for (size_t i = 0; !e && expect && i < r->nexpect; i++)
    e |= json_array_append_new (
        ex, json_pack ("{s:s, s:b}", "text", expect[i], "seen", r->seen ? r->seen[i] : 0));
  if (!e) {
    e |= json_object_set_new (o, "ok", json_boolean (r->error == PALLET_CONVERT_OK));
    e |= json_object_set_new (o, "error", json_string (Pallet_convert_error_name (r->error)));
    e |= json_object_set_new (o, "message", str_or_null (r->message));
    e |= json_object_set_new (o, "matched", str_or_null (r->matched));
    e |= json_object_set_new (o, "accel", str_or_null (r->accel));
    e |= json_object_set_new (o, "kvmFallback", str_or_null (r->kvm_fallback));
    e |= json_object_set_new (o, "firmwareCode", str_or_null (r->firmware_code));
    e |= json_object_set_new (o, "expect", ex);
    e |= json_object_set_new (o, "consoleTail", tail);
    e |= json_object_set_new (o, "elapsed", json_real (r->elapsed));
    e |= json_object_set_new (o, "upSeconds", json_real (r->up_seconds));
    ex = tail = NULL;
  }
  if (e) {
    json_decref (o);
    json_decref (tail);
    json_decref (ex);
    return NULL;
  }
  return o;
}
