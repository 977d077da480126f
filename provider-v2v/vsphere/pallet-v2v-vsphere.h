/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_v2v_vsphere: vCenter/ESXi inventory through libvirt's ESX driver
 * (the libvirt C API; domain XML read with libxml2).  Why libvirt and not
 * the SOAP PropertyCollector: README.md. */
#ifndef PALLET_V2V_VSPHERE_H
#define PALLET_V2V_VSPHERE_H

#include <jansson.h>

struct pallet_v2v_vsphere;

/* Connects to uri (vpx:// or esx://, from pallet_v2v_uri) as user with
 * password (never logged).  Returns a pallet_status; on error *err
 * (malloc'd) names the problem and the fix: PALLET_E_AUTH for a rejected
 * login, PALLET_E_TRANSIENT when the server cannot be reached,
 * PALLET_E_FAILED for TLS verification (use the CA or insecureSkipVerify),
 * PALLET_E_INVALID for a bad URI or inventory path. */
int pallet_v2v_vsphere_open (const char *uri, const char *user, const char *password,
                             struct pallet_v2v_vsphere **out, char **err);
void pallet_v2v_vsphere_close (struct pallet_v2v_vsphere *v);

/* Every VM as facts (see pallet_v2v_domain_facts) plus "powerState"
 * ("On"/"Off"/"Unknown") and "id" (the moref).  New array, or NULL. */
json_t *pallet_v2v_vsphere_vms (struct pallet_v2v_vsphere *v, char **err);
/* One VM by name, UUID or moref; PALLET_E_NOT_FOUND names what is there. */
int pallet_v2v_vsphere_vm (struct pallet_v2v_vsphere *v, const char *key, json_t **facts,
                           char **err);
/* The VM's libvirt domain XML as the ESX driver reports it (malloc'd). */
int pallet_v2v_vsphere_domain_xml (struct pallet_v2v_vsphere *v, const char *key, char **xml,
                                   char **err);
/* Datastores (storage pools), networks, and the host. */
json_t *pallet_v2v_vsphere_datastores (struct pallet_v2v_vsphere *v, char **err);
json_t *pallet_v2v_vsphere_networks (struct pallet_v2v_vsphere *v, char **err);
json_t *pallet_v2v_vsphere_hosts (struct pallet_v2v_vsphere *v, char **err);

/* Powers the VM (name, UUID or moref) on (on > 0) or off through the
 * API, on a connection of its own (read-write).  on == 0: a guest
 * shutdown, or a hard power-off when that is refused (no VMware Tools);
 * on < 0: a hard power-off.  Returns a pallet status; *err says why. */
int pallet_v2v_vsphere_set_power (const char *uri, const char *user, const char *password,
                                  const char *key, int on, char **err);

/* libvirt domain XML -> facts:
 *   {"name", "uuid", "id" (vmware:moref), "datacenter", "cpus", "memoryMiB",
 *    "firmware": "bios"|"efi", "guestOS"?,
 *    "disks": [{"file": "[DS] dir/x.vmdk", "datastore", "vmdk", "bus", "target"}],
 *    "nics": [{"mac", "network", "model"}]}
 * New reference, or NULL with *err. */
json_t *pallet_v2v_domain_facts (const char *xml, char **err);

#endif
