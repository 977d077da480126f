/* SPDX-License-Identifier: Apache-2.0 */
/* AWS Signature Version 4: header signing and query (presigned) signing.
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
 *
 * Signing is on the copy path's hot loop (one GetSnapshotBlock per 512 KiB
 * block), so a signature costs one SHA-256 of the canonical request and one
 * HMAC: the signing key is derived once per day, region, service and secret
 * (struct Pallet_aws_sigv4_key), with the HMAC's two pads already hashed. */
/* SHA256_CTX is deprecated in OpenSSL 3 but kept through 3.x: a plain
 * struct, copied by assignment, where an EVP context costs a provider
 * dispatch and an allocation per copy, more than hashing a request. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include "aws-internal.h"

static char *
buf_steal (struct Pallet_aws_buf *b)
{
  if (!Pallet_aws_buf_str (b)) {
    Pallet_aws_buf_free (b);
    return NULL;
  }
  char *s = b->data;
  memset (b, 0, sizeof *b);
  return s;
}

/* ---- the canonical URI ---- */

/* Whether RFC 3986 5.2.4 changes path: a "." or ".." segment, or an empty
 * one other than a trailing slash. */
static bool
needs_normalizing (const char *path)
{
  for (const char *p = path; *p; p++) {
    if (*p != '/')
      continue;
    if (p[1] == '/')
      return true;
    if (p[1] == '.' && (p[2] == '/' || !p[2] || (p[2] == '.' && (p[3] == '/' || !p[3]))))
      return true;
  }
  return path[0] != '/';
}

static void
normalize_path (struct Pallet_aws_buf *b, const char *path)
{
  size_t n = strlen (path);
  const char *seg[64];
  size_t seglen[64];
  const char **segv = seg;
  size_t *lenv = seglen;
  if (n + 1 > 64) {
    segv = calloc (n + 1, sizeof *segv);
    lenv = calloc (n + 1, sizeof *lenv);
    if (!segv || !lenv) {
      b->oom = 1;
      goto out;
    }
  }
  size_t nseg = 0;
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
    segv[nseg] = s;
    lenv[nseg++] = l;
  }
  for (size_t i = 0; i < nseg; i++) {
    Pallet_aws_buf_add (b, "/", 1);
    Pallet_aws_uri_encode (b, segv[i], lenv[i], false);
  }
  if (nseg == 0 || path[n - 1] == '/')
    Pallet_aws_buf_add (b, "/", 1);
out:
  if (segv != seg) {
    free (segv);
    free (lenv);
  }
}

static void
canonical_uri (struct Pallet_aws_buf *b, const char *path, bool normalize)
{
  if (!path || !*path)
    path = "/";
  if (normalize && needs_normalizing (path))
    normalize_path (b, path);
  else
    Pallet_aws_uri_encode (b, path, strlen (path), true);
}

char *
Pallet_aws_sigv4_canonical_uri (const char *path, bool normalize)
{
  struct Pallet_aws_buf b = { 0 };
  canonical_uri (&b, path, normalize);
  return buf_steal (&b);
}

/* ---- the canonical query ---- */

/* Hex digit values + 1 (0: not a hex digit). */
static const unsigned char hex1[256] = {
  ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
  ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/* Percent-decodes s[0..n) and re-encodes it the canonical way, then a NUL
 * (counted in len if nul, so the pieces in an arena compare as strings). */
static void
reencode (struct Pallet_aws_buf *out, const char *s, size_t n, bool nul)
{
  static const char hexd[] = "0123456789ABCDEF";
  Pallet_aws_buf_reserve (out, 3 * n + 1);
  if (out->oom)
    return;
  const unsigned char *p = (const unsigned char *) s;
  char *o = out->data + out->len;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = p[i];
    if (ch == '%' && i + 2 < n && hex1[p[i + 1]] && hex1[p[i + 2]]) {
      ch = (unsigned char) ((hex1[p[i + 1]] - 1) * 16 + hex1[p[i + 2]] - 1);
      i += 2;
    }
    if (Pallet_aws_unreserved[ch])
      *o++ = (char) ch;
    else {
      *o++ = '%';
      *o++ = hexd[ch >> 4];
      *o++ = hexd[ch & 15];
    }
  }
  *o = '\0';
  out->len = (size_t) (o - out->data) + nul;
}

struct qpair {
  const char *key, *value;
};

