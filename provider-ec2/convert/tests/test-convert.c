/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for pallet_convert: the output-line parser and the error
 * mapping (fed the logs captured from real virt-v2v-in-place 2.2.0 runs in
 * fixtures/), the libvirt XML writer, and the runner (overlays, streaming,
 * commit, timeout, cancel) driven by fake-v2v.sh.
 *
 *   test-convert FIXTURES_DIR FAKE_V2V_SCRIPT
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <CUnit/Basic.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "pallet-convert.h"
#include "convert-internal.h"
#include "convert-guestfs.h"
#include <link.h>

static const char *fixtures;
static const char *fake;
static char tmpdir[] = "/tmp/pallet-convert-test-XXXXXX";

#define DISK_SIZE (1024 * 1024)

static char *
slurp (const char *dir, const char *name)
{
  char path[4096];
  FILE *fp;
  char *buf;
  long n;

  snprintf (path, sizeof path, "%s/%s", dir, name);
  fp = fopen (path, "rb");
  if (fp == NULL)
    return NULL;
  fseek (fp, 0, SEEK_END);
  n = ftell (fp);
  rewind (fp);
  buf = malloc ((size_t) n + 1);
  if (buf && fread (buf, 1, (size_t) n, fp) != (size_t) n) {
    free (buf);
    buf = NULL;
  }
  if (buf)
    buf[n] = '\0';
  fclose (fp);
  return buf;
}

/* ---- line parser on the real log ------------------------------------- */

static const char *const real_steps[] = {
  "Setting up the source: -i disk ov.qcow2",
  "Opening the source",
  "Inspecting the source",
  "Checking for sufficient free disk space in the guest",
  "Converting 12.15 to run on KVM",
  "Mapping filesystem data to avoid copying unused and blank areas",
  "Closing the overlay",
  "Assigning disks to buses",
  "Checking if the guest needs BIOS or UEFI to boot",
  "Finishing off",
};
#define NSTEPS (sizeof real_steps / sizeof real_steps[0])

