/* AWS Signature Version 4: header signing and query (presigned) signing.
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include "aws-internal.h"

static char *
buf_steal (struct pallet_aws_buf *b)
{
  if (!pallet_aws_buf_str (b)) {
    pallet_aws_buf_free (b);
    return NULL;
  }
  char *s = b->data;
  memset (b, 0, sizeof *b);
  return s;
}

char *
pallet_aws_sigv4_canonical_uri (const char *path, bool normalize)
{
  struct pallet_aws_buf b = { 0 };
  if (!path || !*path)
    path = "/";
  if (!normalize) {
    pallet_aws_uri_encode (&b, path, strlen (path), true);
    return buf_steal (&b);
  }
  /* Remove "." and ".." segments and empty segments (RFC 3986 5.2.4). */
  size_t n = strlen (path);
  const char **seg = calloc (n + 1, sizeof *seg);
  size_t *seglen = calloc (n + 1, sizeof *seglen);
  size_t nseg = 0;
  if (!seg || !seglen) {
    free (seg);
    free (seglen);
    return NULL;
  }
  const char *p = path;
  while (*p) {
    while (*p == '/')
      p++;
    const char *s = p;
    while (*p && *p != '/')
      p++;
    size_t l = (size_t) (p - s);
    if (l == 0 || (l == 1 && s[0] == '.'))
      continue;
    if (l == 2 && s[0] == '.' && s[1] == '.') {
      if (nseg > 0)
        nseg--;
      continue;
    }
    seg[nseg] = s;
    seglen[nseg++] = l;
  }
  for (size_t i = 0; i < nseg; i++) {
    pallet_aws_buf_add (&b, "/", 1);
    pallet_aws_uri_encode (&b, seg[i], seglen[i], false);
  }
  if (nseg == 0 || path[n - 1] == '/')
    pallet_aws_buf_add (&b, "/", 1);
  free (seg);
  free (seglen);
  return buf_steal (&b);
}

static int
hexval (int c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decodes s[0..n) then re-encodes it the canonical way. */
static void
reencode (struct pallet_aws_buf *out, const char *s, size_t n)
{
  char *tmp = malloc (n + 1);
  if (!tmp) {
    out->oom = 1;
    return;
  }
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n
        && hexval (s[i + 1]) >= 0 && hexval (s[i + 2]) >= 0) {
      tmp[j++] = (char) (hexval (s[i + 1]) * 16 + hexval (s[i + 2]));
      i += 2;
    }
    else
      tmp[j++] = s[i];
  }
  pallet_aws_uri_encode (out, tmp, j, false);
  free (tmp);
}

struct qpair {
  char *key, *value;
};

static int
qpair_cmp (const void *a, const void *b)
{
  const struct qpair *x = a, *y = b;
  int r = strcmp (x->key, y->key);
  return r ? r : strcmp (x->value, y->value);
}

/* Splits a raw query into canonical (encoded) pairs; extra pairs
 * (already canonical) appended.  Returns the sorted joined string. */
static char *
canonical_query_with (const char *query, const struct qpair *extra, size_t nextra)
{
  size_t cap = nextra + 1;
  for (const char *q = query; q && *q; q++)
    if (*q == '&')
      cap++;
  struct qpair *v = calloc (cap + 1, sizeof *v);
  size_t nv = 0;
  char *result = NULL;
  if (!v)
    return NULL;
  const char *p = query;
  while (p && *p) {
    const char *e = strchr (p, '&');
    size_t l = e ? (size_t) (e - p) : strlen (p);
    if (l > 0) {
      const char *eq = memchr (p, '=', l);
      size_t kl = eq ? (size_t) (eq - p) : l;
      struct pallet_aws_buf kb = { 0 }, vb = { 0 };
      reencode (&kb, p, kl);
      if (eq)
        reencode (&vb, eq + 1, l - kl - 1);
      v[nv].key = buf_steal (&kb);
      pallet_aws_buf_add (&vb, "", 0);
      v[nv].value = buf_steal (&vb);
      if (!v[nv].key || !v[nv].value) {
        free (v[nv].key);
        free (v[nv].value);
        goto out;
      }
      nv++;
    }
    p = e ? e + 1 : p + l;
  }
  for (size_t i = 0; i < nextra; i++) {
    v[nv].key = strdup (extra[i].key);
    v[nv].value = strdup (extra[i].value);
    nv++;
    if (!v[nv - 1].key || !v[nv - 1].value)
      goto out;
  }
  qsort (v, nv, sizeof *v, qpair_cmp);
  struct pallet_aws_buf b = { 0 };
  pallet_aws_buf_add (&b, "", 0);
  for (size_t i = 0; i < nv; i++) {
    if (i)
      pallet_aws_buf_add (&b, "&", 1);
    pallet_aws_buf_puts (&b, v[i].key);
    pallet_aws_buf_add (&b, "=", 1);
    pallet_aws_buf_puts (&b, v[i].value);
  }
  result = buf_steal (&b);
 out:
  for (size_t i = 0; i < nv; i++) {
    free (v[i].key);
    free (v[i].value);
  }
  free (v);
  return result;
}