static int
qpair_cmp (const void *a, const void *b)
{
  const struct qpair *x = a, *y = b;
  int r = strcmp (x->key, y->key);
  return r ? r : strcmp (x->value, y->value);
}

/* Appends the canonical form of a raw query, with extra pairs (already
 * canonical), sorted, to out. */
static void
canonical_query (struct Pallet_aws_buf *out, const char *query, const struct qpair *extra,
                 size_t nextra)
{
  size_t cap = nextra + 1;
  for (const char *q = query; q && *q; q++)
    if (*q == '&')
      cap++;
  if (cap == 1 && query && *query) { /* one pair, nothing to sort */
    const char *eq = strchr (query, '=');
    size_t l = strlen (query), kl = eq ? (size_t) (eq - query) : l;
    reencode (out, query, kl, false);
    Pallet_aws_buf_add (out, "=", 1);
    reencode (out, eq ? eq + 1 : "", eq ? l - kl - 1 : 0, false);
    return;
  }
  struct qpair stack[16], *v = cap <= 16 ? stack : calloc (cap, sizeof *v);
  struct Pallet_aws_buf arena = { 0 };
  size_t off[2 * 16], *offv = cap <= 16 ? off : calloc (2 * cap, sizeof *offv);
  size_t nv = 0;
  Pallet_aws_buf_reserve (&arena, query ? 3 * strlen (query) + 2 * cap : 0);
  if (!v || !offv) {
    out->oom = 1;
    goto out;
  }
  for (const char *p = query; p && *p;) {
    const char *e = strchr (p, '&');
    size_t l = e ? (size_t) (e - p) : strlen (p);
    if (l > 0) {
      const char *eq = memchr (p, '=', l);
      size_t kl = eq ? (size_t) (eq - p) : l;
      offv[2 * nv] = arena.len;
      reencode (&arena, p, kl, true);
      offv[2 * nv + 1] = arena.len;
      reencode (&arena, eq ? eq + 1 : "", eq ? l - kl - 1 : 0, true);
      nv++;
    }
    p = e ? e + 1 : p + l;
  }
  if (arena.oom) {
    out->oom = 1;
    goto out;
  }
  for (size_t i = 0; i < nv; i++) /* the arena no longer moves */
    v[i] = (struct qpair){ arena.data + offv[2 * i], arena.data + offv[2 * i + 1] };
  for (size_t i = 0; i < nextra; i++)
    v[nv++] = extra[i];
  qsort (v, nv, sizeof *v, qpair_cmp);
  for (size_t i = 0; i < nv; i++) {
    if (i)
      Pallet_aws_buf_add (out, "&", 1);
    Pallet_aws_buf_puts (out, v[i].key);
    Pallet_aws_buf_add (out, "=", 1);
    Pallet_aws_buf_puts (out, v[i].value);
  }
out:
  if (v != stack)
    free (v);
  if (offv != off)
    free (offv);
  Pallet_aws_buf_free (&arena);
}

char *
Pallet_aws_sigv4_canonical_query (const char *query)
{
  struct Pallet_aws_buf b = { 0 };
  Pallet_aws_buf_add (&b, "", 0);
  canonical_query (&b, query, NULL, 0);
  return buf_steal (&b);
}

/* ---- the canonical headers ---- */

/* A header to sign: lower-case name and trimmed value (runs of whitespace,
 * folded lines included, collapsed to one space), in an arena. */
