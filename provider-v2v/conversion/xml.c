/* SPDX-License-Identifier: Apache-2.0 */
/* The libvirt XML virt-v2v-in-place reads (-i libvirtxml): the ESX
 * driver's domain XML, which has the VM's CPUs, memory, firmware, disk
 * buses and NICs as vCenter reports them, with its datastore paths
 * replaced by the PVC devices. */
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <pallet/provider.h>
#include "pallet-v2v-conversion.h"
#include "v2v-error.h"

static void
drop_children (xmlNodePtr n, const char *name)
{
  xmlNodePtr c = n->children, next;
  for (; c; c = next) {
    next = c->next;
    if (c->type == XML_ELEMENT_NODE && !xmlStrcmp (c->name, BAD_CAST name)) {
      xmlUnlinkNode (c);
      xmlFreeNode (c);
    }
  }
}

/* <disk type="block|file" device="disk"><driver name="qemu" type="raw"/>
 * <source dev|file="PATH"/> ... */
static int
point_disk (xmlNodePtr disk, const struct pallet_v2v_conversion_disk *d)
{
  drop_children (disk, "source");
  drop_children (disk, "driver");
  xmlSetProp (disk, BAD_CAST "type", BAD_CAST (d->block ? "block" : "file"));
  xmlNodePtr drv = xmlNewNode (NULL, BAD_CAST "driver");
  xmlNodePtr src = xmlNewNode (NULL, BAD_CAST "source");
  if (!drv || !src) {
    xmlFreeNode (drv);
    xmlFreeNode (src);
    return -1;
  }
  xmlSetProp (drv, BAD_CAST "name", BAD_CAST "qemu");
  xmlSetProp (drv, BAD_CAST "type", BAD_CAST "raw");
  xmlSetProp (src, BAD_CAST (d->block ? "dev" : "file"), BAD_CAST d->path);
  /* driver and source first, where libvirt puts them */
  if (disk->children) {
    xmlAddPrevSibling (disk->children, src);
    xmlAddPrevSibling (src, drv);
  }
  else {
    xmlAddChild (disk, drv);
    xmlAddChild (disk, src);
  }
  return 0;
}

static int
rewrite (xmlDocPtr doc, const struct pallet_v2v_conversion_disk *disks, size_t n, char **err)
{
  xmlXPathContextPtr ctx = xmlXPathNewContext (doc);
  xmlXPathObjectPtr all =
      ctx ? xmlXPathEvalExpression (BAD_CAST "/domain/devices/disk", ctx) : NULL;
  int st = all ? PALLET_OK : Pallet_v2v_failf (err, PALLET_E_NOMEM, "out of memory");
  size_t ndisk = 0;
  int nodes = all && all->nodesetval ? all->nodesetval->nodeNr : 0;
  for (int i = 0; st == PALLET_OK && i < nodes; i++) {
    xmlNodePtr d = all->nodesetval->nodeTab[i];
    xmlChar *dev = xmlGetProp (d, BAD_CAST "device");
    int is_disk = !dev || !xmlStrcmp (dev, BAD_CAST "disk");
    xmlFree (dev);
    if (!is_disk)
      drop_children (d, "source"); /* an empty drive */
    else if (ndisk++ < n && point_disk (d, &disks[ndisk - 1]) < 0)
      st = Pallet_v2v_failf (err, PALLET_E_NOMEM, "out of memory");
  }
  if (st == PALLET_OK && ndisk != n)
    st = Pallet_v2v_failf (
        err, PALLET_E_INVALID,
        "the VM's domain XML has %zu disks but %zu PVC devices were given; give one per disk",
        ndisk, n);
  xmlXPathFreeObject (all);
  xmlXPathFreeContext (ctx);
  return st;
}

int
pallet_v2v_conversion_xml (const char *domain_xml, const struct pallet_v2v_conversion_disk *disks,
                           size_t n, char **out, char **err)
{
  *out = NULL;
  for (size_t i = 0; i < n; i++)
    if (!disks[i].path || disks[i].path[0] != '/')
      return Pallet_v2v_failf (err, PALLET_E_INVALID,
                               "PVC device %zu: '%s' is not an absolute path", i,
                               disks[i].path ? disks[i].path : "");
  xmlDocPtr doc = xmlReadMemory (domain_xml, (int) strlen (domain_xml), "domain.xml", NULL,
                                 XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  xmlNodePtr root = doc ? xmlDocGetRootElement (doc) : NULL;
  if (!root || xmlStrcmp (root->name, BAD_CAST "domain")) {
    xmlFreeDoc (doc);
    return Pallet_v2v_failf (err, PALLET_E_INVALID,
                             "the VM's domain XML is not a libvirt <domain> document");
  }
  int st = rewrite (doc, disks, n, err);
  if (st == PALLET_OK) {
    xmlChar *buf = NULL;
    int len = 0;
    xmlDocDumpFormatMemory (doc, &buf, &len, 1);
    *out = buf ? strdup ((const char *) buf) : NULL;
    xmlFree (buf);
    if (!*out)
      st = Pallet_v2v_failf (err, PALLET_E_NOMEM, "out of memory");
  }
  xmlFreeDoc (doc);
  return st;
}