static void
test_steps_real_log (void)
{
  char *log = slurp (fixtures, "inplace-debian12-ok.stdout");
  size_t nsteps = 0, nwarn = 0;
  double last = -1, inspect_at = -1;
  char *save = NULL;

  CU_ASSERT_PTR_NOT_NULL_FATAL (log);
  for (char *line = strtok_r (log, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
    double secs;
    const char *text, *w;
    if (Pallet_convert_parse_step (line, &secs, &text)) {
      CU_ASSERT_TRUE (nsteps < NSTEPS);
      if (nsteps < NSTEPS)
        CU_ASSERT_STRING_EQUAL (text, real_steps[nsteps]);
      CU_ASSERT_TRUE (secs >= last);
      last = secs;
      if (strcmp (text, "Inspecting the source") == 0)
        inspect_at = secs;
      nsteps++;
      CU_ASSERT_PTR_NULL (Pallet_convert_parse_warning (line));
    }
    else if ((w = Pallet_convert_parse_warning (line)) != NULL) {
      CU_ASSERT_STRING_EQUAL (w, "could not determine a way to update the "
                                 "configuration of Grub2");
      nwarn++;
    }
    CU_ASSERT_PTR_NULL (Pallet_convert_parse_error (line));
  }
  CU_ASSERT_EQUAL (nsteps, NSTEPS);
  CU_ASSERT_EQUAL (nwarn, 1);
  CU_ASSERT_DOUBLE_EQUAL (inspect_at, 28.9, 1e-9);
  CU_ASSERT_DOUBLE_EQUAL (last, 173.2, 1e-9);
  free (log);
}

static void
test_step_edges (void)
{
  double s = -1;
  const char *t = NULL;

  CU_ASSERT_TRUE (Pallet_convert_parse_step ("[   0.0] Setting up", &s, &t));
  CU_ASSERT_DOUBLE_EQUAL (s, 0.0, 1e-9);
  CU_ASSERT_STRING_EQUAL (t, "Setting up");
  CU_ASSERT_TRUE (Pallet_convert_parse_step ("[1234.25] Copying disk 1/1", &s, &t));
  CU_ASSERT_DOUBLE_EQUAL (s, 1234.25, 1e-9);
  CU_ASSERT_STRING_EQUAL (t, "Copying disk 1/1");
  CU_ASSERT_TRUE (Pallet_convert_parse_step ("[  7] x", &s, &t));
  CU_ASSERT_DOUBLE_EQUAL (s, 7.0, 1e-9);
  CU_ASSERT_FALSE (Pallet_convert_parse_step (NULL, &s, &t));
  CU_ASSERT_FALSE (Pallet_convert_parse_step ("", &s, &t));
  CU_ASSERT_FALSE (Pallet_convert_parse_step ("[abc] x", &s, &t));
  CU_ASSERT_FALSE (Pallet_convert_parse_step ("[ 1.5]x", &s, &t));
  CU_ASSERT_FALSE (Pallet_convert_parse_step ("[ 1.] x", &s, &t));
  CU_ASSERT_FALSE (Pallet_convert_parse_step ("[ 1.5]   ", &s, &t));
  CU_ASSERT_FALSE (Pallet_convert_parse_step ("[ ] x", &s, &t));
  CU_ASSERT_FALSE (Pallet_convert_parse_step ("[99999999999] x", &s, &t));
  CU_ASSERT_FALSE (Pallet_convert_parse_step (" [ 1.5] x", &s, &t));

  CU_ASSERT_STRING_EQUAL (Pallet_convert_parse_warning ("virt-v2v: warning: w"), "w");
  CU_ASSERT_PTR_NULL (Pallet_convert_parse_warning ("virt v2v: warning: w"));
  CU_ASSERT_PTR_NULL (Pallet_convert_parse_warning (": warning: w"));
  CU_ASSERT_PTR_NULL (Pallet_convert_parse_warning ("virt-v2v: warning:w"));
  CU_ASSERT_PTR_NULL (Pallet_convert_parse_warning (NULL));
  CU_ASSERT_STRING_EQUAL (Pallet_convert_parse_error ("libguestfs: error: e"), "e");
  CU_ASSERT_PTR_NULL (Pallet_convert_parse_error ("virt-v2v: warning: e"));
}

/* ---- error mapping ---------------------------------------------------- */

static void
test_noos_real_log (void)
{
  char *err = slurp (fixtures, "inplace-blank-noos.stderr");
  const char *disks[] = { "/srv/vol-0abc/blank.img" };
  char *msg = NULL;

  CU_ASSERT_PTR_NOT_NULL_FATAL (err);
  CU_ASSERT_EQUAL (Pallet_convert_map_error (err, disks, 1, &msg), PALLET_CONVERT_E_NO_OS);
  CU_ASSERT_PTR_NOT_NULL_FATAL (msg);
  CU_ASSERT_PTR_NOT_NULL (strstr (msg, "/srv/vol-0abc/blank.img"));
  CU_ASSERT_PTR_NOT_NULL (strstr (msg, "no operating system found"));
  CU_ASSERT_PTR_NOT_NULL (strstr (msg, "No root device found"));
  CU_ASSERT_PTR_NOT_NULL (strstr (msg, "fix: "));
  CU_ASSERT_PTR_NULL (strstr (msg, "If reporting bugs"));
  CU_ASSERT_PTR_NULL (strchr (msg, '\n'));
  free (msg);
  free (err);
}

static void
test_map_classes (void)
{
  static const struct {
    const char *text;
    enum Pallet_convert_error want;
  } cases[] = {
    { "virt-v2v-in-place: error: not enough free space for conversion on "
      "filesystem '/'.  10 bytes free < 20 bytes needed",
      PALLET_CONVERT_E_GUEST_SPACE },
    { "virt-v2v: error: not enough free inodes for conversion on filesystem "
      "'/'.  3 inodes available < 100 inodes needed",
      PALLET_CONVERT_E_GUEST_SPACE },
    { "virt-v2v: error: insufficient free space in the conversion server "
      "temporary directory /var/tmp (1G).",
      PALLET_CONVERT_E_HOST_SPACE },
    { "virt-v2v: error: virt-v2v is unable to convert this guest type "
      "(linux/gentoo)",
      PALLET_CONVERT_E_UNSUPPORTED },
    { "virt-v2v: error: guest type hurd is not supported", PALLET_CONVERT_E_UNSUPPORTED },
    { "virt-v2v: error: Dual- or multi-boot operating system detected.  "
      "Choose the root filesystem",
      PALLET_CONVERT_E_MULTIBOOT },
    { "virt-v2v: error: unable to rebuild initrd (/boot/initrd.img) because "
      "update-initramfs was not found in the guest",
      PALLET_CONVERT_E_UNSUPPORTED },
    { "qemu-img: /x.img: Could not open '/x.img': No such file or directory",
      PALLET_CONVERT_E_DISK },
    { "qemu-img: ov.qcow2: Failed to get \"write\" lock", PALLET_CONVERT_E_DISK },
    { "virt-v2v: error: libguestfs error: something new", PALLET_CONVERT_E_FAILED },
  };
  const char *disks[] = { "a.img", "b.img", "c.img" };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *msg = NULL;
    enum Pallet_convert_error e = Pallet_convert_map_error (cases[i].text, disks, 2, &msg);
    if (e != cases[i].want)
      fprintf (stderr, "case %zu: got %s want %s\n", i, Pallet_convert_error_name (e),
               Pallet_convert_error_name (cases[i].want));
    CU_ASSERT_EQUAL (e, cases[i].want);
    CU_ASSERT_PTR_NOT_NULL_FATAL (msg);
    CU_ASSERT_PTR_NOT_NULL (strstr (msg, "a.img and b.img"));
    CU_ASSERT_PTR_NOT_NULL (strstr (msg, "fix: "));
    free (msg);
    /* Classification alone, without a message. */
    CU_ASSERT_EQUAL (Pallet_convert_map_error (cases[i].text, disks, 1, NULL), cases[i].want);
  }
  {
    char *msg = NULL;
    CU_ASSERT_EQUAL (Pallet_convert_map_error (NULL, disks, 3, &msg), PALLET_CONVERT_E_FAILED);
    CU_ASSERT_PTR_NOT_NULL_FATAL (msg);
    CU_ASSERT_PTR_NOT_NULL (strstr (msg, "a.img, b.img and c.img"));
    free (msg);
  }
  CU_ASSERT_STRING_EQUAL (Pallet_convert_error_name (PALLET_CONVERT_E_NO_OS), "no-os");
  CU_ASSERT_STRING_EQUAL (Pallet_convert_error_name ((enum Pallet_convert_error) 99), "unknown");
}

