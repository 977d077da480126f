/* SPDX-License-Identifier: Apache-2.0 */
/* virt-v2v argv and libvirt URIs for every input. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pallet-v2v-driver.h"

struct vec {
  char **v;
  size_t n, cap;
  int oom;
};

static void
push (struct vec *a, const char *s)
{
  if (a->oom)
    return;
  if (a->n + 2 > a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 32;
    char **v = realloc (a->v, cap * sizeof *v);
    if (!v) {
      a->oom = 1;
      return;
    }
    a->v = v;
    a->cap = cap;
  }
  if (!(a->v[a->n] = strdup (s))) {
    a->oom = 1;
    return;
  }
  a->v[++a->n] = NULL;
}

static void
pushf (struct vec *a, const char *fmt, ...)
{
  char buf[4096];
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  if (n < 0 || (size_t) n >= sizeof buf)
    a->oom = 1;
  else
    push (a, buf);
}

void
pallet_v2v_argv_free (char **argv)
{
  for (size_t i = 0; argv && argv[i]; i++)
    free (argv[i]);
  free (argv);
}

static char *
fail (char **err, const char *msg)
{
  if (err)
    *err = strdup (msg);
  return NULL;
}

static int
empty (const char *s)
{
  return s == NULL || *s == '\0';
}

/* A value that would start with '-' would be read as an option. */
static int
looks_like_option (const char *s)
{
  return s && s[0] == '-';
}

static const char *
check_source (const struct pallet_v2v_source *src)
{
  switch (src->input) {
  case PALLET_V2V_IN_VPX:
  case PALLET_V2V_IN_ESX:
    if (empty (src->uri))
      return "a vSphere source needs the libvirt URI (vpx:// or esx://); set the Provider's url";
    if (strncmp (src->uri, src->input == PALLET_V2V_IN_VPX ? "vpx://" : "esx://", 6))
      return "the vSphere URI must start with vpx:// (vCenter) or esx:// (ESXi)";
    if (src->transport == PALLET_V2V_VDDK) {
      if (empty (src->vddk_libdir))
        return "VDDK transfer needs vddk-libdir (the directory of VMware's vmware-vix-disklib-distrib); set the Provider setting vddk-libdir";
      if (empty (src->vddk_thumbprint))
        return "VDDK transfer needs the server's SHA-1 thumbprint (virt-v2v 2.2.0 requires it); set the Secret's thumbprint";
    }
    else if (src->transport != PALLET_V2V_HTTPS)
      return "unknown transport; use HTTPS or VDDK";
    break;
  case PALLET_V2V_IN_XEN:
    if (empty (src->uri) || strncmp (src->uri, "xen+ssh://", 10))
      return "a Xen source needs a xen+ssh://USER@DOM0 URI; set the Provider's url";
    break;
  case PALLET_V2V_IN_OVA:
    if (empty (src->ova))
      return "an OVA source needs the .ova file; set the Provider's url to its path";
    if (looks_like_option (src->ova))
      return "the OVA path starts with '-'; give it as ./NAME or an absolute path";
    return NULL;
  case PALLET_V2V_IN_DISK:
    if (src->ndisks == 0)
      return "a disk source needs at least one image; set the VM's disks";
    for (size_t i = 0; i < src->ndisks; i++)
      if (empty (src->disks[i]) || looks_like_option (src->disks[i]))
        return "a disk path is empty or starts with '-'; give ./NAME or an absolute path";
    if (src->disk_format && strcmp (src->disk_format, "raw") && strcmp (src->disk_format, "qcow2"))
      return "disk format must be raw or qcow2";
    return NULL;
  default: return "unknown input type; use vpx, esx, ova, xen or disk";
  }
  if (empty (src->guest))
    return "the guest's name is empty; set the plan's vms[].name";
  return NULL;
}

static const char *
check_output (const struct pallet_v2v_output *out)
{
  if (empty (out->dir))
    return "no output directory (-os)";
  if (empty (out->name) || looks_like_option (out->name))
    return "no output name (-on)";
  if (out->format && strcmp (out->format, "raw") && strcmp (out->format, "qcow2"))
    return "output format must be raw or qcow2";
  if (out->alloc && strcmp (out->alloc, "sparse") && strcmp (out->alloc, "preallocated"))
    return "output allocation must be sparse or preallocated";
  return NULL;
}

