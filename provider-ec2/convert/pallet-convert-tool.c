/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-convert-tool: command-line front end to libpallet_convert, used by
 * the integration tests and handy by hand.
 *
 *   pallet-convert-tool inspect [--tcg] [--format FMT] DISK...
 *   pallet-convert-tool convert [--tcg] [--timeout SECS] [--root ROOT]
 *                               [--format FMT] [--work-dir DIR]
 *                               [--libvirtxml] [--verbose] [--log FILE|-]
 *                               [--result-file FILE] DISK...
 *   pallet-convert-tool domain-xml OUT.xml [--format FMT] DISK...
 *   pallet-convert-tool verify [--tcg] [--format FMT] DISK...
 *   pallet-convert-tool boot [--firmware bios|uefi] [--compat] [--accel A]
 *                            [--timeout SECS] [--expect TEXT]... [--qemu PROG]
 *                            [--format FMT] [--work-dir DIR] DISK...
 *   pallet-convert-tool fixup [--tcg] [--format FMT] [--device NAME=INDEX]...
 *                             DISK...        (writes DISK: pass copies)
 *   convert also takes --fix-device-names and --device NAME=INDEX; pod
 *   takes them too, for the Pod's command.
 *   pallet-convert-tool map-error TEXT-FILE DISK...  (class: message)
 *   pallet-convert-tool pod OUT.json|- --name N --namespace NS [--image I]
 *                       [--zone Z] [--vm-id ID] [--plan-uid U]
 *                       [--migration-uid U] [--cpu Q] [--memory Q] [--tcg]
 *                       CLAIM...
 *
 * inspect prints the inspection JSON; convert prints progress on stderr and
 * the result JSON on stdout (and, with --result-file, into that file, cut
 * under 4096 bytes: a Pod's termination message).  --log - sends
 * virt-v2v's lines to stderr (a Pod's log).  The exit status is the Pallet_convert_error
 * (0 = success).  SIGINT/SIGTERM cancel a conversion cleanly.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pallet-convert.h"

static volatile sig_atomic_t stop;

static void
on_signal (int sig)
{
  (void) sig;
  stop = 1;
}

static int
cancel_cb (void *opaque)
{
  (void) opaque;
  return stop;
}

static void
progress_cb (void *opaque, const char *step, double elapsed, int index)
{
  (void) opaque;
  fprintf (stderr, "pallet-convert-tool: step %d at %.1fs: %s\n", index + 1, elapsed, step);
}

static void
line_cb (void *opaque, int stream, const char *line)
{
  if (opaque)
    fprintf ((FILE *) opaque, "%s: %s\n", stream == 1 ? "out" : "err", line);
}

static struct Pallet_convert_device devices[64];

/* --device /dev/sdf=1: the block-device mapping, one volume at a time. */
static int
add_device (struct Pallet_convert_options *o, char *arg)
{
  char *eq = strrchr (arg, '='), *end;
  unsigned long disk;
  if (eq == NULL || eq == arg || o->ndevices >= sizeof devices / sizeof devices[0]) {
    fprintf (stderr,
             "pallet-convert-tool: --device '%s': expected NAME=DISK-INDEX "
             "(e.g. /dev/sdf=1), at most 64\n",
             arg);
    return PALLET_CONVERT_E_INVALID;
  }
  disk = strtoul (eq + 1, &end, 10);
  if (eq[1] == '\0' || *end != '\0') {
    fprintf (stderr, "pallet-convert-tool: --device '%s': '%s' is not a disk index\n", arg, eq + 1);
    return PALLET_CONVERT_E_INVALID;
  }
  *eq = '\0';
  devices[o->ndevices].name = arg;
  devices[o->ndevices++].disk = disk;
  o->devices = devices;
  return 0;
}