/* ---- device names ------------------------------------------------------ */

static void
test_parse_devname (void)
{
  struct Pallet_convert_devname d;
  CU_ASSERT_EQUAL (Pallet_convert_parse_devname ("/dev/nvme0n1p1 / xfs", &d), 14);
  CU_ASSERT_EQUAL (d.kind, PALLET_DEVNAME_NVME);
  CU_ASSERT_EQUAL (d.controller, 0);
  CU_ASSERT_EQUAL (d.ns, 1);
  CU_ASSERT_EQUAL (d.part, 1);
  CU_ASSERT_EQUAL (Pallet_convert_parse_devname ("/dev/nvme12n1\"", &d), 13);
  CU_ASSERT_EQUAL (d.controller, 12);
  CU_ASSERT_EQUAL (d.part, 0);
  CU_ASSERT_EQUAL (Pallet_convert_parse_devname ("/dev/xvdf", &d), 9);
  CU_ASSERT_EQUAL (d.kind, PALLET_DEVNAME_XVD);
  CU_ASSERT_STRING_EQUAL (d.letters, "f");
  CU_ASSERT_EQUAL (d.part, 0);
  CU_ASSERT_EQUAL (Pallet_convert_parse_devname ("/dev/sdab12,", &d), 11);
  CU_ASSERT_EQUAL (d.kind, PALLET_DEVNAME_SD);
  CU_ASSERT_STRING_EQUAL (d.letters, "ab");
  CU_ASSERT_EQUAL (d.part, 12);
  /* Not EC2 names, or part of a longer one. */
  CU_ASSERT_EQUAL (Pallet_convert_parse_devname ("/dev/vda1", &d), 0);
  CU_ASSERT_EQUAL (Pallet_convert_parse_devname ("/dev/sda1/x", &d), 0);
  CU_ASSERT_EQUAL (Pallet_convert_parse_devname ("/dev/sda-x", &d), 0);
  CU_ASSERT_EQUAL (Pallet_convert_parse_devname ("/dev/nvme0", &d), 0);
  CU_ASSERT_EQUAL (Pallet_convert_parse_devname ("/dev/nvme0n1p", &d), 0);
  CU_ASSERT_EQUAL (Pallet_convert_parse_devname ("/dev/sd", &d), 0);
  CU_ASSERT_EQUAL (Pallet_convert_parse_devname ("/dev/disk/by-uuid/x", &d), 0);
  CU_ASSERT_EQUAL (Pallet_convert_parse_devname ("dev/sda", &d), 0);
  CU_ASSERT_EQUAL (Pallet_convert_parse_devname (NULL, &d), 0);
}

struct seen_names {
  char names[8][32];
  unsigned lines[8];
  int n;
};

/* Resolves every name but /dev/sdz to "UUID=<name's last char>". */
static char *
fake_resolve (void *opaque, unsigned line, const char *name, const struct Pallet_convert_devname *d)
{
  struct seen_names *s = opaque;
  char *out;
  (void) d;
  if (s->n < 8) {
    snprintf (s->names[s->n], sizeof s->names[0], "%s", name);
    s->lines[s->n++] = line;
  }
  if (strcmp (name, "/dev/sdz") == 0)
    return NULL;
  CU_ASSERT_FATAL (asprintf (&out, "UUID=%c", name[strlen (name) - 1]) > 0);
  return out;
}