char **
pallet_v2v_argv (const char *prog, const struct pallet_v2v_source *src,
                 const struct pallet_v2v_output *out, const char *const *extra, char **err)
{
  const char *why = check_source (src);
  if (!why)
    why = check_output (out);
  if (why) {
    fail (err, why);
    return NULL;
  }
  struct vec a = { 0 };
  push (&a, prog ? prog : "virt-v2v");
  switch (src->input) {
  case PALLET_V2V_IN_VPX:
  case PALLET_V2V_IN_ESX:
  case PALLET_V2V_IN_XEN:
    push (&a, "-i");
    push (&a, "libvirt");
    push (&a, "-ic");
    push (&a, src->uri);
    if (src->password_file) {
      push (&a, "-ip");
      push (&a, src->password_file);
    }
    if (src->input != PALLET_V2V_IN_XEN && src->transport == PALLET_V2V_VDDK) {
      push (&a, "-it");
      push (&a, "vddk");
      push (&a, "-io");
      pushf (&a, "vddk-libdir=%s", src->vddk_libdir);
      push (&a, "-io");
      pushf (&a, "vddk-thumbprint=%s", src->vddk_thumbprint);
      if (!empty (src->vddk_config)) {
        push (&a, "-io");
        pushf (&a, "vddk-config=%s", src->vddk_config);
      }
    }
    break;
  case PALLET_V2V_IN_OVA:
    push (&a, "-i");
    push (&a, "ova");
    break;
  case PALLET_V2V_IN_DISK:
    push (&a, "-i");
    push (&a, "disk");
    if (src->disk_format) {
      push (&a, "-if");
      push (&a, src->disk_format);
    }
    break;
  }
  push (&a, "-o");
  push (&a, "kubevirt");
  push (&a, "-os");
  push (&a, out->dir);
  push (&a, "-on");
  push (&a, out->name);
  push (&a, "-of");
  push (&a, out->format ? out->format : "raw");
  push (&a, "-oa");
  push (&a, out->alloc ? out->alloc : "sparse");
  push (&a, "--machine-readable");
  for (size_t i = 0; extra && extra[i]; i++)
    push (&a, extra[i]);
  /* Everything after -- is a guest name or a file, never an option. */
  push (&a, "--");
  if (src->input == PALLET_V2V_IN_OVA)
    push (&a, src->ova);
  else if (src->input == PALLET_V2V_IN_DISK)
    for (size_t i = 0; i < src->ndisks; i++)
      push (&a, src->disks[i]);
  else
    push (&a, src->guest);
  if (a.oom) {
    pallet_v2v_argv_free (a.v);
    fail (err, "out of memory building the virt-v2v command line");
    return NULL;
  }
  return a.v;
}

/* RFC 3986 unreserved characters stay; everything else is %xx. */
static int
encode (char *dst, size_t cap, const char *s, const char *keep)
{
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  for (; *s; s++) {
    unsigned char c = (unsigned char) *s;
    int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                || strchr ("-._~", c) || (keep && strchr (keep, c));
    if (n + 4 > cap)
      return -1;
    if (plain)
      dst[n++] = (char) c;
    else {
      dst[n++] = '%';
      dst[n++] = hex[c >> 4];
      dst[n++] = hex[c & 15];
    }
  }
  dst[n] = '\0';
  return 0;
}

char *
pallet_v2v_uri (int input, const char *user, const char *server, int port, const char *path,
                int insecure, char **err)
{
  const char *scheme = input == PALLET_V2V_IN_VPX   ? "vpx"
                       : input == PALLET_V2V_IN_ESX ? "esx"
                       : input == PALLET_V2V_IN_XEN ? "xen+ssh"
                                                    : NULL;
  if (!scheme)
    return fail (err, "only vpx, esx and xen sources have a libvirt URI");
  if (empty (server) || strpbrk (server, "/@?#[] "))
    return fail (err, "the server must be a host name or IPv4 address (no scheme, path or user)");
  if (port < 0 || port > 65535)
    return fail (err, "the port must be 1-65535");
  if (input == PALLET_V2V_IN_VPX && empty (path))
    return fail (
        err,
        "a vCenter URI needs the host's inventory path DATACENTER/[CLUSTER/]HOST; set the Provider setting host-path");
  char euser[512] = "", epath[2048] = "", portbuf[16] = "";
  if (!empty (user) && encode (euser, sizeof euser, user, NULL) < 0)
    return fail (err, "the user name is too long");
  if (path) {
    while (*path == '/')
      path++;
    if (encode (epath, sizeof epath, path, "/") < 0)
      return fail (err, "the inventory path is too long");
  }
  if (port > 0)
    snprintf (portbuf, sizeof portbuf, ":%d", port);
  char buf[4096];
  if (input == PALLET_V2V_IN_XEN)
    snprintf (buf, sizeof buf, "xen+ssh://%s%s%s%s", euser, *euser ? "@" : "", server, portbuf);
  else
    snprintf (buf, sizeof buf, "%s://%s%s%s%s/%s%s", scheme, euser, *euser ? "@" : "", server,
              portbuf, input == PALLET_V2V_IN_VPX ? epath : "", insecure ? "?no_verify=1" : "");
  char *r = strdup (buf);
  if (!r)
    return fail (err, "out of memory");
  return r;
}