static int
usage (void)
{
  fprintf (stderr,
           "usage: pallet-convert-tool inspect [--tcg] [--format FMT] DISK...\n"
           "       pallet-convert-tool convert [--tcg] [--timeout SECS] [--root ROOT]\n"
           "                 [--format FMT] [--work-dir DIR] [--libvirtxml]\n"
           "                 [--verbose] [--log FILE|-] [--result-file FILE]\n"
           "                 [--firstboot SCRIPT]... [--run-script SCRIPT]... DISK...\n"
           "       pallet-convert-tool domain-xml OUT.xml [--format FMT] DISK...\n"
           "       pallet-convert-tool verify [--tcg] [--format FMT] DISK...\n"
           "       pallet-convert-tool boot [--firmware bios|uefi] [--compat] [--mode true|warn]\n"
           "                 [--accel auto|kvm|tcg] [--timeout SECS] [--expect TEXT]...\n"
           "                 [--qemu PROG] [--format FMT] [--work-dir DIR] DISK...\n"
           "       pallet-convert-tool fixup [--tcg] [--format FMT]\n"
           "                 [--device NAME=INDEX]... DISK...\n"
           "       (convert and pod also take --fix-device-names, --device NAME=INDEX)\n"
           "       pallet-convert-tool map-error TEXT-FILE DISK...\n"
           "       pallet-convert-tool pod OUT.json|- --name N --namespace NS\n"
           "                 [--image I] [--zone Z] [--vm-id ID] [--plan-uid U]\n"
           "                 [--migration-uid U] [--cpu Q] [--memory Q] [--tcg]\n"
           "                 CLAIM...\n");
  return PALLET_CONVERT_E_INVALID;
}

/* Parses the options after the command (and its output path); returns 0 or
   the exit status. */
#define MAX_LIST 64

/* What the boot and convert commands take beyond the conversion options. */
struct extra {
  struct Pallet_convert_boot_options bo;
  const char *expect[MAX_LIST + 1];
  size_t nexpect;
  const char *firstboot[MAX_LIST], *run[MAX_LIST];
  size_t nfirstboot, nrun;
  int mode;                /* PALLET_CONVERT_BOOT_*; 0 (unset) boots as "true" */
  const char *result_file; /* convert --result-file */
};

static int
add_to (const char **list, size_t *n, const char *v, const char *opt)
{
  if (*n >= MAX_LIST) {
    fprintf (stderr, "pallet-convert-tool: more than %d %s options\n", MAX_LIST, opt);
    return PALLET_CONVERT_E_INVALID;
  }
  list[(*n)++] = v;
  return 0;
}

static int
parse_options (int argc, char *argv[], struct Pallet_convert_options *o,
               struct Pallet_convert_pod_options *po, const char **log_path, struct extra *x)
{
  static const struct option longopts[] = { { "tcg", no_argument, NULL, 't' },
                                            { "timeout", required_argument, NULL, 'T' },
                                            { "root", required_argument, NULL, 'r' },
                                            { "format", required_argument, NULL, 'f' },
                                            { "work-dir", required_argument, NULL, 'w' },
                                            { "libvirtxml", no_argument, NULL, 'x' },
                                            { "verbose", no_argument, NULL, 'v' },
                                            { "log", required_argument, NULL, 'l' },
                                            { "name", required_argument, NULL, 'N' },
                                            { "namespace", required_argument, NULL, 'n' },
                                            { "image", required_argument, NULL, 'i' },
                                            { "zone", required_argument, NULL, 'z' },
                                            { "vm-id", required_argument, NULL, 'I' },
                                            { "plan-uid", required_argument, NULL, 'P' },
                                            { "migration-uid", required_argument, NULL, 'M' },
                                            { "cpu", required_argument, NULL, 'c' },
                                            { "memory", required_argument, NULL, 'm' },
                                            { "firmware", required_argument, NULL, 'F' },
                                            { "compat", no_argument, NULL, 'C' },
                                            { "mode", required_argument, NULL, 'O' },
                                            { "accel", required_argument, NULL, 'A' },
                                            { "expect", required_argument, NULL, 'E' },
                                            { "qemu", required_argument, NULL, 'Q' },
                                            { "firstboot", required_argument, NULL, 'B' },
                                            { "run-script", required_argument, NULL, 'R' },
                                            { "fix-device-names", no_argument, NULL, 'X' },
                                            { "device", required_argument, NULL, 'D' },
                                            { "result-file", required_argument, NULL, 'W' },
                                            { NULL, 0, NULL, 0 } };
  int c;
  while ((c = getopt_long (argc, argv, "", longopts, NULL)) != -1) {
    char *end;
    switch (c) {
    case 't': o->force_tcg = 1; break;
    case 'T':
      o->timeout_seconds = (unsigned) strtoul (optarg, &end, 10);
      if (*optarg == '\0' || *end != '\0') {
        fprintf (stderr,
                 "pallet-convert-tool: --timeout '%s' is not a number "
                 "of seconds\n",
                 optarg);
        return PALLET_CONVERT_E_INVALID;
      }
      break;
    case 'r': o->root = optarg; break;
    case 'f': o->disk_format = optarg; break;
    case 'w': o->work_dir = optarg; break;
    case 'x': o->use_libvirtxml = 1; break;
    case 'v': o->verbose = 1; break;
    case 'l': *log_path = optarg; break;
    case 'N': po->name = optarg; break;
    case 'n': po->namespace_ = optarg; break;
    case 'i': po->image = optarg; break;
    case 'z': po->zone = optarg; break;
    case 'I': po->vm_id = optarg; break;
    case 'P': po->plan_uid = optarg; break;
    case 'M': po->migration_uid = optarg; break;
    case 'c': po->cpu_request = optarg; break;
    case 'm': po->memory_request = optarg; break;
    case 'F': x->bo.firmware = optarg; break;
    case 'C': x->bo.compat = 1; break;
    case 'O':
      if ((x->mode = Pallet_convert_boot_mode (optarg)) == -1) {
        fprintf (stderr, "pallet-convert-tool: --mode '%s': use true, false or warn\n", optarg);
        return PALLET_CONVERT_E_INVALID;
      }
      break;
    case 'A': x->bo.accel = optarg; break;
    case 'Q': x->bo.qemu = optarg; break;
    case 'E':
      if (add_to (x->expect, &x->nexpect, optarg, "--expect"))
        return PALLET_CONVERT_E_INVALID;
      break;
    case 'B':
      if (add_to (x->firstboot, &x->nfirstboot, optarg, "--firstboot"))
        return PALLET_CONVERT_E_INVALID;
      break;
    case 'R':
      if (add_to (x->run, &x->nrun, optarg, "--run-script"))
        return PALLET_CONVERT_E_INVALID;
      break;
    case 'X': o->fix_device_names = 1; break;
    case 'W': x->result_file = optarg; break;
    case 'D':
      if (add_device (o, optarg) != 0)
        return PALLET_CONVERT_E_INVALID;
      break;
    default: return usage ();
    }
  }
  return 0;
}