char *
pallet_aws_sigv4_canonical_query (const char *query)
{
  return canonical_query_with (query, NULL, 0);
}

/* A canonical header: lower-case name, trimmed value with runs of
 * whitespace (folded lines included) collapsed to one space. */
struct chdr {
  char *name;
  struct pallet_aws_buf value;
  size_t order;
};

static int
chdr_cmp (const void *a, const void *b)
{
  const struct chdr *x = a, *y = b;
  int r = strcmp (x->name, y->name);
  if (r)
    return r;
  return x->order < y->order ? -1 : x->order > y->order;
}

static void
add_trimmed (struct pallet_aws_buf *b, const char *v)
{
  bool space = false, any = false;
  pallet_aws_buf_add (b, "", 0);
  for (; *v; v++) {
    if (isspace ((unsigned char) *v)) {
      space = any;
      continue;
    }
    if (space)
      pallet_aws_buf_add (b, " ", 1);
    pallet_aws_buf_add (b, v, 1);
    space = false;
    any = true;
  }
}

static bool
hmac (const void *key, size_t keylen, const char *data, unsigned char out[32])
{
  unsigned int len = 32;
  return HMAC (EVP_sha256 (), key, (int) keylen, (const unsigned char *) data,
               strlen (data), out, &len) != NULL;
}

