/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-k8sname: Kubernetes object names and label values, for every
 * provider that writes manifests.  Pure functions: no I/O, no global
 * state, safe from any thread. */
#ifndef PALLET_K8SNAME_H
#define PALLET_K8SNAME_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest DNS-1123 label. */
#define PALLET_K8S_DNS1123_LABEL_MAX 63

/* Makes a DNS-1123 label from any string: lower-case, [a-z0-9-], runs of
 * other bytes (including non-ASCII and control characters) become one '-',
 * leading and trailing '-' trimmed, at most maxlen (16..63) characters.
 *
 * If the result is empty, or equals one of taken[0..ntaken-1], a '-' and 6
 * hex digits of SHA-256(seed, or in if seed is NULL) are appended (the base
 * is shortened to fit), so different seeds give different names and the
 * same input always gives the same name.
 *
 * *out is malloc'd.  *changed (may be NULL) is set non-zero when *out is
 * not exactly in.  Returns 0, or -1 on bad arguments or out of memory. */
int Pallet_k8s_dns1123_label (const char *in, const char *seed, const char *const *taken,
                              size_t ntaken, size_t maxlen, char **out, int *changed);

/* Non-zero if s is a valid DNS-1123 label (1-63 chars, [a-z0-9-], starts
 * and ends alphanumeric). */
int Pallet_k8s_is_dns1123_label (const char *s);

/* Non-zero if s is a valid DNS-1123 subdomain (1-253 chars, [a-z0-9.-],
 * starts and ends alphanumeric): storage class, NAD and PV names. */
int Pallet_k8s_is_dns1123_subdomain (const char *s);

/* Non-zero if s is a valid Kubernetes label key ([prefix/]name). */
int Pallet_k8s_is_label_key (const char *s);

/* Non-zero if s is a valid Kubernetes label value (0-63 chars,
 * [A-Za-z0-9._-], starts and ends alphanumeric when non-empty). */
int Pallet_k8s_is_label_value (const char *s);

#ifdef __cplusplus
}
#endif

#endif /* PALLET_K8SNAME_H */
