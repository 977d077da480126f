/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_v2v_driver: argv for every input, URIs, line parsing on virt-v2v
 * 2.2.0's real output, and runs of a stand-in virt-v2v (success, failure,
 * cancel and timeout killing the process group, spawn errors), the
 * password file and the run journal. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include "pallet-v2v-driver.h"

extern char **environ;
static const char *testdir;
static char tmpdir[256];

static char *
joined (char **argv)
{
  static char buf[8192];
  buf[0] = '\0';
  for (size_t i = 0; argv && argv[i]; i++) {
    if (i)
      strcat (buf, " ");
    strcat (buf, argv[i]);
  }
  return buf;
}

static const struct pallet_v2v_output OUT = { .dir = "/var/tmp/out", .name = "web-1" };
#define TAIL "-o kubevirt -os /var/tmp/out -on web-1 -of raw -oa sparse --machine-readable"

static void
test_argv_inputs (void)
{
  char *err = NULL;
  struct pallet_v2v_source vpx = { .input = PALLET_V2V_IN_VPX,
                                   .guest = "web 1",
                                   .uri = "vpx://root@vc.example.com/DC0/DC0_H0?no_verify=1",
                                   .password_file = "/run/pw" };
  char **a = pallet_v2v_argv (NULL, &vpx, &OUT, NULL, &err);
  CU_ASSERT_STRING_EQUAL (
      joined (a),
      "virt-v2v -i libvirt -ic vpx://root@vc.example.com/DC0/DC0_H0?no_verify=1 -ip /run/pw " TAIL
      " -- web 1");
  /* the guest name is one argument, spaces and all */
  size_t n = 0;
  while (a[n])
    n++;
  CU_ASSERT_STRING_EQUAL (a[n - 1], "web 1");
  pallet_v2v_argv_free (a);

  vpx.transport = PALLET_V2V_VDDK;
  vpx.vddk_libdir = "/opt/vmware-vix-disklib-distrib";
  vpx.vddk_thumbprint = "2C:11:ED:D7";
  a = pallet_v2v_argv (NULL, &vpx, &OUT, NULL, &err);
  CU_ASSERT_STRING_EQUAL (
      joined (a),
      "virt-v2v -i libvirt -ic vpx://root@vc.example.com/DC0/DC0_H0?no_verify=1 -ip /run/pw -it vddk -io vddk-libdir=/opt/vmware-vix-disklib-distrib -io vddk-thumbprint=2C:11:ED:D7 " TAIL
      " -- web 1");
  pallet_v2v_argv_free (a);
  vpx.vddk_config = "/etc/vddk.conf";
  a = pallet_v2v_argv (NULL, &vpx, &OUT, NULL, &err);
  CU_ASSERT_PTR_NOT_NULL (strstr (joined (a), "-io vddk-config=/etc/vddk.conf -o kubevirt"));
  pallet_v2v_argv_free (a);

  struct pallet_v2v_source esx = { .input = PALLET_V2V_IN_ESX,
                                   .guest = "ha-host_VM0",
                                   .uri = "esx://root@127.0.0.1:8443/",
                                   .password_file = "/run/pw" };
  a = pallet_v2v_argv ("/usr/bin/virt-v2v", &esx, &OUT, NULL, &err);
  CU_ASSERT_STRING_EQUAL (
      joined (a), "/usr/bin/virt-v2v -i libvirt -ic esx://root@127.0.0.1:8443/ -ip /run/pw " TAIL
                  " -- ha-host_VM0");
  pallet_v2v_argv_free (a);

  struct pallet_v2v_source xen = { .input = PALLET_V2V_IN_XEN,
                                   .guest = "rhel7",
                                   .uri = "xen+ssh://root@xen.example.com",
                                   .password_file = "/run/pw" };
  const char *extra[] = { "--root", "first", NULL };
  a = pallet_v2v_argv (NULL, &xen, &OUT, extra, &err);
  CU_ASSERT_STRING_EQUAL (joined (a),
                          "virt-v2v -i libvirt -ic xen+ssh://root@xen.example.com -ip /run/pw " TAIL
                          " --root first -- rhel7");
  pallet_v2v_argv_free (a);
  /* a VDDK transport on Xen means nothing: no -it */
  xen.transport = PALLET_V2V_VDDK;
  a = pallet_v2v_argv (NULL, &xen, &OUT, NULL, &err);
  CU_ASSERT_PTR_NULL (strstr (joined (a), "-it"));
  pallet_v2v_argv_free (a);

  struct pallet_v2v_source ova = { .input = PALLET_V2V_IN_OVA, .ova = "/data/guest.ova" };
  a = pallet_v2v_argv (NULL, &ova, &OUT, NULL, &err);
  CU_ASSERT_STRING_EQUAL (joined (a), "virt-v2v -i ova " TAIL " -- /data/guest.ova");
  pallet_v2v_argv_free (a);

  const char *disks[] = { "/d/root.img", "/d/data.qcow2" };
  struct pallet_v2v_source disk = {
    .input = PALLET_V2V_IN_DISK, .disks = disks, .ndisks = 2, .disk_format = "qcow2"
  };
  struct pallet_v2v_output q = {
    .dir = "/o", .name = "x", .format = "qcow2", .alloc = "preallocated"
  };
  a = pallet_v2v_argv (NULL, &disk, &q, NULL, &err);
  CU_ASSERT_STRING_EQUAL (
      joined (a),
      "virt-v2v -i disk -if qcow2 -o kubevirt -os /o -on x -of qcow2 -oa preallocated --machine-readable -- /d/root.img /d/data.qcow2");
  pallet_v2v_argv_free (a);
}

