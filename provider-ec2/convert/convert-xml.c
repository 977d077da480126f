/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal libvirt domain XML for virt-v2v-in-place -i libvirtxml (the
 * only way 2.2.0 takes a guest with more than one disk).  Written with
 * libxml2's xmlTextWriter so paths are escaped properly. */
#include <errno.h>
#include <stdio.h>

#include <libxml/xmlwriter.h>

#include "pallet-convert.h"

#define W(call)     \
  do {              \
    if ((call) < 0) \
      goto fail;    \
  } while (0)

int
Pallet_convert_write_domain_xml (const char *path, const char *name, const char *const *disks,
                                 size_t ndisks, const char *format)
{
  xmlTextWriterPtr w;
  char dev[8];

  if (path == NULL || disks == NULL || ndisks == 0 || ndisks > 26) {
    errno = EINVAL;
    return -1;
  }
  if (name == NULL)
    name = "pallet-guest";
  if (format == NULL)
    format = "raw";

  w = xmlNewTextWriterFilename (path, 0);
  if (w == NULL) {
    if (errno == 0)
      errno = EIO;
    return -1;
  }
  W (xmlTextWriterSetIndent (w, 1));
  W (xmlTextWriterStartDocument (w, NULL, "UTF-8", NULL));
  W (xmlTextWriterStartElement (w, BAD_CAST "domain"));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "type", BAD_CAST "kvm"));
  W (xmlTextWriterWriteElement (w, BAD_CAST "name", BAD_CAST name));
  W (xmlTextWriterWriteElement (w, BAD_CAST "memory", BAD_CAST "1048576"));
  W (xmlTextWriterWriteElement (w, BAD_CAST "vcpu", BAD_CAST "1"));
  W (xmlTextWriterStartElement (w, BAD_CAST "os"));
  W (xmlTextWriterWriteElement (w, BAD_CAST "type", BAD_CAST "hvm"));
  W (xmlTextWriterStartElement (w, BAD_CAST "boot"));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "dev", BAD_CAST "hd"));
  W (xmlTextWriterEndElement (w)); /* boot */
  W (xmlTextWriterEndElement (w)); /* os */
  W (xmlTextWriterStartElement (w, BAD_CAST "features"));
  W (xmlTextWriterWriteElement (w, BAD_CAST "acpi", NULL));
  W (xmlTextWriterWriteElement (w, BAD_CAST "apic", NULL));
  W (xmlTextWriterEndElement (w)); /* features */
  W (xmlTextWriterStartElement (w, BAD_CAST "devices"));
  for (size_t i = 0; i < ndisks; i++) {
    snprintf (dev, sizeof dev, "vd%c", (char) ('a' + i));
    W (xmlTextWriterStartElement (w, BAD_CAST "disk"));
    W (xmlTextWriterWriteAttribute (w, BAD_CAST "type", BAD_CAST "file"));
    W (xmlTextWriterWriteAttribute (w, BAD_CAST "device", BAD_CAST "disk"));
    W (xmlTextWriterStartElement (w, BAD_CAST "driver"));
    W (xmlTextWriterWriteAttribute (w, BAD_CAST "name", BAD_CAST "qemu"));
    W (xmlTextWriterWriteAttribute (w, BAD_CAST "type", BAD_CAST format));
    W (xmlTextWriterEndElement (w));
    W (xmlTextWriterStartElement (w, BAD_CAST "source"));
    W (xmlTextWriterWriteAttribute (w, BAD_CAST "file", BAD_CAST disks[i]));
    W (xmlTextWriterEndElement (w));
    W (xmlTextWriterStartElement (w, BAD_CAST "target"));
    W (xmlTextWriterWriteAttribute (w, BAD_CAST "dev", BAD_CAST dev));
    W (xmlTextWriterWriteAttribute (w, BAD_CAST "bus", BAD_CAST "virtio"));
    W (xmlTextWriterEndElement (w));
    W (xmlTextWriterEndElement (w)); /* disk */
  }
  W (xmlTextWriterEndElement (w)); /* devices */
  W (xmlTextWriterEndElement (w)); /* domain */
  W (xmlTextWriterEndDocument (w));
  xmlFreeTextWriter (w);
  return 0;

fail:
  xmlFreeTextWriter (w);
  errno = EIO;
  return -1;
}