static void
test_rewrite_text (void)
{
  struct seen_names s = { .n = 0 };
  char *out = NULL;
  size_t n = 0;
  const char *in = "GRUB_DEFAULT=0\n"
                   "  # root=/dev/nvme0n1p1 (comment)\n"
                   "GRUB_CMDLINE_LINUX=\"root=/dev/nvme0n1p1 resume=/dev/xvda3 quiet\"\n"
                   "x=/dev/sdz y=/dev/vda1 z=/mnt/dev/sda1 w=/dev/sdf\n"
                   "no newline /dev/sdb";
  CU_ASSERT_EQUAL_FATAL (Pallet_convert_rewrite_text (in, fake_resolve, &s, &out, &n), 0);
  CU_ASSERT_EQUAL (n, 4);
  CU_ASSERT_STRING_EQUAL (out, "GRUB_DEFAULT=0\n"
                               "  # root=/dev/nvme0n1p1 (comment)\n"
                               "GRUB_CMDLINE_LINUX=\"root=UUID=1 resume=UUID=3 quiet\"\n"
                               "x=/dev/sdz y=/dev/vda1 z=/mnt/dev/sda1 w=UUID=f\n"
                               "no newline UUID=b");
  CU_ASSERT_EQUAL (s.n, 5);
  CU_ASSERT_STRING_EQUAL (s.names[2], "/dev/sdz");
  CU_ASSERT_EQUAL (s.lines[0], 3);
  CU_ASSERT_EQUAL (s.lines[2], 4);
  CU_ASSERT_EQUAL (s.lines[4], 5);
  free (out);
  CU_ASSERT_EQUAL_FATAL (Pallet_convert_rewrite_text ("", fake_resolve, &s, &out, &n), 0);
  CU_ASSERT_STRING_EQUAL (out, "");
  CU_ASSERT_EQUAL (n, 0);
  free (out);
}

/* Messages kept as test data (tests/fixtures/README.md says where each
 * came from); the rest are made for real by fixup-synthetic.sh and
 * no-appliance-kernel.sh. */
static void
test_map_guest_causes (void)
{
  static const struct {
    const char *file, *problem;
    enum Pallet_convert_error want;
  } cases[] = {
    { "v2v-nvme-fstab.stderr", "the guest's /etc/fstab names a device that does not exist",
      PALLET_CONVERT_E_DEVICE_NAME },
    { "v2v-no-bootloader.stderr", "no bootloader found in the guest",
      PALLET_CONVERT_E_UNSUPPORTED },
  };
  const char *disks[] = { "/srv/d0.raw" };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *text = slurp (fixtures, cases[i].file), *msg = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL (text);
    CU_ASSERT_EQUAL (Pallet_convert_map_error (text, disks, 1, &msg), cases[i].want);
    CU_ASSERT_PTR_NOT_NULL_FATAL (msg);
    if (!strstr (msg, cases[i].problem))
      fprintf (stderr, "%s: %s\n", cases[i].file, msg);
    CU_ASSERT_PTR_NOT_NULL (strstr (msg, cases[i].problem));
    CU_ASSERT_PTR_NOT_NULL (strstr (msg, "fix: "));
    CU_ASSERT_PTR_NULL (strstr (msg, "disk path"));
    free (msg);
    free (text);
  }
  CU_ASSERT_STRING_EQUAL (Pallet_convert_error_name (PALLET_CONVERT_E_DEVICE_NAME), "device-name");
}

static void
test_condense (void)
{
  char *s = Pallet_convert_condense ("  a\n\n b\t c  ", 100);
  CU_ASSERT_STRING_EQUAL (s, "a b c");
  free (s);
  s = Pallet_convert_condense ("abcdefghij", 7);
  CU_ASSERT_STRING_EQUAL (s, "abcd...");
  free (s);
  s = Pallet_convert_join_disks (NULL, 0);
  CU_ASSERT_STRING_EQUAL (s, "(no disks)");
  free (s);
}

/* ---- libvirt XML ------------------------------------------------------ */

static char *
xpath_string (xmlDocPtr doc, const char *expr)
{
  xmlXPathContextPtr ctx = xmlXPathNewContext (doc);
  xmlXPathObjectPtr obj = xmlXPathEvalExpression (BAD_CAST expr, ctx);
  char *s = NULL;

  if (obj) {
    xmlChar *v = xmlXPathCastToString (obj);
    s = strdup ((const char *) v);
    xmlFree (v);
  }
  xmlXPathFreeObject (obj);
  xmlXPathFreeContext (ctx);
  return s;
}