int
pallet_aws_sigv4_sign (const struct pallet_aws_sigv4_in *in, struct pallet_aws_sigv4_out *out)
{
  int ret = -1;
  char date[9];
  struct chdr *h = NULL;
  size_t nh = 0;
  char *curi = NULL, *cquery = NULL, *scope = NULL, *signed_headers = NULL;
  struct pallet_aws_buf b = { 0 };
  struct qpair extra[6];
  size_t nextra = 0;
  char *cred_enc = NULL, *sh_enc = NULL, *tok_enc = NULL;
  char expires[32];

  memset (out, 0, sizeof *out);
  if (!in->amz_date || strlen (in->amz_date) != 16)
    return -1;
  memcpy (date, in->amz_date, 8);
  date[8] = '\0';
  bool token = in->session_token && *in->session_token;
  bool sign_token = token && !in->omit_session_token;

  /* Headers to sign: the request's, plus what we add in header mode. */
  size_t cap = in->nheaders + 3;
  h = calloc (cap, sizeof *h);
  if (!h)
    goto out;
  for (size_t i = 0; i < in->nheaders + 3; i++) {
    const char *name = NULL, *value = NULL;
    if (i < in->nheaders) {
      name = in->headers[i].name;
      value = in->headers[i].value;
    }
    else if (in->presign)
      break;
    else if (i == in->nheaders) {
      name = "x-amz-date";
      value = in->amz_date;
    }
    else if (i == in->nheaders + 1) {
      if (!sign_token)
        continue;
      name = "x-amz-security-token";
      value = in->session_token;
    }
    else {
      if (!in->add_content_sha256)
        continue;
      name = "x-amz-content-sha256";
      value = in->payload_hash;
    }
    h[nh].name = strdup (name);
    if (!h[nh].name)
      goto out;
    for (char *p = h[nh].name; *p; p++)
      *p = (char) tolower ((unsigned char) *p);
    add_trimmed (&h[nh].value, value);
    h[nh].order = nh;
    nh++;
  }
  qsort (h, nh, sizeof *h, chdr_cmp);
  /* Merge duplicates: values joined with ',' in request order. */
  size_t m = 0;
  for (size_t i = 0; i < nh; i++) {
    if (m > 0 && strcmp (h[m - 1].name, h[i].name) == 0) {
      pallet_aws_buf_add (&h[m - 1].value, ",", 1);
      pallet_aws_buf_add (&h[m - 1].value, h[i].value.data, h[i].value.len);
      free (h[i].name);
      pallet_aws_buf_free (&h[i].value);
      continue;
    }
    h[m++] = h[i];
  }
  nh = m;

  struct pallet_aws_buf shb = { 0 };
  pallet_aws_buf_add (&shb, "", 0);
  for (size_t i = 0; i < nh; i++) {
    if (i)
      pallet_aws_buf_add (&shb, ";", 1);
    pallet_aws_buf_puts (&shb, h[i].name);
  }
  signed_headers = buf_steal (&shb);
  {
    struct pallet_aws_buf sb = { 0 };
    pallet_aws_buf_printf (&sb, "%s/%s/%s/aws4_request", date, in->region, in->service);
    scope = buf_steal (&sb);
  }
  if (!signed_headers || !scope)
    goto out;

  if (in->presign) {
    struct pallet_aws_buf cb = { 0 }, sb2 = { 0 }, tb = { 0 };
    struct pallet_aws_buf cred = { 0 };
    pallet_aws_buf_printf (&cred, "%s/%s", in->access_key_id, scope);
    if (!pallet_aws_buf_str (&cred)) {
      pallet_aws_buf_free (&cred);
      goto out;
    }
    pallet_aws_uri_encode (&cb, cred.data, cred.len, false);
    pallet_aws_buf_free (&cred);
    pallet_aws_uri_encode (&sb2, signed_headers, strlen (signed_headers), false);
    cred_enc = buf_steal (&cb);
    sh_enc = buf_steal (&sb2);
    if (token) {
      pallet_aws_uri_encode (&tb, in->session_token, strlen (in->session_token), false);
      tok_enc = buf_steal (&tb);
      if (!tok_enc)
        goto out;
    }
    if (!cred_enc || !sh_enc)
      goto out;
    snprintf (expires, sizeof expires, "%ld", in->expires);
    extra[nextra++] = (struct qpair) { (char *) "X-Amz-Algorithm", (char *) "AWS4-HMAC-SHA256" };
    extra[nextra++] = (struct qpair) { (char *) "X-Amz-Credential", cred_enc };
    extra[nextra++] = (struct qpair) { (char *) "X-Amz-Date", (char *) in->amz_date };
    extra[nextra++] = (struct qpair) { (char *) "X-Amz-Expires", expires };
    if (sign_token)
      extra[nextra++] = (struct qpair) { (char *) "X-Amz-Security-Token", tok_enc };
    extra[nextra++] = (struct qpair) { (char *) "X-Amz-SignedHeaders", sh_enc };
  }

  curi = pallet_aws_sigv4_canonical_uri (in->path, in->normalize_path);
  cquery = canonical_query_with (in->query, extra, nextra);
  if (!curi || !cquery)
    goto out;

  /* Canonical request. */
  pallet_aws_buf_printf (&b, "%s\n%s\n%s\n", in->method, curi, cquery);
  for (size_t i = 0; i < nh; i++)
    pallet_aws_buf_printf (&b, "%s:%s\n", h[i].name, h[i].value.data ? h[i].value.data : "");
  pallet_aws_buf_printf (&b, "\n%s\n%s", signed_headers, in->payload_hash);
  out->canonical_request = buf_steal (&b);
  if (!out->canonical_request)
    goto out;

  char creq_hash[65];
  pallet_aws_sha256_hex (out->canonical_request, strlen (out->canonical_request), creq_hash);
  pallet_aws_buf_printf (&b, "AWS4-HMAC-SHA256\n%s\n%s\n%s", in->amz_date, scope, creq_hash);
  out->string_to_sign = buf_steal (&b);
  if (!out->string_to_sign)
    goto out;

  /* Signing key: HMAC chain from "AWS4" + secret. */
  {
    size_t sl = strlen (in->secret_access_key);
    char *k = malloc (sl + 5);
    unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
    if (!k)
      goto out;
    memcpy (k, "AWS4", 4);
    memcpy (k + 4, in->secret_access_key, sl + 1);
    bool ok = hmac (k, sl + 4, date, k1) && hmac (k1, 32, in->region, k2)
      && hmac (k2, 32, in->service, k3) && hmac (k3, 32, "aws4_request", k4)
      && hmac (k4, 32, out->string_to_sign, sig);
    OPENSSL_cleanse (k, sl + 4);
    free (k);
    OPENSSL_cleanse (k1, 32);
    OPENSSL_cleanse (k2, 32);
    OPENSSL_cleanse (k3, 32);
    OPENSSL_cleanse (k4, 32);
    if (!ok)
      goto out;
    pallet_aws_hex (sig, 32, out->signature);
  }

  if (in->presign) {
    pallet_aws_buf_printf (&b, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s"
                           "&X-Amz-Date=%s&X-Amz-SignedHeaders=%s&X-Amz-Expires=%ld",
                           cred_enc, in->amz_date, sh_enc, in->expires);
    if (token)
      pallet_aws_buf_printf (&b, "&X-Amz-Security-Token=%s", tok_enc);
    pallet_aws_buf_printf (&b, "&X-Amz-Signature=%s", out->signature);
    out->presign_query = buf_steal (&b);
    if (!out->presign_query)
      goto out;
  }
  else {
    pallet_aws_buf_printf (&b, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                           "Signature=%s", in->access_key_id, scope, signed_headers,
                           out->signature);
    out->authorization = buf_steal (&b);
    if (!out->authorization)
      goto out;
  }
  ret = 0;

 out:
  for (size_t i = 0; i < nh; i++) {
    free (h[i].name);
    pallet_aws_buf_free (&h[i].value);
  }
  free (h);
  free (curi);
  free (cquery);
  free (scope);
  free (signed_headers);
  free (cred_enc);
  free (sh_enc);
  free (tok_enc);
  pallet_aws_buf_free (&b);
  if (ret < 0)
    pallet_aws_sigv4_out_free (out);
  return ret;
}

void
pallet_aws_sigv4_out_free (struct pallet_aws_sigv4_out *out)
{
  free (out->canonical_request);
  free (out->string_to_sign);
  free (out->authorization);
  free (out->presign_query);
  out->canonical_request = out->string_to_sign = out->authorization = NULL;
  out->presign_query = NULL;
}
