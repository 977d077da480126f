/* SPDX-License-Identifier: Apache-2.0 */
/* First-boot scripts through virt-customize: its --firstboot installs a
 * script into libguestfs's firstboot service (/usr/lib/virt-sysprep: a
 * systemd unit, or sysvinit/upstart, that runs each script once, in name
 * order, with its output on the console and in a log), the same service
 * virt-v2v itself uses for its own first-boot work.  Spawning the tool
 * keeps one implementation of that service for every init system, rather
 * than a copy of it written with the C API. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pallet-convert.h"
#include "convert-internal.h"

/* Each script must be a readable regular file: found out now rather than
 * by the tool after an appliance start. */
static int
check_script (const char *path, char **message)
{
  struct stat st;
  const char *why = NULL;

  if (path == NULL)
    why = "no path given";
  else if (stat (path, &st) != 0)
    why = strerror (errno);
  else if (!S_ISREG (st.st_mode))
    why = "not a regular file";
  else if (access (path, R_OK) != 0)
    why = strerror (errno);
  if (why == NULL)
    return 0;
  if (asprintf (message, "first-boot script %s: %s; fix: give the path of a readable shell script",
                path ? path : "(null)", why)
      < 0)
    *message = NULL;
  return -1;
}

char **
Pallet_convert_customize_argv (const char *prog, char *const *overlays, size_t n,
                               const char *format, const struct Pallet_convert_options *o,
                               char **message)
{
  size_t max = 8 + 2 * n + 2 * (o->nfirstboot + o->nrun_scripts), a = 0;
  char **v;

  *message = NULL;
  for (size_t i = 0; i < o->nfirstboot; i++)
    if (check_script (o->firstboot[i], message) != 0)
      return NULL;
  for (size_t i = 0; i < o->nrun_scripts; i++)
    if (check_script (o->run_scripts[i], message) != 0)
      return NULL;
  v = calloc (max, sizeof *v);
  if (v == NULL)
    return NULL;
  v[a++] = (char *) prog;
  if (o->verbose) {
    v[a++] = (char *) "-v";
    v[a++] = (char *) "-x";
  }
  v[a++] = (char *) "--format";
  v[a++] = (char *) format;
  for (size_t i = 0; i < n; i++) {
    v[a++] = (char *) "-a";
    v[a++] = overlays[i];
  }
  for (size_t i = 0; i < o->nrun_scripts; i++) {
    v[a++] = (char *) "--run";
    v[a++] = (char *) o->run_scripts[i];
  }
  for (size_t i = 0; i < o->nfirstboot; i++) {
    v[a++] = (char *) "--firstboot";
    v[a++] = (char *) o->firstboot[i];
  }
  v[a] = NULL;
  return v;
}