static void
test_domain_xml (void)
{
  char path[4096], *v;
  const char *disks[] = { "/d/a&b <1>.qcow2", "/d/'q\".qcow2" };
  xmlDocPtr doc;

  snprintf (path, sizeof path, "%s/domain.xml", tmpdir);
  CU_ASSERT_EQUAL_FATAL (Pallet_convert_write_domain_xml (path, "vm<&>", disks, 2, "qcow2"), 0);
  doc = xmlReadFile (path, NULL, XML_PARSE_NONET);
  CU_ASSERT_PTR_NOT_NULL_FATAL (doc);
  v = xpath_string (doc, "count(/domain/devices/disk)");
  CU_ASSERT_STRING_EQUAL (v, "2");
  free (v);
  v = xpath_string (doc, "/domain/name");
  CU_ASSERT_STRING_EQUAL (v, "vm<&>");
  free (v);
  v = xpath_string (doc, "/domain/devices/disk[1]/source/@file");
  CU_ASSERT_STRING_EQUAL (v, disks[0]);
  free (v);
  v = xpath_string (doc, "/domain/devices/disk[2]/source/@file");
  CU_ASSERT_STRING_EQUAL (v, disks[1]);
  free (v);
  v = xpath_string (doc, "/domain/devices/disk[2]/target/@dev");
  CU_ASSERT_STRING_EQUAL (v, "vdb");
  free (v);
  v = xpath_string (doc, "/domain/devices/disk[1]/driver/@type");
  CU_ASSERT_STRING_EQUAL (v, "qcow2");
  free (v);
  xmlFreeDoc (doc);
  unlink (path);

  errno = 0;
  CU_ASSERT_EQUAL (Pallet_convert_write_domain_xml (path, NULL, disks, 0, NULL), -1);
  CU_ASSERT_EQUAL (errno, EINVAL);
}

/* ---- the runner, with fake-v2v.sh ------------------------------------- */

