/* SPDX-License-Identifier: Apache-2.0 */
/* The Query protocol (EC2, STS): a parameter list, a form-encoded POST,
 * an XML response streamed into JSON, and NextToken pagination. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aws-internal.h"

struct param {
  char *key, *value;
};

struct Pallet_aws_params {
  struct param *v;
  size_t n, cap;
  int nfilter;  /* Filter.N counter */
  int ntagspec; /* TagSpecification.N counter */
};

struct Pallet_aws_params *
Pallet_aws_params_new (void)
{
  return calloc (1, sizeof (struct Pallet_aws_params));
}

void
Pallet_aws_params_free (struct Pallet_aws_params *p)
{
  if (!p)
    return;
  for (size_t i = 0; i < p->n; i++) {
    free (p->v[i].key);
    free (p->v[i].value);
  }
  free (p->v);
  free (p);
}

int
Pallet_aws_params_add (struct Pallet_aws_params *p, const char *key, const char *value)
{
  if (!p || !key || !value)
    return -1;
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 16;
    struct param *v = realloc (p->v, cap * sizeof *v);
    if (!v)
      return -1;
    p->v = v;
    p->cap = cap;
  }
  char *k = strdup (key), *val = strdup (value);
  if (!k || !val) {
    free (k);
    free (val);
    return -1;
  }
  p->v[p->n++] = (struct param){ k, val };
  return 0;
}

int
Pallet_aws_params_addf (struct Pallet_aws_params *p, const char *key, const char *fmt, ...)
{
  va_list ap;
  char *s = NULL;
  va_start (ap, fmt);
  int r = vasprintf (&s, fmt, ap);
  va_end (ap);
  if (r < 0)
    return -1;
  r = Pallet_aws_params_add (p, key, s);
  free (s);
  return r;
}

struct Pallet_aws_params *
Pallet_aws_params_copy (const struct Pallet_aws_params *p)
{
  struct Pallet_aws_params *q = Pallet_aws_params_new ();
  if (!q)
    return NULL;
  for (size_t i = 0; p && i < p->n; i++)
    if (Pallet_aws_params_add (q, p->v[i].key, p->v[i].value) < 0) {
      Pallet_aws_params_free (q);
      return NULL;
    }
  if (p) {
    q->nfilter = p->nfilter;
    q->ntagspec = p->ntagspec;
  }
  return q;
}

int
Pallet_aws_params_append (struct Pallet_aws_params *p, const struct Pallet_aws_params *extra)
{
  for (size_t i = 0; extra && i < extra->n; i++)
    if (Pallet_aws_params_add (p, extra->v[i].key, extra->v[i].value) < 0)
      return -1;
  return 0;
}

int
Pallet_aws_params_add_list (struct Pallet_aws_params *p, const char *prefix,
                            const char *const *values, size_t n)
{
  char key[256];
  for (size_t i = 0; i < n; i++) {
    snprintf (key, sizeof key, "%s.%zu", prefix, i + 1);
    if (Pallet_aws_params_add (p, key, values[i]) < 0)
      return -1;
  }
  return 0;
}

int
Pallet_aws_params_add_filter (struct Pallet_aws_params *p, const char *name,
                              const char *const *values, size_t n)
{
  char key[256];
  if (!p)
    return -1;
  int f = ++p->nfilter;
  snprintf (key, sizeof key, "Filter.%d.Name", f);
  if (Pallet_aws_params_add (p, key, name) < 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    snprintf (key, sizeof key, "Filter.%d.Value.%zu", f, i + 1);
    if (Pallet_aws_params_add (p, key, values[i]) < 0)
      return -1;
  }
  return 0;
}

int
Pallet_aws_params_add_tag_spec (struct Pallet_aws_params *p, const char *resource_type,
                                const struct Pallet_aws_tag *tags, size_t n)
{
  char key[256];
  if (!p)
    return -1;
  int t = ++p->ntagspec;
  snprintf (key, sizeof key, "TagSpecification.%d.ResourceType", t);
  if (Pallet_aws_params_add (p, key, resource_type) < 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    snprintf (key, sizeof key, "TagSpecification.%d.Tag.%zu.Key", t, i + 1);
    if (Pallet_aws_params_add (p, key, tags[i].key) < 0)
      return -1;
    snprintf (key, sizeof key, "TagSpecification.%d.Tag.%zu.Value", t, i + 1);
    if (Pallet_aws_params_add (p, key, tags[i].value ? tags[i].value : "") < 0)
      return -1;
  }
  return 0;
}

size_t
Pallet_aws_params_count (const struct Pallet_aws_params *p)
{
  return p ? p->n : 0;
}

const char *
Pallet_aws_params_get (const struct Pallet_aws_params *p, const char *key)
{
  for (size_t i = 0; p && i < p->n; i++)
    if (strcmp (p->v[i].key, key) == 0)
      return p->v[i].value;
  return NULL;
}

static bool
has_prefix_key (const struct Pallet_aws_params *p, const char *prefix)
{
  size_t l = strlen (prefix);
  for (size_t i = 0; p && i < p->n; i++)
    if (strncmp (p->v[i].key, prefix, l) == 0)
      return true;
  return false;
}

static void
encode_into (struct Pallet_aws_buf *b, const struct Pallet_aws_params *p)
{
  for (size_t i = 0; p && i < p->n; i++) {
    if (b->len)
      Pallet_aws_buf_add (b, "&", 1);
    Pallet_aws_uri_encode (b, p->v[i].key, strlen (p->v[i].key), false);
    Pallet_aws_buf_add (b, "=", 1);
    Pallet_aws_uri_encode (b, p->v[i].value, strlen (p->v[i].value), false);
  }
}