struct chdr {
  const char *name, *value;
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
add_lower (struct Pallet_aws_buf *b, const char *s)
{
  size_t n = strlen (s);
  Pallet_aws_buf_reserve (b, n + 1);
  if (b->oom)
    return;
  char *o = b->data + b->len;
  for (size_t i = 0; i < n; i++)
    o[i] = (char) tolower ((unsigned char) s[i]);
  o[n] = '\0';
  b->len += n + 1;
}

static void
add_trimmed (struct Pallet_aws_buf *b, const char *v)
{
  size_t n = strlen (v);
  Pallet_aws_buf_reserve (b, n + 1);
  if (b->oom)
    return;
  char *o = b->data + b->len;
  bool space = false, any = false;
  for (; *v; v++) {
    if (isspace ((unsigned char) *v)) {
      space = any;
      continue;
    }
    if (space)
      *o++ = ' ';
    *o++ = *v;
    space = false;
    any = true;
  }
  *o++ = '\0';
  b->len = (size_t) (o - b->data);
}

struct headers {
  struct chdr stack[16], *h;
  size_t n;
  struct Pallet_aws_buf arena;
  char *signed_names; /* "host;x-amz-date" */
};

static void
headers_free (struct headers *hs)
{
  if (hs->h != hs->stack)
    free (hs->h);
  Pallet_aws_buf_free (&hs->arena);
  free (hs->signed_names);
}

/* The request's headers plus, in header mode, the ones signing adds;
 * sorted by name (a name given twice keeps the request's order). */
static int
headers_collect (const struct Pallet_aws_sigv4_in *in, bool sign_token, struct headers *hs)
{
  struct Pallet_aws_hdr added[3];
  size_t nadded = 0;
  if (!in->presign) {
    added[nadded++] = (struct Pallet_aws_hdr){ "x-amz-date", in->amz_date };
    if (sign_token)
      added[nadded++] = (struct Pallet_aws_hdr){ "x-amz-security-token", in->session_token };
    if (in->add_content_sha256)
      added[nadded++] = (struct Pallet_aws_hdr){ "x-amz-content-sha256", in->payload_hash };
  }
  size_t total = in->nheaders + nadded;
  hs->h = total <= 16 ? hs->stack : calloc (total, sizeof *hs->h);
  if (!hs->h)
    return -1;
  size_t off[2 * 16], *offv = total <= 16 ? off : calloc (2 * total, sizeof *offv);
  if (!offv)
    return -1;
  for (size_t i = 0; i < total; i++) {
    const struct Pallet_aws_hdr *x = i < in->nheaders ? &in->headers[i] : &added[i - in->nheaders];
    offv[2 * i] = hs->arena.len;
    add_lower (&hs->arena, x->name);
    offv[2 * i + 1] = hs->arena.len;
    add_trimmed (&hs->arena, x->value);
  }
  if (!hs->arena.oom)
    for (size_t i = 0; i < total; i++)
      hs->h[i] = (struct chdr){ hs->arena.data + offv[2 * i], hs->arena.data + offv[2 * i + 1], i };
  if (offv != off)
    free (offv);
  if (hs->arena.oom)
    return -1;
  hs->n = total;
  qsort (hs->h, hs->n, sizeof *hs->h, chdr_cmp);

  struct Pallet_aws_buf sb = { 0 };
  Pallet_aws_buf_add (&sb, "", 0);
  for (size_t i = 0; i < hs->n; i++) {
    if (i > 0 && strcmp (hs->h[i - 1].name, hs->h[i].name) == 0)
      continue;
    if (i)
      Pallet_aws_buf_add (&sb, ";", 1);
    Pallet_aws_buf_puts (&sb, hs->h[i].name);
  }
  hs->signed_names = buf_steal (&sb);
  return hs->signed_names ? 0 : -1;
}

/* "name:value\n" per name; a name given twice has its values joined with
 * ',' in the request's order. */
static void
headers_canonical (const struct headers *hs, struct Pallet_aws_buf *b)
{
  for (size_t i = 0; i < hs->n; i++) {
    if (i > 0 && strcmp (hs->h[i - 1].name, hs->h[i].name) == 0)
      Pallet_aws_buf_add (b, ",", 1);
    else {
      if (i > 0)
        Pallet_aws_buf_add (b, "\n", 1);
      Pallet_aws_buf_puts (b, hs->h[i].name);
      Pallet_aws_buf_add (b, ":", 1);
    }
    Pallet_aws_buf_puts (b, hs->h[i].value);
  }
  if (hs->n > 0)
    Pallet_aws_buf_add (b, "\n", 1);
}

/* ---- the signing key ---- */

struct Pallet_aws_sigv4_key {
  char *date, *region, *service, *secret; /* what the key was derived from */
  SHA256_CTX inner, outer;                /* SHA-256 after (key ^ ipad), (key ^ opad) */
};

static void
hmac_pads (const unsigned char *key, size_t keylen, SHA256_CTX *inner, SHA256_CTX *outer)
{
  unsigned char k[SHA256_CBLOCK] = { 0 }, pad[SHA256_CBLOCK];
  if (keylen > SHA256_CBLOCK) {
    SHA256_CTX c;
    SHA256_Init (&c);
    SHA256_Update (&c, key, keylen);
    SHA256_Final (k, &c);
  }
  else
    memcpy (k, key, keylen);
  for (size_t i = 0; i < sizeof pad; i++)
    pad[i] = k[i] ^ 0x36;
  SHA256_Init (inner);
  SHA256_Update (inner, pad, sizeof pad);
  for (size_t i = 0; i < sizeof pad; i++)
    pad[i] = k[i] ^ 0x5c;
  SHA256_Init (outer);
  SHA256_Update (outer, pad, sizeof pad);
  OPENSSL_cleanse (k, sizeof k);
  OPENSSL_cleanse (pad, sizeof pad);
}

/* HMAC-SHA256 of data under the key whose pads are inner and outer. */
static void
hmac_with (const SHA256_CTX *inner, const SHA256_CTX *outer, const void *data, size_t n,
           unsigned char out[32])
{
  SHA256_CTX c = *inner;
  unsigned char ih[32];
  SHA256_Update (&c, data, n);
  SHA256_Final (ih, &c);
  c = *outer;
  SHA256_Update (&c, ih, sizeof ih);
  SHA256_Final (out, &c);
  OPENSSL_cleanse (&c, sizeof c);
}

static void
hmac (const unsigned char *key, size_t keylen, const char *data, unsigned char out[32])
{
  SHA256_CTX inner, outer;
  hmac_pads (key, keylen, &inner, &outer);
  hmac_with (&inner, &outer, data, strlen (data), out);
  OPENSSL_cleanse (&inner, sizeof inner);
  OPENSSL_cleanse (&outer, sizeof outer);
}

static void
free_secret (char *s)
{
  if (s) {
    OPENSSL_cleanse (s, strlen (s));
    free (s);
  }
}

void
Pallet_aws_sigv4_key_free (struct Pallet_aws_sigv4_key *k)
{
  if (!k)
    return;
  free (k->date);
  free (k->region);
  free (k->service);
  free_secret (k->secret);
  OPENSSL_cleanse (k, sizeof *k);
  free (k);
}

static bool
key_is_for (const struct Pallet_aws_sigv4_key *k, const char *date, const char *region,
            const char *service, const char *secret)
{
  return k && strcmp (k->date, date) == 0 && strcmp (k->region, region) == 0
         && strcmp (k->service, service) == 0 && strcmp (k->secret, secret) == 0;
}

/* The HMAC chain from "AWS4" + secret over date, region, service and
 * "aws4_request"; NULL when out of memory. */
static struct Pallet_aws_sigv4_key *
key_derive (const char *date, const char *region, const char *service, const char *secret)
{
  struct Pallet_aws_sigv4_key *k = calloc (1, sizeof *k);
  size_t sl = strlen (secret);
  unsigned char *aws4 = malloc (sl + 4);
  if (!k || !aws4 || !(k->date = strdup (date)) || !(k->region = strdup (region))
      || !(k->service = strdup (service)) || !(k->secret = strdup (secret))) {
    free (aws4);
    Pallet_aws_sigv4_key_free (k);
    return NULL;
  }
  unsigned char k1[32], k2[32], k3[32], k4[32];
  memcpy (aws4, "AWS4", 4);
  memcpy (aws4 + 4, secret, sl);
  hmac (aws4, sl + 4, date, k1);
  hmac (k1, 32, region, k2);
  hmac (k2, 32, service, k3);
  hmac (k3, 32, "aws4_request", k4);
  hmac_pads (k4, 32, &k->inner, &k->outer);
  OPENSSL_cleanse (aws4, sl + 4);
  free (aws4);
  OPENSSL_cleanse (k1, 32);
  OPENSSL_cleanse (k2, 32);
  OPENSSL_cleanse (k3, 32);
  OPENSSL_cleanse (k4, 32);
  return k;
}

/* The signing key for this request: the cached one if it is for the same
 * day, region, service and secret, else a new one (kept in the cache when
 * there is one, and then owned by it). */
static struct Pallet_aws_sigv4_key *
signing_key (const struct Pallet_aws_sigv4_in *in, const char *date)
{
  struct Pallet_aws_sigv4_key **cache = in->key_cache;
  if (cache && key_is_for (*cache, date, in->region, in->service, in->secret_access_key))
    return *cache;
  struct Pallet_aws_sigv4_key *k =
      key_derive (date, in->region, in->service, in->secret_access_key);
  if (k && cache) {
    Pallet_aws_sigv4_key_free (*cache);
    *cache = k;
  }
  return k;
}

/* ---- signing ---- */

/* Query signing: the X-Amz-* parameters, encoded, in params; their strings
 * are in arena at offs (credential, signed headers, token, expires). */
static int
presign_params (const struct Pallet_aws_sigv4_in *in, const char *scope, const char *signed_names,
                bool token, bool sign_token, struct Pallet_aws_buf *arena, struct qpair params[6],
                size_t *nparams, size_t offs[4])
{
  struct Pallet_aws_buf cred = { 0 };
  Pallet_aws_buf_printf (&cred, "%s/%s", in->access_key_id, scope);
  if (!Pallet_aws_buf_str (&cred)) {
    Pallet_aws_buf_free (&cred);
    return -1;
  }
  offs[0] = arena->len;
  Pallet_aws_uri_encode (arena, cred.data, cred.len, false);
  Pallet_aws_buf_add (arena, "", 1);
  Pallet_aws_buf_free (&cred);
  offs[1] = arena->len;
  Pallet_aws_uri_encode (arena, signed_names, strlen (signed_names), false);
  Pallet_aws_buf_add (arena, "", 1);
  offs[2] = arena->len;
  if (token)
    Pallet_aws_uri_encode (arena, in->session_token, strlen (in->session_token), false);
  Pallet_aws_buf_add (arena, "", 1);
  offs[3] = arena->len;
  Pallet_aws_buf_printf (arena, "%ld", in->expires);
  Pallet_aws_buf_add (arena, "", 1);
  if (arena->oom)
    return -1;
  const char *a = arena->data;
  size_t n = 0;
  params[n++] = (struct qpair){ "X-Amz-Algorithm", "AWS4-HMAC-SHA256" };
  params[n++] = (struct qpair){ "X-Amz-Credential", a + offs[0] };
  params[n++] = (struct qpair){ "X-Amz-Date", in->amz_date };
  params[n++] = (struct qpair){ "X-Amz-Expires", a + offs[3] };
  if (sign_token)
    params[n++] = (struct qpair){ "X-Amz-Security-Token", a + offs[2] };
  params[n++] = (struct qpair){ "X-Amz-SignedHeaders", a + offs[1] };
  *nparams = n;
  return 0;
}

/* The credential scope DATE/REGION/SERVICE/aws4_request, into a fixed
   buffer (no allocation on the signing path). */
static int
credential_scope (const struct Pallet_aws_sigv4_in *in, const char *date, char *scope, size_t size)
{
  size_t rl = strlen (in->region), svl = strlen (in->service);
  if (8 + 1 + rl + 1 + svl + sizeof "/aws4_request" > size)
    return -1;
  char *sp = scope;
  memcpy (sp, date, 8);
  sp[8] = '/';
  memcpy (sp += 9, in->region, rl);
  *(sp += rl) = '/';
  memcpy (sp + 1, in->service, svl);
  memcpy (sp + 1 + svl, "/aws4_request", sizeof "/aws4_request");
  return 0;
}

static char *
canonical_request (const struct Pallet_aws_sigv4_in *in, const struct headers *hs,
                   const struct qpair *params, size_t nparams, struct Pallet_aws_buf *b)
{
  Pallet_aws_buf_reserve (b, 512);
  Pallet_aws_buf_puts (b, in->method);
  Pallet_aws_buf_add (b, "\n", 1);
  canonical_uri (b, in->path, in->normalize_path);
  Pallet_aws_buf_add (b, "\n", 1);
  canonical_query (b, in->query, params, nparams);
  Pallet_aws_buf_add (b, "\n", 1);
  headers_canonical (hs, b);
  Pallet_aws_buf_add (b, "\n", 1);
  Pallet_aws_buf_puts (b, hs->signed_names);
  Pallet_aws_buf_add (b, "\n", 1);
  Pallet_aws_buf_puts (b, in->payload_hash);
  return buf_steal (b);
}

static char *
string_to_sign (const struct Pallet_aws_sigv4_in *in, const char *scope, const char *creq,
                struct Pallet_aws_buf *b)
{
  unsigned char md[32];
  char creq_hash[65];
  SHA256_CTX sc;
  SHA256_Init (&sc); /* not SHA256(): in OpenSSL 3 that fetches an EVP_MD per call */
  SHA256_Update (&sc, creq, strlen (creq));
  SHA256_Final (md, &sc);
  Pallet_aws_hex (md, 32, creq_hash);
  Pallet_aws_buf_reserve (b, 256);
  Pallet_aws_buf_puts (b, "AWS4-HMAC-SHA256\n");
  Pallet_aws_buf_puts (b, in->amz_date);
  Pallet_aws_buf_add (b, "\n", 1);
  Pallet_aws_buf_puts (b, scope);
  Pallet_aws_buf_add (b, "\n", 1);
  Pallet_aws_buf_add (b, creq_hash, 64);
  return buf_steal (b);
}

/* The presigned query string (ARENA at OFFS holds its encoded values) or
   the Authorization header. */
static int
signed_result (const struct Pallet_aws_sigv4_in *in, const char *scope, const char *signed_names,
               bool token, const struct Pallet_aws_buf *arena, const size_t *offs,
               struct Pallet_aws_buf *b, struct Pallet_aws_sigv4_out *out)
{
  if (in->presign) {
    const char *a = arena->data;
    Pallet_aws_buf_printf (b,
                           "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s"
                           "&X-Amz-Date=%s&X-Amz-SignedHeaders=%s&X-Amz-Expires=%ld",
                           a + offs[0], in->amz_date, a + offs[1], in->expires);
    if (token)
      Pallet_aws_buf_printf (b, "&X-Amz-Security-Token=%s", a + offs[2]);
    Pallet_aws_buf_printf (b, "&X-Amz-Signature=%s", out->signature);
    out->presign_query = buf_steal (b);
    return out->presign_query ? 0 : -1;
  }
  Pallet_aws_buf_puts (b, "AWS4-HMAC-SHA256 Credential=");
  Pallet_aws_buf_puts (b, in->access_key_id);
  Pallet_aws_buf_add (b, "/", 1);
  Pallet_aws_buf_puts (b, scope);
  Pallet_aws_buf_puts (b, ", SignedHeaders=");
  Pallet_aws_buf_puts (b, signed_names);
  Pallet_aws_buf_puts (b, ", Signature=");
  Pallet_aws_buf_puts (b, out->signature);
  out->authorization = buf_steal (b);
  return out->authorization ? 0 : -1;
}

int
Pallet_aws_sigv4_sign (const struct Pallet_aws_sigv4_in *in, struct Pallet_aws_sigv4_out *out)
{
  int ret = -1;
  char date[9], scope[256];
  struct headers hs = { 0 };
  struct Pallet_aws_buf b = { 0 }, arena = { 0 };
  struct qpair params[6];
  size_t nparams = 0, offs[4] = { 0 };

  memset (out, 0, sizeof *out);
  if (!in->amz_date || strlen (in->amz_date) != 16)
    return -1;
  memcpy (date, in->amz_date, 8);
  date[8] = '\0';
  bool token = in->session_token && *in->session_token;
  bool sign_token = token && !in->omit_session_token;
  if (credential_scope (in, date, scope, sizeof scope) < 0)
    return -1;
  Pallet_aws_buf_reserve (&hs.arena, 256);
  if (headers_collect (in, sign_token, &hs) < 0)
    goto out;
  if (in->presign
      && presign_params (in, scope, hs.signed_names, token, sign_token, &arena, params, &nparams,
                         offs)
             < 0)
    goto out;
  out->canonical_request = canonical_request (in, &hs, params, nparams, &b);
  if (!out->canonical_request)
    goto out;
  out->string_to_sign = string_to_sign (in, scope, out->canonical_request, &b);
  if (!out->string_to_sign)
    goto out;

  unsigned char md[32];
  struct Pallet_aws_sigv4_key *key = signing_key (in, date);
  if (!key)
    goto out;
  hmac_with (&key->inner, &key->outer, out->string_to_sign, strlen (out->string_to_sign), md);
  if (!in->key_cache)
    Pallet_aws_sigv4_key_free (key);
  Pallet_aws_hex (md, 32, out->signature);
  if (signed_result (in, scope, hs.signed_names, token, &arena, offs, &b, out) < 0)
    goto out;
  ret = 0;

out:
  headers_free (&hs);
  Pallet_aws_buf_free (&arena);
  Pallet_aws_buf_free (&b);
  if (ret < 0)
    Pallet_aws_sigv4_out_free (out);
  return ret;
}

void
Pallet_aws_sigv4_out_free (struct Pallet_aws_sigv4_out *out)
{
  free (out->canonical_request);
  free (out->string_to_sign);
  free (out->authorization);
  free (out->presign_query);
  out->canonical_request = out->string_to_sign = out->authorization = NULL;
  out->presign_query = NULL;
}