static int
cmd_domain_xml (const char *xml_out, const char *const *disks, size_t ndisks,
                const struct Pallet_convert_options *o)
{
  if (Pallet_convert_write_domain_xml (xml_out, "pallet-guest", disks, ndisks, o->disk_format)
      == -1) {
    perror (xml_out);
    return PALLET_CONVERT_E_IO;
  }
  return 0;
}

static int
cmd_pod (const char *out, const char *const *claims, size_t nclaims,
         const struct Pallet_convert_options *o, struct Pallet_convert_pod_options *po)
{
  char *err = NULL;
  json_t *pod;
  int r;

  po->claims = claims;
  po->nclaims = nclaims;
  po->force_tcg = o->force_tcg;
  po->fix_device_names = o->fix_device_names;
  po->devices = o->devices;
  po->ndevices = o->ndevices;
  pod = Pallet_convert_pod_manifest (po, &err);
  if (pod == NULL) {
    fprintf (stderr, "pallet-convert-tool: %s\n", err ? err : "out of memory");
    free (err);
    return PALLET_CONVERT_E_INVALID;
  }
  if (strcmp (out, "-") == 0)
    r = json_dumpf (pod, stdout, JSON_INDENT (2) | JSON_SORT_KEYS);
  else
    r = json_dump_file (pod, out, JSON_INDENT (2) | JSON_SORT_KEYS);
  json_decref (pod);
  if (r != 0) {
    fprintf (stderr,
             "pallet-convert-tool: cannot write the pod manifest "
             "to %s; check the path and free space\n",
             out);
    return PALLET_CONVERT_E_IO;
  }
  return 0;
}

static int
cmd_verify (const char *const *disks, size_t ndisks, const struct Pallet_convert_options *o)
{
  struct Pallet_convert_verify_options vo = { .force_tcg = o->force_tcg,
                                              .disk_format = o->disk_format };
  char *json = NULL, *msg = NULL;
  int rc = Pallet_convert_verify (disks, ndisks, &vo, &json, &msg);
  if (json)
    printf ("%s\n", json);
  if (msg)
    fprintf (stderr, "pallet-convert-tool: %s%s\n", rc == PALLET_CONVERT_OK ? "" : "error: ", msg);
  else if (rc != PALLET_CONVERT_OK)
    fprintf (stderr, "pallet-convert-tool: error (%s)\n", Pallet_convert_error_name (rc));
  /* A guest that fails a check: exit 11 (failed), like a conversion. */
  if (rc == PALLET_CONVERT_OK && msg)
    rc = PALLET_CONVERT_E_FAILED;
  free (json);
  free (msg);
  return rc;
}