static void
expect_refused (const struct pallet_v2v_source *s, const struct pallet_v2v_output *o,
                const char *needle)
{
  char *err = NULL;
  char **a = pallet_v2v_argv (NULL, s, o, NULL, &err);
  CU_ASSERT_PTR_NULL (a);
  CU_ASSERT_PTR_NOT_NULL_FATAL (err);
  if (!strstr (err, needle))
    fprintf (stderr, "\nmessage '%s' lacks '%s'\n", err, needle);
  CU_ASSERT_PTR_NOT_NULL (strstr (err, needle));
  free (err);
  pallet_v2v_argv_free (a);
}

static void
test_argv_refusals (void)
{
  struct pallet_v2v_source s = {
    .input = PALLET_V2V_IN_VPX, .guest = "g", .uri = "vpx://h/DC/H", .transport = PALLET_V2V_VDDK
  };
  expect_refused (&s, &OUT, "vddk-libdir");
  s.vddk_libdir = "/opt/vddk";
  expect_refused (&s, &OUT, "thumbprint");
  s.transport = PALLET_V2V_HTTPS;
  s.uri = "https://h/sdk";
  expect_refused (&s, &OUT, "vpx://");
  s.uri = "vpx://h/DC/H";
  s.guest = "";
  expect_refused (&s, &OUT, "vms[].name");
  struct pallet_v2v_source x = { .input = PALLET_V2V_IN_XEN, .guest = "g", .uri = "xen://h" };
  expect_refused (&x, &OUT, "xen+ssh://");
  struct pallet_v2v_source o = { .input = PALLET_V2V_IN_OVA, .ova = "-oops.ova" };
  expect_refused (&o, &OUT, "starts with '-'");
  struct pallet_v2v_source d = { .input = PALLET_V2V_IN_DISK };
  expect_refused (&d, &OUT, "at least one image");
  const char *bad[] = { "/x.img" };
  d.disks = bad;
  d.ndisks = 1;
  d.disk_format = "vmdk";
  expect_refused (&d, &OUT, "raw or qcow2");
  d.disk_format = NULL;
  struct pallet_v2v_output no_dir = { .name = "x" };
  expect_refused (&d, &no_dir, "output directory");
  struct pallet_v2v_output bad_fmt = { .dir = "/o", .name = "x", .format = "vmdk" };
  expect_refused (&d, &bad_fmt, "raw or qcow2");
  struct pallet_v2v_source u = { .input = 99 };
  expect_refused (&u, &OUT, "unknown input");
}

