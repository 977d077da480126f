/* SPDX-License-Identifier: Apache-2.0 */
/* The Plan fields that shape the migration Pods, as Forklift applies
 * them: convertorLabels, convertorNodeSelector and convertorAffinity on
 * the virt-v2v conversion Pod; transferNetwork (a Multus network
 * selection) and serviceAccount on the copy and the conversion Pods.
 *
 * The plan loader has checked each field's shape against Forklift's CRD
 * (convertorAffinity against the CRD's copy of core/v1 Affinity:
 * unknown fields and types); what is checked here is what the CRD leaves
 * to the API server: label syntax, names, and what pallet itself needs
 * of the Pods (its own labels, the volumes' zone). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pallet/provider.h>

#include "pallet-ec2-manifest.h"

#define ZONE_KEY "topology.kubernetes.io/zone"
#define NAD_API  "k8s.cni.cncf.io/v1"
#define NAD_KIND "NetworkAttachmentDefinition"

/* Labels pallet puts on its Pods and finds them by. */
static const char *const own_labels[] = {
  "app",
  "app.kubernetes.io/managed-by",
  PALLET_EC2_STAGE_LABEL,
  "forklift.konveyor.io/vm-id",
  "vmID",
  "plan",
  "migration",
};

static int fail (char **errmsg, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static int
fail (char **errmsg, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  if (vasprintf (errmsg, fmt, ap) < 0)
    *errmsg = NULL;
  va_end (ap);
  return *errmsg ? PALLET_E_INVALID : PALLET_E_NOMEM;
}

static const json_t *
field (const json_t *plan, const char *name)
{
  const json_t *v = json_object_get (json_object_get (plan, "spec"), name);

  return json_is_null (v) ? NULL : v;
}

/* convertorLabels or convertorNodeSelector: a map of label keys to
 * label values (a node selector matches node labels). */
static int
check_label_map (const json_t *plan, const char *name, char **errmsg)
{
  const json_t *m = field (plan, name), *v;
  const char *k;

  if (m == NULL)
    return PALLET_OK;
  if (!json_is_object (m))
    return fail (errmsg, "plan.spec.%s: expected an object of label keys to strings", name);
  json_object_foreach ((json_t *) m, k, v) {
    if (!json_is_string (v))
      return fail (errmsg, "plan.spec.%s.%s: expected a string value; quote it", name, k);
    if (!Pallet_ec2_is_label_key (k))
      return fail (errmsg,
                   "plan.spec.%s: \"%s\" is not a valid label key; use [prefix/]name, the "
                   "name up to 63 characters of [A-Za-z0-9._-] starting and ending with a "
                   "letter or digit, the prefix a DNS subdomain",
                   name, k);
    if (!Pallet_ec2_is_label_value (json_string_value (v)))
      return fail (errmsg,
                   "plan.spec.%s.%s: \"%s\" is not a valid label value; use up to 63 "
                   "characters of [A-Za-z0-9._-] starting and ending with a letter or digit",
                   name, k, json_string_value (v));
  }
  return PALLET_OK;
}

static int
check_labels (const json_t *plan, char **errmsg)
{
  const json_t *m = field (plan, "convertorLabels");
  int r = check_label_map (plan, "convertorLabels", errmsg);

  for (size_t i = 0; r == PALLET_OK && i < sizeof own_labels / sizeof own_labels[0]; i++)
    if (json_object_get (m, own_labels[i]))
      return fail (errmsg,
                   "plan.spec.convertorLabels.%s: pallet sets this label on the conversion "
                   "Pod and finds the Pod by it; use another key",
                   own_labels[i]);
  return r;
}

static int
check_node_selector (const json_t *plan, const char *zone, char **errmsg)
{
  int r = check_label_map (plan, "convertorNodeSelector", errmsg);
  const char *have =
      json_string_value (json_object_get (field (plan, "convertorNodeSelector"), ZONE_KEY));

  if (r == PALLET_OK && have && zone && strcmp (have, zone))
    return fail (errmsg,
                 "plan.spec.convertorNodeSelector." ZONE_KEY ": puts the conversion Pod in "
                 "zone %s but the VM's volumes are in %s: an EBS volume attaches only in its "
                 "own zone; drop the zone from convertorNodeSelector, or set the provider's "
                 "target-az to %s",
                 have, zone, have);
  return r;
}

static int
check_affinity (const json_t *plan, char **errmsg)
{
  const json_t *aff = field (plan, "convertorAffinity"), *v;
  const char *k;

  if (aff == NULL)
    return PALLET_OK;
  if (!json_is_object (aff))
    return fail (errmsg, "plan.spec.convertorAffinity: expected an object (a core/v1 Affinity: "
                         "nodeAffinity, podAffinity, podAntiAffinity)");
  json_object_foreach ((json_t *) aff, k, v)
    if ((strcmp (k, "nodeAffinity") && strcmp (k, "podAffinity") && strcmp (k, "podAntiAffinity"))
        || !json_is_object (v))
      return fail (errmsg,
                   "plan.spec.convertorAffinity.%s: expected one of nodeAffinity, "
                   "podAffinity, podAntiAffinity, each an object",
                   k);
  return PALLET_OK;
}

/* transferNetwork: an ObjectReference to a NetworkAttachmentDefinition. */
static int
check_network (const json_t *plan, char **errmsg)
{
  const json_t *n = field (plan, "transferNetwork");
  const char *name, *ns, *kind, *api, *fp;

  if (n == NULL || (json_is_object (n) && json_object_size (n) == 0))
    return PALLET_OK;
  if (!json_is_object (n))
    return fail (errmsg, "plan.spec.transferNetwork: expected an object {name, namespace} "
                         "naming a NetworkAttachmentDefinition");
  name = json_string_value (json_object_get (n, "name"));
  ns = json_string_value (json_object_get (n, "namespace"));
  kind = json_string_value (json_object_get (n, "kind"));
  api = json_string_value (json_object_get (n, "apiVersion"));
  fp = json_string_value (json_object_get (n, "fieldPath"));
  if (!name || !*name)
    return fail (errmsg, "plan.spec.transferNetwork.name: missing; name the "
                         "NetworkAttachmentDefinition the Pods attach to");
  if (!Pallet_ec2_is_dns1123_subdomain (name))
    return fail (errmsg,
                 "plan.spec.transferNetwork.name: \"%s\" is not a NetworkAttachmentDefinition "
                 "name; use lowercase letters, digits, '-' and '.' (a DNS-1123 subdomain)",
                 name);
  if (ns && *ns && !Pallet_ec2_is_dns1123_label (ns))
    return fail (errmsg,
                 "plan.spec.transferNetwork.namespace: \"%s\" is not a namespace name; use up "
                 "to 63 lowercase letters, digits and '-', or leave it out for the target "
                 "namespace",
                 ns);
  if (kind && *kind && strcmp (kind, NAD_KIND))
    return fail (errmsg,
                 "plan.spec.transferNetwork.kind: \"%s\": the transfer network is a " NAD_KIND
                 "; set kind " NAD_KIND " or leave it out",
                 kind);
  if (api && *api && strcmp (api, NAD_API))
    return fail (errmsg,
                 "plan.spec.transferNetwork.apiVersion: \"%s\": a " NAD_KIND " is " NAD_API
                 "; set that or leave it out",
                 api);
  if (fp && *fp)
    return fail (errmsg, "plan.spec.transferNetwork.fieldPath: a network is referred to as a "
                         "whole; remove fieldPath");
  return PALLET_OK;
}

static int
check_service_account (const json_t *plan, char **errmsg)
{
  const json_t *v = field (plan, "serviceAccount");
  const char *sa = json_string_value (v);

  if (v == NULL || (sa && !*sa))
    return PALLET_OK;
  if (!sa)
    return fail (errmsg, "plan.spec.serviceAccount: expected a string, the name of a "
                         "ServiceAccount in the target namespace");
  if (!Pallet_ec2_is_dns1123_subdomain (sa))
    return fail (errmsg,
                 "plan.spec.serviceAccount: \"%s\" is not a ServiceAccount name; use lowercase "
                 "letters, digits, '-' and '.' (a DNS-1123 subdomain)",
                 sa);
  return PALLET_OK;
}

int
Pallet_ec2_pod_fields_check (const json_t *plan, const char *zone, char **errmsg)
{
  int r;

  *errmsg = NULL;
  if ((r = check_labels (plan, errmsg)) || (r = check_node_selector (plan, zone, errmsg))
      || (r = check_affinity (plan, errmsg)) || (r = check_network (plan, errmsg))
      || (r = check_service_account (plan, errmsg)))
    return r;
  return PALLET_OK;
}

/* The object at key of o, made if absent. */
static json_t *
child (json_t *o, const char *key)
{
  json_t *c = json_object_get (o, key);

  if (json_is_object (c))
    return c;
  c = json_object ();
  if (json_object_set_new (o, key, c) < 0)
    return NULL;
  return c;
}

static int
merge (json_t *dst, const json_t *src)
{
  return src && json_object_update (dst, (json_t *) src) < 0 ? -1 : 0;
}

/* k8s.v1.cni.cncf.io/networks: the JSON list of network selection
 * elements Forklift writes (without default-route: that comes from the
 * NetworkAttachmentDefinition, which pallet does not read).  No
 * namespace: Multus takes the Pod's. */
static char *
networks_annotation (const json_t *n)
{
  const char *ns = json_string_value (json_object_get (n, "namespace"));
  json_t *e = json_pack ("{s:s}", "name", json_string_value (json_object_get (n, "name")));
  json_t *list = json_array ();
  char *text = NULL;

  if (e && ns && *ns)
    json_object_set_new (e, "namespace", json_string (ns));
  if (e && list && json_array_append (list, e) == 0)
    text = json_dumps (list, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref (e);
  json_decref (list);
  return text;
}

int
Pallet_ec2_pod_fields_apply (const json_t *plan, const char *zone, int conversion, json_t *pod,
                             char **errmsg)
{
  json_t *md = json_object_get (pod, "metadata"), *spec = json_object_get (pod, "spec");
  const json_t *net = field (plan, "transferNetwork"), *aff = field (plan, "convertorAffinity");
  const char *sa = json_string_value (field (plan, "serviceAccount"));
  const char *have = json_string_value (json_object_get (spec, "serviceAccountName"));
  const char *pod_name = json_string_value (json_object_get (md, "name"));
  int r;

  if ((r = Pallet_ec2_pod_fields_check (plan, zone, errmsg)))
    return r;
  if (!json_is_object (md) || !json_is_object (spec))
    return fail (errmsg, "Pod %s has no metadata or spec (provider bug)", pod_name ? pod_name : "");
  if (conversion) {
    json_t *labels = child (md, "labels"), *sel = NULL;
    if (!labels || merge (labels, field (plan, "convertorLabels")) < 0)
      goto nomem;
    if (field (plan, "convertorNodeSelector")
        && (!(sel = child (spec, "nodeSelector"))
            || merge (sel, field (plan, "convertorNodeSelector")) < 0))
      goto nomem;
    if (aff && json_object_size (aff)
        && json_object_set_new (spec, "affinity", json_deep_copy (aff)) < 0)
      goto nomem;
  }
  if (net && json_object_size (net)) {
    json_t *ann = child (md, "annotations");
    char *text = networks_annotation (net);
    if (!ann || !text
        || json_object_set_new (ann, "k8s.v1.cni.cncf.io/networks", json_string (text)) < 0) {
      free (text);
      goto nomem;
    }
    free (text);
  }
  if (sa && *sa) {
    if (have && *have && strcmp (have, sa))
      return fail (errmsg,
                   "plan.spec.serviceAccount \"%s\" and the provider setting "
                   "copy-service-account \"%s\" both name the service account of Pod %s; a Pod "
                   "has one: set one of them, or both to the same name",
                   sa, have, pod_name ? pod_name : "");
    if (json_object_set_new (spec, "serviceAccountName", json_string (sa)) < 0)
      goto nomem;
  }
  return PALLET_OK;
nomem:
  return fail (errmsg, "Pod %s: out of memory applying the plan's Pod fields",
               pod_name ? pod_name : "");
}