/* A 1 MiB raw disk with a known pattern; returns its path in BUF. */
static void
make_disk (char *buf, size_t len, const char *name)
{
  unsigned char *data = malloc (DISK_SIZE);
  int fd;

  snprintf (buf, len, "%s/%s", tmpdir, name);
  CU_ASSERT_PTR_NOT_NULL_FATAL (data);
  for (size_t i = 0; i < DISK_SIZE; i++)
    data[i] = (unsigned char) (i % 251);
  fd = open (buf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CU_ASSERT_TRUE_FATAL (fd >= 0);
  CU_ASSERT_EQUAL (write (fd, data, DISK_SIZE), DISK_SIZE);
  close (fd);
  free (data);
}

/* 1: the disk still holds the pattern; 2: the first 4 KiB are 0xab (the
 * fake's write, committed) and the rest holds the pattern; 0: neither. */
static int
disk_state (const char *path)
{
  unsigned char *data = malloc (DISK_SIZE);
  int fd = open (path, O_RDONLY), pattern = 1, scribbled = 1;
  struct stat st;

  if (data == NULL || fd < 0 || fstat (fd, &st) != 0 || st.st_size != DISK_SIZE
      || read (fd, data, DISK_SIZE) != DISK_SIZE) {
    free (data);
    if (fd >= 0)
      close (fd);
    return 0;
  }
  close (fd);
  for (size_t i = 0; i < DISK_SIZE; i++) {
    unsigned char want = (unsigned char) (i % 251);
    if (data[i] != want)
      pattern = 0;
    if (data[i] != (i < 4096 ? 0xab : want))
      scribbled = 0;
  }
  free (data);
  return pattern ? 1 : scribbled ? 2 : 0;
}

static int
dir_is_empty (const char *path)
{
  DIR *d = opendir (path);
  struct dirent *e;
  int n = 0;

  if (d == NULL)
    return 0;
  while ((e = readdir (d)) != NULL)
    if (strcmp (e->d_name, ".") && strcmp (e->d_name, ".."))
      n++;
  closedir (d);
  return n == 0;
}

struct seen {
  int steps;
  int last_index;
  char first[128];
  int cancel_after; /* cancel once this many steps were seen; 0: never */
  int lines;
};

static void
on_progress (void *opaque, const char *step, double elapsed, int index)
{
  struct seen *s = opaque;
  (void) elapsed;
  if (s->steps == 0)
    snprintf (s->first, sizeof s->first, "%s", step);
  CU_ASSERT_EQUAL (index, s->steps);
  s->last_index = index;
  s->steps++;
}

static void
on_line (void *opaque, int stream, const char *line)
{
  struct seen *s = opaque;
  CU_ASSERT_TRUE (stream == 1 || stream == 2);
  CU_ASSERT_PTR_NULL (strchr (line, '\r'));
  s->lines++;
}

static int
on_cancel (void *opaque)
{
  struct seen *s = opaque;
  return s->cancel_after > 0 && s->steps >= s->cancel_after;
}

static void
setup_opts (struct Pallet_convert_options *o, struct seen *s, char *work, size_t wlen)
{
  memset (o, 0, sizeof *o);
  memset (s, 0, sizeof *s);
  snprintf (work, wlen, "%s/work", tmpdir);
  mkdir (work, 0700);
  o->program = fake;
  o->work_dir = work;
  o->progress = on_progress;
  o->line = on_line;
  o->cancel = on_cancel;
  o->opaque = s;
  setenv ("FAKE_V2V_FIXTURES", fixtures, 1);
}

static void
test_run_ok_commits (void)
{
  struct Pallet_convert_options o;
  struct Pallet_convert_result r;
  struct seen s;
  char work[4096], disk[4096];
  const char *disks[1] = { disk };
  char *json;
  json_t *j;

  setup_opts (&o, &s, work, sizeof work);
  make_disk (disk, sizeof disk, "ok.img");
  setenv ("FAKE_V2V_MODE", "ok", 1);
  CU_ASSERT_EQUAL (Pallet_convert_run (disks, 1, &o, &r), PALLET_CONVERT_OK);
  CU_ASSERT_PTR_NULL (r.message);
  CU_ASSERT_EQUAL (r.exit_status, 0);
  CU_ASSERT_EQUAL (r.steps, (int) NSTEPS);
  CU_ASSERT_EQUAL (s.steps, (int) NSTEPS);
  CU_ASSERT_STRING_EQUAL (s.first, "Setting up the source: -i disk ov.qcow2");
  CU_ASSERT_TRUE (s.lines > (int) NSTEPS);
  CU_ASSERT_EQUAL_FATAL (r.nwarnings, 2);
  CU_ASSERT_STRING_EQUAL (r.warnings[0], "could not determine a way to update "
                                         "the configuration of Grub2");
  CU_ASSERT_STRING_EQUAL (r.warnings[1], "a last warning without newline");
  CU_ASSERT_EQUAL (disk_state (disk), 2); /* converted data committed */
  CU_ASSERT_TRUE (dir_is_empty (work));   /* overlays removed */

  json = Pallet_convert_result_to_json (&r);
  CU_ASSERT_PTR_NOT_NULL_FATAL (json);
  j = json_loads (json, 0, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (j);
  CU_ASSERT_TRUE (json_is_true (json_object_get (j, "ok")));
  CU_ASSERT_STRING_EQUAL (json_string_value (json_object_get (j, "error")), "ok");
  CU_ASSERT_EQUAL (json_array_size (json_object_get (j, "warnings")), 2);
  CU_ASSERT_EQUAL (json_integer_value (json_object_get (j, "steps")), (json_int_t) NSTEPS);
  json_decref (j);
  free (json);
  Pallet_convert_result_free (&r);
}

static void
test_run_noos_leaves_disk (void)
{
  struct Pallet_convert_options o;
  struct Pallet_convert_result r;
  struct seen s;
  char work[4096], disk[4096];
  const char *disks[1] = { disk };

  setup_opts (&o, &s, work, sizeof work);
  make_disk (disk, sizeof disk, "noos.img");
  setenv ("FAKE_V2V_MODE", "noos", 1);
  CU_ASSERT_EQUAL (Pallet_convert_run (disks, 1, &o, &r), PALLET_CONVERT_E_NO_OS);
  CU_ASSERT_EQUAL (r.exit_status, 1);
  CU_ASSERT_EQUAL (r.steps, 3);
  CU_ASSERT_PTR_NOT_NULL_FATAL (r.message);
  CU_ASSERT_PTR_NOT_NULL (strstr (r.message, disk));
  CU_ASSERT_PTR_NOT_NULL (strstr (r.message, "no operating system found"));
  CU_ASSERT_EQUAL (disk_state (disk), 1); /* byte-identical */
  CU_ASSERT_TRUE (dir_is_empty (work));
  Pallet_convert_result_free (&r);
}

static int
process_gone (pid_t pid)
{
  char path[64], *stat;
  int gone;

  snprintf (path, sizeof path, "/proc/%d", (int) pid);
  stat = slurp (path, "stat");
  if (stat == NULL)
    return 1;
  /* "pid (comm) S ...": a zombie (Z) is dead too. */
  gone = strstr (stat, ") Z") != NULL || strstr (stat, ") X") != NULL;
  free (stat);
  return gone;
}

static void
run_hang (int timeout, int cancel_after, enum Pallet_convert_error want)
{
  struct Pallet_convert_options o;
  struct Pallet_convert_result r;
  struct seen s;
  char work[4096], disk[4096], pidfile[4096], *pidtext;
  const char *disks[1] = { disk };
  int child;

  setup_opts (&o, &s, work, sizeof work);
  make_disk (disk, sizeof disk, "hang.img");
  snprintf (pidfile, sizeof pidfile, "%s/hang.pid", tmpdir);
  unlink (pidfile);
  setenv ("FAKE_V2V_MODE", "hang", 1);
  setenv ("FAKE_V2V_PIDFILE", pidfile, 1);
  o.timeout_seconds = (unsigned) timeout;
  s.cancel_after = cancel_after;
  CU_ASSERT_EQUAL (Pallet_convert_run (disks, 1, &o, &r), want);
  CU_ASSERT_TRUE (r.elapsed < 30);
  CU_ASSERT_PTR_NOT_NULL_FATAL (r.message);
  CU_ASSERT_PTR_NOT_NULL (strstr (r.message, disk));
  CU_ASSERT_PTR_NOT_NULL (strstr (r.message, "Opening the source"));
  CU_ASSERT_EQUAL (disk_state (disk), 1);
  CU_ASSERT_TRUE (dir_is_empty (work));
  /* The whole process group went, not just the direct child. */
  pidtext = slurp (tmpdir, "hang.pid");
  CU_ASSERT_PTR_NOT_NULL_FATAL (pidtext);
  child = atoi (pidtext);
  CU_ASSERT_TRUE (child > 1);
  for (int i = 0; i < 50 && !process_gone (child); i++)
    usleep (100000);
  CU_ASSERT_TRUE (process_gone (child));
  free (pidtext);
  Pallet_convert_result_free (&r);
}

static void
test_run_timeout_kills_group (void)
{
  run_hang (2, 0, PALLET_CONVERT_E_TIMEOUT);
}

static void
test_run_cancel_kills_group (void)
{
  run_hang (0, 2, PALLET_CONVERT_E_CANCELLED);
}

static void
test_run_two_disks_libvirtxml (void)
{
  struct Pallet_convert_options o;
  struct Pallet_convert_result r;
  struct seen s;
  char work[4096], d1[4096], d2[4096], xml[4096], *v;
  const char *disks[2] = { d1, d2 };
  xmlDocPtr doc;

  setup_opts (&o, &s, work, sizeof work);
  make_disk (d1, sizeof d1, "multi-1.img");
  make_disk (d2, sizeof d2, "multi-2.img");
  snprintf (xml, sizeof xml, "%s/seen.xml", tmpdir);
  setenv ("FAKE_V2V_MODE", "xml", 1);
  setenv ("FAKE_V2V_XML_COPY", xml, 1);
  CU_ASSERT_EQUAL (Pallet_convert_run (disks, 2, &o, &r), PALLET_CONVERT_OK);
  CU_ASSERT_EQUAL (disk_state (d1), 2);
  CU_ASSERT_EQUAL (disk_state (d2), 2);
  CU_ASSERT_TRUE (dir_is_empty (work));
  doc = xmlReadFile (xml, NULL, XML_PARSE_NONET);
  CU_ASSERT_PTR_NOT_NULL_FATAL (doc);
  v = xpath_string (doc, "count(/domain/devices/disk[driver/@type='qcow2'])");
  CU_ASSERT_STRING_EQUAL (v, "2");
  free (v);
  xmlFreeDoc (doc);
  Pallet_convert_result_free (&r);
}

static void
test_run_bad_inputs (void)
{
  struct Pallet_convert_options o;
  struct Pallet_convert_result r;
  struct seen s;
  char work[4096], disk[4096], missing[4096];
  const char *disks[1] = { missing };

  setup_opts (&o, &s, work, sizeof work);
  snprintf (missing, sizeof missing, "%s/no-such-disk.img", tmpdir);
  CU_ASSERT_EQUAL (Pallet_convert_run (disks, 1, &o, &r), PALLET_CONVERT_E_DISK);
  CU_ASSERT_PTR_NOT_NULL_FATAL (r.message);
  CU_ASSERT_PTR_NOT_NULL (strstr (r.message, missing));
  CU_ASSERT_PTR_NOT_NULL (strstr (r.message, "fix: "));
  Pallet_convert_result_free (&r);

  CU_ASSERT_EQUAL (Pallet_convert_run (NULL, 0, &o, &r), PALLET_CONVERT_E_INVALID);
  Pallet_convert_result_free (&r);

  make_disk (disk, sizeof disk, "tool.img");
  disks[0] = disk;
  o.program = "/nonexistent/virt-v2v-in-place";
  CU_ASSERT_EQUAL (Pallet_convert_run (disks, 1, &o, &r), PALLET_CONVERT_E_TOOL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (r.message);
  CU_ASSERT_PTR_NOT_NULL (strstr (r.message, "install virt-v2v"));
  CU_ASSERT_EQUAL (disk_state (disk), 1);
  CU_ASSERT_TRUE (dir_is_empty (work));
  Pallet_convert_result_free (&r);

  /* A disk in the wrong format: qemu-img refuses to make the overlay. */
  o.program = fake;
  o.disk_format = "qcow2";
  CU_ASSERT_EQUAL (Pallet_convert_run (disks, 1, &o, &r), PALLET_CONVERT_E_DISK);
  CU_ASSERT_PTR_NOT_NULL_FATAL (r.message);
  CU_ASSERT_PTR_NOT_NULL (strstr (r.message, disk));
  CU_ASSERT_EQUAL (disk_state (disk), 1);
  CU_ASSERT_TRUE (dir_is_empty (work));
  Pallet_convert_result_free (&r);
}

static void
remove_tree (void)
{
  DIR *d;
  struct dirent *e;
  char path[4096];

  snprintf (path, sizeof path, "%s/work", tmpdir);
  rmdir (path);
  d = opendir (tmpdir);
  while (d && (e = readdir (d)) != NULL) {
    if (strcmp (e->d_name, ".") && strcmp (e->d_name, "..")) {
      snprintf (path, sizeof path, "%s/%s", tmpdir, e->d_name);
      unlink (path);
    }
  }
  if (d)
    closedir (d);
  rmdir (tmpdir);
}

static int
find_guestfs (struct dl_phdr_info *info, size_t size, void *data)
{
  (void) size;
  if (strstr (info->dlpi_name, "libguestfs.so"))
    *(int *) data = 1;
  return 0;
}

/* libguestfs is not mapped until the first handle; then every call works
 * through the pointers (a handle's backend round-trips). */
static void
test_guestfs_on_first_use (void)
{
  int mapped = 0;
  dl_iterate_phdr (find_guestfs, &mapped);
  CU_ASSERT_EQUAL (mapped, 0);
  guestfs_h *g = guestfs_create ();
  CU_ASSERT_PTR_NOT_NULL_FATAL (g);
  CU_ASSERT_PTR_NULL (Pallet_guestfs_load_error ());
  dl_iterate_phdr (find_guestfs, &mapped);
  CU_ASSERT_EQUAL (mapped, 1);
  guestfs_set_error_handler (g, NULL, NULL);
  CU_ASSERT_EQUAL (guestfs_set_backend (g, "direct"), 0);
  guestfs_close (g);
}

int
main (int argc, char *argv[])
{
  CU_pSuite s;
  unsigned failed;

  if (argc != 3) {
    fprintf (stderr, "usage: %s FIXTURES_DIR FAKE_V2V_SCRIPT\n", argv[0]);
    return 2;
  }
  fixtures = argv[1];
  fake = argv[2];
  if (mkdtemp (tmpdir) == NULL) {
    perror (tmpdir);
    return 2;
  }
  if (CU_initialize_registry () != CUE_SUCCESS)
    return 2;
  s = CU_add_suite ("pallet_convert", NULL, NULL);
  CU_add_test (s, "steps from a real run's log", test_steps_real_log);
  CU_add_test (s, "step/warning/error line edges", test_step_edges);
  CU_add_test (s, "no-OS error from a real run's log", test_noos_real_log);
  CU_add_test (s, "error classes and messages", test_map_classes);
  CU_add_test (s, "condense and join", test_condense);
  CU_add_test (s, "EC2 device names", test_parse_devname);
  CU_add_test (s, "device-name rewrite of a text", test_rewrite_text);
  CU_add_test (s, "guest causes from real messages", test_map_guest_causes);
  CU_add_test (s, "libvirt domain XML", test_domain_xml);
  CU_add_test (s, "run: success commits the overlay", test_run_ok_commits);
  CU_add_test (s, "run: failure leaves the disk", test_run_noos_leaves_disk);
  CU_add_test (s, "run: timeout kills the process group", test_run_timeout_kills_group);
  CU_add_test (s, "run: cancel kills the process group", test_run_cancel_kills_group);
  CU_add_test (s, "run: two disks through libvirt XML", test_run_two_disks_libvirtxml);
  CU_add_test (s, "run: bad inputs", test_run_bad_inputs);
  CU_add_test (s, "libguestfs loaded on first use", test_guestfs_on_first_use);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  failed = CU_get_number_of_failures () + CU_get_number_of_tests_failed ();
  CU_cleanup_registry ();
  xmlCleanupParser ();
  remove_tree ();
  return failed ? 1 : 0;
}