static void
test_uri (void)
{
  char *err = NULL, *u;
  u = pallet_v2v_uri (PALLET_V2V_IN_VPX, "VSPHERE.LOCAL\\admin", "vc.example.com", 0,
                      "/My DC/Cluster 1/esx1.example.com", 1, &err);
  CU_ASSERT_STRING_EQUAL (
      u,
      "vpx://VSPHERE.LOCAL%5cadmin@vc.example.com/My%20DC/Cluster%201/esx1.example.com?no_verify=1");
  free (u);
  u = pallet_v2v_uri (PALLET_V2V_IN_VPX, "root", "127.0.0.1", 8989, "DC0/DC0_H0", 0, &err);
  CU_ASSERT_STRING_EQUAL (u, "vpx://root@127.0.0.1:8989/DC0/DC0_H0");
  free (u);
  u = pallet_v2v_uri (PALLET_V2V_IN_ESX, "root", "esx1", 443, NULL, 1, &err);
  CU_ASSERT_STRING_EQUAL (u, "esx://root@esx1:443/?no_verify=1");
  free (u);
  u = pallet_v2v_uri (PALLET_V2V_IN_XEN, "root", "dom0", 0, NULL, 1, &err);
  CU_ASSERT_STRING_EQUAL (u, "xen+ssh://root@dom0"); /* no TLS, no no_verify */
  free (u);
  CU_ASSERT_PTR_NULL (pallet_v2v_uri (PALLET_V2V_IN_VPX, "root", "vc", 0, "", 0, &err));
  CU_ASSERT_PTR_NOT_NULL (strstr (err, "host-path"));
  free (err);
  CU_ASSERT_PTR_NULL (pallet_v2v_uri (PALLET_V2V_IN_ESX, "root", "https://esx/", 0, NULL, 0, &err));
  CU_ASSERT_PTR_NOT_NULL (strstr (err, "host name"));
  free (err);
  CU_ASSERT_PTR_NULL (pallet_v2v_uri (PALLET_V2V_IN_OVA, "root", "x", 0, NULL, 0, &err));
  free (err);
}

/* The stdout virt-v2v 2.2.0 printed converting the test guest from the
 * simulated vCenter (fixtures/README.md says how it was captured). */