char *
Pallet_aws_params_encode (const struct Pallet_aws_params *p)
{
  struct Pallet_aws_buf b = { 0 };
  Pallet_aws_buf_add (&b, "", 0);
  encode_into (&b, p);
  if (!Pallet_aws_buf_str (&b)) {
    Pallet_aws_buf_free (&b);
    return NULL;
  }
  return b.data;
}

int
Pallet_aws_query (struct Pallet_aws_client *c, enum Pallet_aws_service svc, const char *action,
                  const struct Pallet_aws_params *params, const char *item_path,
                  Pallet_aws_item_fn cb, void *opaque, json_t **result)
{
  struct Pallet_aws_buf body = { 0 };
  struct Pallet_aws_resp resp = { 0 };
  int ret = -1;
  if (result)
    *result = NULL;
  if (svc == PALLET_AWS_EBS) {
    Pallet_aws_set_error (c, PALLET_E_INVALID, 0, 0, svc, action, NULL, NULL, NULL,
                          "EBS is not a Query API service; use the Pallet_aws_ebs_* calls");
    return -1;
  }
  Pallet_aws_buf_printf (&body, "Action=%s&Version=%s", action,
                         svc == PALLET_AWS_STS ? PALLET_AWS_STS_VERSION : PALLET_AWS_EC2_VERSION);
  encode_into (&body, params);
  if (!Pallet_aws_buf_str (&body)) {
    Pallet_aws_set_error (c, PALLET_E_NOMEM, 0, 0, svc, action, NULL, NULL, NULL,
                          "out of memory encoding AWS %s parameters", action);
    goto out;
  }
  struct Pallet_aws_request req = {
    .svc = svc,
    .action = action,
    .method = "POST",
    .path = "/",
    .content_type = "application/x-www-form-urlencoded; charset=utf-8",
    .body = body.data,
    .body_len = body.len,
  };
  if (Pallet_aws_send (c, &req, &resp) < 0)
    goto out;

  char err[256];
  int stopped = 0;
  json_t *rest = NULL;
  if (Pallet_aws_xml_convert (resp.body.data ? resp.body.data : "", resp.body.len, item_path, cb,
                              opaque, &rest, NULL, err, sizeof err, &stopped)
      < 0) {
    if (stopped)
      Pallet_aws_set_error (c, PALLET_E_CANCELLED, resp.status, 1, svc, action, "Aborted",
                            "the item callback stopped the listing", resp.request_id,
                            "AWS %s %s: the listing was stopped by the caller",
                            Pallet_aws_service_name (svc), action);
    else
      Pallet_aws_set_error (c, PALLET_E_FAILED, resp.status, 1, svc, action, "MalformedResponse",
                            err, resp.request_id,
                            "AWS %s %s in region %s returned a response that cannot be read "
                            "(%s; request id %s); check that the endpoint %s is an AWS "
                            "endpoint and no proxy rewrites it",
                            Pallet_aws_service_name (svc), action, c->r.region, err,
                            resp.request_id[0] ? resp.request_id : "unknown", c->r.endpoint[svc]);
    goto out;
  }
  if (result)
    *result = rest;
  else
    json_decref (rest);
  ret = 0;
out:
  Pallet_aws_buf_free (&body);
  Pallet_aws_buf_free (&resp.body);
  return ret;
}

int
Pallet_aws_query_paged (struct Pallet_aws_client *c, enum Pallet_aws_service svc,
                        const char *action, const struct Pallet_aws_params *params, int max_results,
                        const char *no_max_if_prefix, const char *item_path, Pallet_aws_item_fn cb,
                        void *opaque)
{
  char *token = NULL;
  int ret = -1;
  int page = 0;
  bool add_max = max_results > 0 && !(no_max_if_prefix && has_prefix_key (params, no_max_if_prefix))
                 && !Pallet_aws_params_get (params, "MaxResults");
  do {
    struct Pallet_aws_params *p = Pallet_aws_params_copy (params);
    json_t *rest = NULL;
    int r = p ? 0 : -1;
    if (r == 0 && add_max)
      r = Pallet_aws_params_addf (p, "MaxResults", "%d", max_results);
    if (r == 0 && token)
      r = Pallet_aws_params_add (p, "NextToken", token);
    if (r < 0) {
      Pallet_aws_params_free (p);
      Pallet_aws_set_error (c, PALLET_E_NOMEM, 0, 0, svc, action, NULL, NULL, NULL,
                            "out of memory building AWS %s parameters", action);
      goto out;
    }
    r = Pallet_aws_query (c, svc, action, p, item_path, cb, opaque, &rest);
    Pallet_aws_params_free (p);
    if (r < 0)
      goto out;
    page++;
    const char *next = json_string_value (json_object_get (rest, "nextToken"));
    if (!next)
      next = json_string_value (json_object_get (rest, "NextToken"));
    if (next && token && strcmp (next, token) == 0) {
      json_decref (rest);
      Pallet_aws_set_error (c, PALLET_E_FAILED, 200, 1, svc, action, "PaginationLoop", NULL, NULL,
                            "AWS %s %s returned the same NextToken twice (page %d); "
                            "the endpoint's pagination is broken",
                            Pallet_aws_service_name (svc), action, page);
      goto out;
    }
    free (token);
    token = next && *next ? strdup (next) : NULL;
    json_decref (rest);
    Pallet_aws_log (c, PALLET_LOG_DEBUG, "%s %s: page %d done%s", Pallet_aws_service_name (svc),
                    action, page, token ? ", more to come" : "");
  } while (token);
  ret = 0;
out:
  free (token);
  return ret;
}