static int
cmd_fixup (const char *const *disks, size_t ndisks, const struct Pallet_convert_options *o)
{
  struct Pallet_convert_fixup_options fo = { .force_tcg = o->force_tcg,
                                             .disk_format = o->disk_format,
                                             .devices = o->devices,
                                             .ndevices = o->ndevices };
  struct Pallet_convert_rewrite *rw = NULL;
  size_t nrw = 0;
  char *msg = NULL;
  int rc = Pallet_convert_fixup (disks, ndisks, &fo, &rw, &nrw, &msg);
  if (rc == PALLET_CONVERT_OK) {
    json_t *j = Pallet_convert_rewrites_json (rw, nrw);
    char *s = j ? json_dumps (j, JSON_COMPACT) : NULL;
    printf ("%s\n", s ? s : "null");
    free (s);
    json_decref (j);
  }
  else
    fprintf (stderr, "pallet-convert-tool: error (%s): %s\n", Pallet_convert_error_name (rc),
             msg ? msg : "out of memory");
  Pallet_convert_rewrites_free (rw, nrw);
  free (msg);
  return rc;
}

/* map-error FILE: classify a captured virt-v2v/libguestfs error text. */
static int
cmd_map_error (const char *path, const char *const *disks, size_t ndisks)
{
  FILE *fp = fopen (path, "r");
  char *text = NULL, *msg = NULL;
  size_t len = 0;
  if (fp == NULL) {
    perror (path);
    return PALLET_CONVERT_E_IO;
  }
  if (getdelim (&text, &len, '\0', fp) < 0) {
    free (text);
    text = strdup ("");
  }
  fclose (fp);
  enum Pallet_convert_error e = Pallet_convert_map_error (text, disks, ndisks, &msg);
  printf ("%s: %s\n", Pallet_convert_error_name (e), msg ? msg : "out of memory");
  free (text);
  free (msg);
  return 0;
}

static int
cmd_inspect (const char *const *disks, size_t ndisks, const struct Pallet_convert_options *o)
{
  struct Pallet_convert_inspect_options io = { .force_tcg = o->force_tcg,
                                               .disk_format = o->disk_format };
  char *json = NULL, *msg = NULL;
  int rc = Pallet_convert_inspect (disks, ndisks, &io, &json, &msg);
  if (rc == PALLET_CONVERT_OK)
    printf ("%s\n", json);
  else
    fprintf (stderr, "pallet-convert-tool: error (%s): %s\n", Pallet_convert_error_name (rc),
             msg ? msg : "out of memory");
  free (json);
  free (msg);
  return rc;
}

/* The result, cut to a termination message's size, into PATH.  A file
 * that cannot be written costs the caller its record, not the conversion. */
static void
write_result_file (const char *path, const struct Pallet_convert_result *res)
{
  char *json = Pallet_convert_result_to_json_max (res, PALLET_CONVERT_POD_RESULT_MAX);
  FILE *f = json ? fopen (path, "w") : NULL;

  if (f == NULL || fputs (json, f) == EOF || fclose (f) != 0)
    fprintf (stderr, "pallet-convert-tool: warning: --result-file %s: %s\n", path,
             json ? strerror (errno) : "out of memory");
  free (json);
}

static int
cmd_convert (const char *const *disks, size_t ndisks, struct Pallet_convert_options *o,
             const char *log_path, const char *result_file)
{
  struct sigaction sa = { .sa_handler = on_signal };
  struct Pallet_convert_result res;
  FILE *log = NULL;
  char *json;
  int rc;

  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  if (log_path && strcmp (log_path, "-") == 0)
    log = stderr; /* a Pod's log: virt-v2v's own lines, its error among them */
  else if (log_path && (log = fopen (log_path, "w")) == NULL) {
    perror (log_path);
    return PALLET_CONVERT_E_IO;
  }
  o->progress = progress_cb;
  o->cancel = cancel_cb;
  o->line = line_cb;
  o->opaque = log;
  rc = Pallet_convert_run (disks, ndisks, o, &res);
  if (log && log != stderr)
    fclose (log);
  for (size_t i = 0; i < res.nwarnings; i++)
    fprintf (stderr, "pallet-convert-tool: warning: %s\n", res.warnings[i]);
  if (rc != PALLET_CONVERT_OK)
    fprintf (stderr, "pallet-convert-tool: error (%s): %s\n", Pallet_convert_error_name (rc),
             res.message ? res.message : "out of memory");
  json = Pallet_convert_result_to_json (&res);
  if (json)
    printf ("%s\n", json);
  free (json);
  if (result_file)
    write_result_file (result_file, &res);
  Pallet_convert_result_free (&res);
  return rc;
}

