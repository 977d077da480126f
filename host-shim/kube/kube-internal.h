/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_kube's internals, shared by its source files. */
#ifndef PALLET_KUBE_INTERNAL_H
#define PALLET_KUBE_INTERNAL_H

#include "pallet-kube.h"

struct Pallet_kube_req {
  const char *method, *path, *query, *content_type, *body;
  int text; /* the response is text (a log), not JSON */
};

/* The request with retries; *text (if rq->text) is the body, malloc'd. */
int Pallet_kube_do (struct Pallet_kube *k, const struct Pallet_kube_req *rq, json_t **out,
                    char **text, char **errmsg);
/* URL-escapes s (malloc'd). */
char *Pallet_kube_escape (struct Pallet_kube *k, const char *s);
void Pallet_kube_set_err (char **errmsg, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

#endif