static void
test_parse_real_output (void)
{
  char p[512];
  snprintf (p, sizeof p, "%s/../../kubevirt/tests/fixtures/vpx-debian12.stdout", testdir);
  FILE *f = fopen (p, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL (f);
  char line[4096];
  struct pallet_v2v_lines st = { 0 };
  struct pallet_v2v_event ev;
  int messages = 0, warnings = 0, infos = 0, copying = 0, finishing = 0;
  while (fgets (line, sizeof line, f)) {
    line[strcspn (line, "\r\n")] = '\0';
    if (!pallet_v2v_parse_line (line, &ev, &st))
      continue;
    messages += ev.kind == PALLET_V2V_EV_MESSAGE;
    warnings += ev.kind == PALLET_V2V_EV_WARNING;
    infos += ev.kind == PALLET_V2V_EV_INFO;
    if (ev.kind == PALLET_V2V_EV_MESSAGE && !strcmp (ev.text, "Copying disk 1/1"))
      copying++;
    if (ev.kind == PALLET_V2V_EV_MESSAGE && !strcmp (ev.text, "Finishing off"))
      finishing++;
    CU_ASSERT (ev.kind != PALLET_V2V_EV_ERROR);
  }
  fclose (f);
  CU_ASSERT_EQUAL (copying, 1); /* once: the human copy is skipped */
  CU_ASSERT_EQUAL (finishing, 1);
  CU_ASSERT_EQUAL (st.disk, 1);
  CU_ASSERT_EQUAL (st.disks, 1);
  CU_ASSERT (messages >= 8);
  CU_ASSERT (warnings >= 1);
  CU_ASSERT (infos >= 1);
}

static void
test_parse_forms (void)
{
  struct pallet_v2v_lines st = { 0 };
  struct pallet_v2v_event ev;
  char a[] = "[  12.5] Copying disk 2/3";
  CU_ASSERT (pallet_v2v_parse_line (a, &ev, &st));
  CU_ASSERT_EQUAL (ev.kind, PALLET_V2V_EV_MESSAGE);
  CU_ASSERT_STRING_EQUAL (ev.text, "Copying disk 2/3");
  CU_ASSERT_EQUAL (ev.disk, 2);
  CU_ASSERT_EQUAL (ev.disks, 3);
  char b[] = "  37/100";
  CU_ASSERT (pallet_v2v_parse_line (b, &ev, &st));
  CU_ASSERT_EQUAL (ev.kind, PALLET_V2V_EV_PROGRESS);
  CU_ASSERT_EQUAL (ev.done, 37);
  CU_ASSERT_EQUAL (ev.total, 100);
  CU_ASSERT_EQUAL (ev.disk, 2);
  char c[] = "virt-v2v: error: no root device found in this operating system image.";
  CU_ASSERT (pallet_v2v_parse_line (c, &ev, &st));
  CU_ASSERT_EQUAL (ev.kind, PALLET_V2V_EV_ERROR);
  CU_ASSERT_STRING_EQUAL (ev.text, "no root device found in this operating system image.");
  char d[] = "{ \"message\": \"bad \\\"json\" ";
  CU_ASSERT_FALSE (pallet_v2v_parse_line (d, &ev, &st));
  char e[] = "libguestfs: trace: launch";
  CU_ASSERT_FALSE (pallet_v2v_parse_line (e, &ev, &st));
  char g[] = "5/0";
  CU_ASSERT_FALSE (pallet_v2v_parse_line (g, &ev, &st));
}

struct seen {
  int messages, progress, warnings, errors, last_disk;
  uint64_t last_done;
  int cancel_after; /* cancel once this many events were seen */
  int events;
};

static void
on_event (void *opaque, const struct pallet_v2v_event *ev)
{
  struct seen *s = opaque;
  s->events++;
  s->messages += ev->kind == PALLET_V2V_EV_MESSAGE;
  s->warnings += ev->kind == PALLET_V2V_EV_WARNING;
  s->errors += ev->kind == PALLET_V2V_EV_ERROR;
  if (ev->kind == PALLET_V2V_EV_PROGRESS) {
    s->progress++;
    s->last_done = ev->done;
    s->last_disk = ev->disk;
  }
}

static int
cancel_when (void *opaque)
{
  struct seen *s = opaque;
  return s->cancel_after && s->events >= s->cancel_after;
}

static char fake[512];

static void
run_fake (const char *mode, struct pallet_v2v_run_opts *o, struct pallet_v2v_result *res)
{
  setenv ("FAKE_MODE", mode, 1);
  char *argv[] = { fake, (char *) "-i", (char *) "disk", (char *) "--", (char *) "a b.img", NULL };
  pallet_v2v_run (argv, o, res);
}

static void
test_run_ok (void)
{
  struct seen s = { 0 };
  char log[300], argvout[300];
  snprintf (log, sizeof log, "%s/run.log", tmpdir);
  snprintf (argvout, sizeof argvout, "%s/argv.out", tmpdir);
  setenv ("FAKE_ARGV_OUT", argvout, 1);
  struct pallet_v2v_run_opts o = {
    .event = on_event, .event_opaque = &s, .log_path = log, .journal_dir = tmpdir
  };
  struct pallet_v2v_result res;
  run_fake ("ok", &o, &res);
  CU_ASSERT_EQUAL (res.outcome, PALLET_V2V_OK);
  CU_ASSERT_EQUAL (res.exit_status, 0);
  CU_ASSERT_EQUAL (s.messages, 4); /* the "[ 1.1]" copy is skipped */
  CU_ASSERT_EQUAL (s.progress, 3); /* \r-separated */
  CU_ASSERT_EQUAL (s.last_done, 100);
  CU_ASSERT_EQUAL (s.last_disk, 1);
  CU_ASSERT_EQUAL (s.warnings, 1); /* JSON once, its stderr copy skipped */
  FILE *f = fopen (argvout, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL (f);
  char buf[256] = "";
  size_t n = fread (buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose (f);
  CU_ASSERT_STRING_EQUAL (buf, "-i\ndisk\n--\na b.img\n"); /* argv, no shell */
  struct stat st;
  CU_ASSERT_EQUAL (stat (log, &st), 0);
  CU_ASSERT (st.st_size > 100);
  /* The journal forgot the pid once it ended: nothing to reap. */
  CU_ASSERT_EQUAL (pallet_v2v_reap_stale (tmpdir), 0);
}

static void
test_run_fail (void)
{
  struct seen s = { 0 };
  struct pallet_v2v_run_opts o = { .event = on_event, .event_opaque = &s };
  struct pallet_v2v_result res;
  run_fake ("fail", &o, &res);
  CU_ASSERT_EQUAL (res.outcome, PALLET_V2V_FAILED);
  CU_ASSERT_EQUAL (res.exit_status, 1);
  CU_ASSERT_STRING_EQUAL (res.error, "libvirt domain 'nope' is not found");
  CU_ASSERT_EQUAL (s.errors, 1);
}

static int
alive (pid_t pid)
{
  char p[64];
  snprintf (p, sizeof p, "/proc/%d/stat", (int) pid);
  FILE *f = fopen (p, "r");
  if (!f)
    return 0;
  char buf[512];
  size_t n = fread (buf, 1, sizeof buf - 1, f);
  fclose (f);
  buf[n] = '\0';
  char *s = strrchr (buf, ')');
  return s && s[2] != 'Z';
}

static pid_t
child_pid (const char *file)
{
  for (int i = 0; i < 100; i++) {
    FILE *f = fopen (file, "r");
    int pid = 0;
    if (f) {
      if (fscanf (f, "%d", &pid) != 1)
        pid = 0;
      fclose (f);
    }
    if (pid > 0)
      return pid;
    usleep (20000);
  }
  return 0;
}

static void
test_run_cancel_kills_group (void)
{
  char cp[300];
  snprintf (cp, sizeof cp, "%s/child.pid", tmpdir);
  unlink (cp);
  setenv ("FAKE_CHILD_PID", cp, 1);
  struct seen s = { .cancel_after = 1 };
  struct pallet_v2v_run_opts o = { .event = on_event,
                                   .event_opaque = &s,
                                   .cancelled = cancel_when,
                                   .cancel_opaque = &s,
                                   .kill_grace_ms = 1000 };
  struct pallet_v2v_result res;
  struct timespec t0, t1;
  clock_gettime (CLOCK_MONOTONIC, &t0);
  run_fake ("hang", &o, &res);
  clock_gettime (CLOCK_MONOTONIC, &t1);
  CU_ASSERT_EQUAL (res.outcome, PALLET_V2V_CANCELLED);
  CU_ASSERT (t1.tv_sec - t0.tv_sec < 10);
  pid_t c = child_pid (cp);
  CU_ASSERT (c > 0);
  for (int i = 0; i < 50 && c > 0 && alive (c); i++)
    usleep (20000);
  CU_ASSERT_FALSE (c > 0 && alive (c)); /* the grandchild died with the group */
}

static void
test_run_timeout (void)
{
  char cp[300];
  snprintf (cp, sizeof cp, "%s/child2.pid", tmpdir);
  unlink (cp);
  setenv ("FAKE_CHILD_PID", cp, 1);
  struct pallet_v2v_run_opts o = { .timeout_s = 1, .kill_grace_ms = 500 };
  struct pallet_v2v_result res;
  run_fake ("hang", &o, &res);
  CU_ASSERT_EQUAL (res.outcome, PALLET_V2V_TIMEOUT);
  CU_ASSERT_PTR_NOT_NULL (strstr (res.error, "v2v-timeout"));
  CU_ASSERT (res.seconds >= 1.0 && res.seconds < 10);
  pid_t c = child_pid (cp);
  for (int i = 0; i < 50 && c > 0 && alive (c); i++)
    usleep (20000);
  CU_ASSERT_FALSE (c > 0 && alive (c));
}

static void
test_run_spawn_error_and_long_line (void)
{
  struct pallet_v2v_run_opts o = { 0 };
  struct pallet_v2v_result res;
  char *argv[] = { (char *) "pallet-no-such-virt-v2v", NULL };
  pallet_v2v_run (argv, &o, &res);
  CU_ASSERT_EQUAL (res.outcome, PALLET_V2V_SPAWN);
  CU_ASSERT_EQUAL (res.sys_errno, ENOENT);
  CU_ASSERT_PTR_NOT_NULL (strstr (res.error, "install virt-v2v"));
  run_fake ("noisy", &o, &res);
  CU_ASSERT_EQUAL (res.outcome, PALLET_V2V_OK);
}

static void
test_password_file (void)
{
  char *p = pallet_v2v_password_file (tmpdir, "s3cr3t pw");
  CU_ASSERT_PTR_NOT_NULL_FATAL (p);
  struct stat st;
  CU_ASSERT_EQUAL (stat (p, &st), 0);
  CU_ASSERT_EQUAL (st.st_mode & 0777, 0600);
  FILE *f = fopen (p, "r");
  char buf[64] = "";
  size_t n = fread (buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose (f);
  CU_ASSERT_STRING_EQUAL (buf, "s3cr3t pw"); /* no newline: virt-v2v reads it whole */
  char copy[512];
  snprintf (copy, sizeof copy, "%s", p);
  pallet_v2v_remove_file (p);
  CU_ASSERT_NOT_EQUAL (stat (copy, &st), 0);
  CU_ASSERT_PTR_NULL (pallet_v2v_password_file ("/nonexistent-dir", "x"));
}

static void
test_journal (void)
{
  char dir[300], cp[300];
  snprintf (dir, sizeof dir, "%s/j", tmpdir);
  mkdir (dir, 0700);
  CU_ASSERT_PTR_NULL (pallet_v2v_finished (dir));
  CU_ASSERT_EQUAL (pallet_v2v_reap_stale (dir), 0);
  /* A host killed with -9 mid-run: its virt-v2v (and child) still run. */
  snprintf (cp, sizeof cp, "%s/child3.pid", tmpdir);
  unlink (cp);
  char env_mode[] = "FAKE_MODE=hang";
  char env_child[400];
  snprintf (env_child, sizeof env_child, "FAKE_CHILD_PID=%s", cp);
  char *envp[] = { env_mode, env_child, (char *) "PATH=/usr/bin:/bin", NULL };
  char *argv[] = { fake, NULL };
  posix_spawnattr_t at;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_init (&at);
  posix_spawnattr_setflags (&at, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup (&at, 0);
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  CU_ASSERT_EQUAL_FATAL (posix_spawn (&pid, fake, &fa, &at, argv, envp), 0);
  posix_spawnattr_destroy (&at);
  posix_spawn_file_actions_destroy (&fa);
  pid_t c = child_pid (cp);
  /* What pallet_v2v_run records when it starts a run. */
  char jp[400];
  snprintf (jp, sizeof jp, "%s/.pallet-v2v-run.json", dir);
  char stat_path[64], buf[1024];
  snprintf (stat_path, sizeof stat_path, "/proc/%d/stat", (int) pid);
  FILE *f = fopen (stat_path, "r");
  size_t n = fread (buf, 1, sizeof buf - 1, f);
  fclose (f);
  buf[n] = '\0';
  unsigned long long t = 0;
  sscanf (strrchr (buf, ')') + 2,
          "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &t);
  f = fopen (jp, "w");
  fprintf (f, "{\"pid\":%d,\"startTime\":%llu,\"done\":false}", (int) pid, t);
  fclose (f);
  CU_ASSERT_EQUAL (pallet_v2v_reap_stale (dir), 1);
  int status;
  CU_ASSERT_EQUAL (waitpid (pid, &status, 0), pid);
  CU_ASSERT (WIFSIGNALED (status));
  for (int i = 0; i < 50 && c > 0 && alive (c); i++)
    usleep (20000);
  CU_ASSERT_FALSE (c > 0 && alive (c));
  CU_ASSERT_EQUAL (pallet_v2v_reap_stale (dir), 0); /* forgotten */
  /* A stale record of a pid that is some other process now: not killed. */
  f = fopen (jp, "w");
  fprintf (f, "{\"pid\":%d,\"startTime\":1,\"done\":false}", (int) getpid ());
  fclose (f);
  CU_ASSERT_EQUAL (pallet_v2v_reap_stale (dir), 0);

  /* A finished conversion is adopted while its files are there. */
  char yaml[400], disk[400];
  snprintf (yaml, sizeof yaml, "%s/g.yaml", dir);
  snprintf (disk, sizeof disk, "%s/g-sda", dir);
  fclose (fopen (yaml, "w"));
  fclose (fopen (disk, "w"));
  json_t *outs = json_pack ("{s:s,s:[{s:s}]}", "yaml", yaml, "disks", "path", disk);
  CU_ASSERT_EQUAL (pallet_v2v_mark_done (dir, outs), 0);
  json_t *got = pallet_v2v_finished (dir);
  CU_ASSERT (json_equal (got, outs));
  json_decref (got);
  unlink (disk);
  CU_ASSERT_PTR_NULL (pallet_v2v_finished (dir)); /* a disk went: redo */
  json_decref (outs);
  unlink (yaml);
  unlink (jp);
  rmdir (dir);
}

static void
test_plugin_probe (void)
{
  setenv ("PALLET_NBDKIT_PLUGINDIR", testdir, 1);
  CU_ASSERT_FALSE (pallet_v2v_have_nbdkit_plugin ("vddk"));
  unsetenv ("PALLET_NBDKIT_PLUGINDIR");
  /* Debian's nbdkit has the curl plugin and no vddk plugin. */
  if (access ("/usr/lib/x86_64-linux-gnu/nbdkit/plugins/nbdkit-curl-plugin.so", R_OK) == 0) {
    CU_ASSERT (pallet_v2v_have_nbdkit_plugin ("curl"));
    CU_ASSERT_FALSE (pallet_v2v_have_nbdkit_plugin ("vddk"));
  }
}

int
main (int argc, char **argv)
{
  testdir = argc > 1 ? argv[1] : "provider-v2v/driver/tests";
  snprintf (fake, sizeof fake, "%s/fake-virt-v2v.sh", testdir);
  snprintf (tmpdir, sizeof tmpdir, "/tmp/pallet-v2v-driver-XXXXXX");
  if (!mkdtemp (tmpdir))
    return 1;
  CU_initialize_registry ();
  CU_pSuite s = CU_add_suite ("v2v-driver", NULL, NULL);
  CU_add_test (s, "argv_inputs", test_argv_inputs);
  CU_add_test (s, "argv_refusals", test_argv_refusals);
  CU_add_test (s, "uri", test_uri);
  CU_add_test (s, "parse_real_output", test_parse_real_output);
  CU_add_test (s, "parse_forms", test_parse_forms);
  CU_add_test (s, "run_ok", test_run_ok);
  CU_add_test (s, "run_fail", test_run_fail);
  CU_add_test (s, "run_cancel_kills_group", test_run_cancel_kills_group);
  CU_add_test (s, "run_timeout", test_run_timeout);
  CU_add_test (s, "run_spawn_error_and_long_line", test_run_spawn_error_and_long_line);
  CU_add_test (s, "password_file", test_password_file);
  CU_add_test (s, "journal", test_journal);
  CU_add_test (s, "plugin_probe", test_plugin_probe);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned fails = CU_get_number_of_failures ();
  CU_cleanup_registry ();
  char cmd[400];
  snprintf (cmd, sizeof cmd, "%s/run.log", tmpdir);
  unlink (cmd);
  snprintf (cmd, sizeof cmd, "%s/argv.out", tmpdir);
  unlink (cmd);
  snprintf (cmd, sizeof cmd, "%s/child.pid", tmpdir);
  unlink (cmd);
  snprintf (cmd, sizeof cmd, "%s/child2.pid", tmpdir);
  unlink (cmd);
  snprintf (cmd, sizeof cmd, "%s/child3.pid", tmpdir);
  unlink (cmd);
  snprintf (cmd, sizeof cmd, "%s/.pallet-v2v-run.json", tmpdir);
  unlink (cmd);
  rmdir (tmpdir);
  return fails ? 1 : 0;
}