/* Boots the disks and prints the boot report; exit status = its class. */
static int
cmd_boot (const char *const *disks, size_t ndisks, const struct Pallet_convert_options *o,
          struct extra *x)
{
  struct sigaction sa = { .sa_handler = on_signal };
  struct Pallet_convert_boot_result res;
  char *text = NULL;

  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  x->bo.timeout_seconds = o->timeout_seconds;
  x->bo.disk_format = o->disk_format;
  x->bo.work_dir = o->work_dir;
  x->bo.expect = x->nexpect ? x->expect : NULL;
  x->bo.cancel = cancel_cb;
  int rc = Pallet_convert_boot (disks, ndisks, &x->bo, &res);
  json_t *j = Pallet_convert_boot_result_json (&res, x->bo.expect);
  if (j && (text = json_dumps (j, JSON_INDENT (2) | JSON_SORT_KEYS)) != NULL)
    printf ("%s\n", text);
  else
    rc = PALLET_CONVERT_E_NOMEM;
  /* warn: a guest that did not come up is reported, not a failure. */
  int warn = x->mode == PALLET_CONVERT_BOOT_WARN
             && (rc == PALLET_CONVERT_E_FAILED || rc == PALLET_CONVERT_E_TIMEOUT);
  if (rc != PALLET_CONVERT_OK)
    fprintf (stderr, "pallet-convert-tool: %s (%s): %s\n", warn ? "warning" : "error",
             Pallet_convert_error_name (rc),
             text == NULL  ? "cannot write the boot report: out of memory"
             : res.message ? res.message
                           : "out of memory");
  free (text);
  json_decref (j);
  Pallet_convert_boot_result_free (&res);
  return warn ? 0 : rc;
}

int
main (int argc, char *argv[])
{
  struct Pallet_convert_options o = { 0 };
  struct Pallet_convert_pod_options po = { 0 };
  static struct extra x;
  const char *cmd, *xml_out = NULL, *log_path = NULL;
  int rc;

  if (argc < 2)
    return usage ();
  cmd = argv[1];
  optind = 2;
  if (strcmp (cmd, "domain-xml") == 0 || strcmp (cmd, "pod") == 0
      || strcmp (cmd, "map-error") == 0) {
    if (argc < 3)
      return usage ();
    xml_out = argv[2];
    optind = 3;
  }
  rc = parse_options (argc, argv, &o, &po, &log_path, &x);
  if (rc != 0)
    return rc;
  if (optind >= argc)
    return usage ();
  const char *const *disks = (const char *const *) &argv[optind];
  size_t ndisks = (size_t) (argc - optind);

  if (strcmp (cmd, "domain-xml") == 0)
    return cmd_domain_xml (xml_out, disks, ndisks, &o);
  if (strcmp (cmd, "map-error") == 0)
    return cmd_map_error (xml_out, disks, ndisks);
  if (strcmp (cmd, "pod") == 0)
    return cmd_pod (xml_out, disks, ndisks, &o, &po);
  if (strcmp (cmd, "verify") == 0)
    return cmd_verify (disks, ndisks, &o);
  if (strcmp (cmd, "inspect") == 0)
    return cmd_inspect (disks, ndisks, &o);
  if (strcmp (cmd, "fixup") == 0)
    return cmd_fixup (disks, ndisks, &o);
  if (strcmp (cmd, "boot") == 0)
    return cmd_boot (disks, ndisks, &o, &x);
  o.firstboot = x.firstboot;
  o.nfirstboot = x.nfirstboot;
  o.run_scripts = x.run;
  o.nrun_scripts = x.nrun;
  if (strcmp (cmd, "convert") == 0)
    return cmd_convert (disks, ndisks, &o, log_path, x.result_file);
  return usage ();
}
