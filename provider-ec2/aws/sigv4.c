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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include "aws-internal.h"

/* Pallet_aws_buf_add without the call when there is room (the signing
 * path reserves its buffers up front): most of a signature is appends. */
static inline void
buf_add (struct Pallet_aws_buf *b, const char *s, size_t n)
{
  if (b->len + n + 1 <= b->cap) {
    memcpy (b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
  }
  else
    Pallet_aws_buf_add (b, s, n);
}

static inline void
buf_puts (struct Pallet_aws_buf *b, const char *s)
{
  buf_add (b, s, strlen (s));
}

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
    buf_add (b, "/", 1);
    Pallet_aws_uri_encode (b, segv[i], lenv[i], false);
  }
  if (nseg == 0 || path[n - 1] == '/')
    buf_add (b, "/", 1);
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

/* Whether every byte is one a canonical pair may hold (unreserved, '%' or
 * '='): 16 at a time, a query's bytes are most of what signing reads. */
typedef unsigned char pair_vec __attribute__ ((vector_size (16)));

static bool
pair_bytes_ok (const unsigned char *p, size_t n)
{
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    pair_vec c, l;
    uint64_t w[2];
    memcpy (&c, p + i, 16);
    l = (c | 0x20) - 'a';
    __typeof__ (c < 1) ok = (l < 26) | (c - '0' < 10) | (c - '-' < 2) | (c == '_') | (c == '~')
                            | (c == '%') | (c == '=');
    memcpy (w, &ok, 16);
    if ((w[0] & w[1]) != UINT64_MAX)
      return false;
  }
  for (; i < n; i++)
    if (!Pallet_aws_unreserved[p[i]] && p[i] != '%' && p[i] != '=')
      return false;
  return true;
}

/* The length of a one-pair query already in canonical form ("k=v", each
 * byte unreserved or an upper-case %XX of a byte that must be encoded),
 * or 0.  The copy path's blockToken=... is one: copied as it is, not
 * decoded and encoded again. */
static size_t
canonical_pair_len (const char *q)
{
  const unsigned char *p = (const unsigned char *) q;
  size_t n = strlen (q);
  const unsigned char *eq = memchr (p, '=', n);
  if (!pair_bytes_ok (p, n) || !eq || eq == p || memchr (eq + 1, '=', n - (size_t) (eq + 1 - p)))
    return 0; /* a byte to encode, not one '=', or an empty key */
  for (const unsigned char *e = memchr (p, '%', n); e;
       e = memchr (e + 1, '%', n - (size_t) (e + 1 - p))) {
    unsigned char h = e[1], l = h ? e[2] : 0; /* e[2] is there if e[1] is not the NUL */
    if (!hex1[h] || !hex1[l] || (h >= 'a' && h <= 'f') || (l >= 'a' && l <= 'f')
        || Pallet_aws_unreserved[(hex1[h] - 1) * 16 + hex1[l] - 1])
      return 0; /* not %XX, lower case, or an escaped byte that must not be */
  }
  return n;
}

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
  size_t ql;
  if (nextra == 0 && query && (ql = canonical_pair_len (query))) { /* already canonical */
    buf_add (out, query, ql);
    return;
  }
  size_t cap = nextra + 1;
  for (const char *q = query; q && *q; q++)
    if (*q == '&')
      cap++;
  if (cap == 1 && query && *query) { /* one pair, nothing to sort */
    const char *eq = strchr (query, '=');
    size_t l = strlen (query), kl = eq ? (size_t) (eq - query) : l;
    reencode (out, query, kl, false);
    buf_add (out, "=", 1);
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
      buf_add (out, "&", 1);
    buf_puts (out, v[i].key);
    buf_add (out, "=", 1);
    buf_puts (out, v[i].value);
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
  buf_add (&b, "", 0);
  canonical_query (&b, query, NULL, 0);
  return buf_steal (&b);
}

/* ---- the canonical headers ---- */

/* A header to sign: lower-case name and trimmed value (runs of whitespace,
 * folded lines included, collapsed to one space), in an arena, with their
 * lengths. */
struct chdr {
  const char *name, *value;
  size_t nlen, vlen, order;
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

/* A request signs a handful of headers: insertion sort, no qsort call. */
static void
chdr_sort (struct chdr *h, size_t n)
{
  if (n > 16) {
    qsort (h, n, sizeof *h, chdr_cmp);
    return;
  }
  for (size_t i = 1; i < n; i++) {
    struct chdr t = h[i];
    size_t j = i;
    for (; j > 0 && chdr_cmp (&h[j - 1], &t) > 0; j--)
      h[j] = h[j - 1];
    h[j] = t;
  }
}

/* s[0..n) lower-cased and its NUL at o; returns the end. */
static char *
put_lower (char *o, const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    o[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char) (s[i] + 32) : s[i];
  o[n] = '\0';
  return o + n + 1;
}

/* v[0..n) trimmed and its NUL at o; *len its trimmed length; returns the
 * end.  A value of printable ASCII only, the usual one, has nothing
 * isspace() could match in any locale: copied as it is. */
static char *
put_trimmed (char *o, const char *v, size_t n, size_t *len)
{
  unsigned odd = 0;
  for (size_t i = 0; i < n; i++)
    odd |= (unsigned char) (v[i] - 0x21) >= 0x5e;
  if (!odd) {
    memcpy (o, v, n + 1);
    *len = n;
    return o + n + 1;
  }
  char *start = o;
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
  *len = (size_t) (o - start);
  *o++ = '\0';
  return o;
}

struct headers {
  struct chdr stack[16], *h;
  size_t n;
  char arena_stack[512], *arena;        /* the names and values */
  char names_stack[128], *signed_names; /* "host;x-amz-date" */
};

/* Ready for headers_free, without clearing the stack arrays. */
static void
headers_init (struct headers *hs)
{
  hs->h = NULL;
  hs->n = 0;
  hs->arena = hs->signed_names = NULL;
}

static void
headers_free (struct headers *hs)
{
  if (hs->h != hs->stack)
    free (hs->h);
  if (hs->arena != hs->arena_stack)
    free (hs->arena);
  if (hs->signed_names != hs->names_stack)
    free (hs->signed_names);
}

/* "host;x-amz-date": each name once. */
static int
headers_names (struct headers *hs)
{
  size_t need = 1;
  for (size_t i = 0; i < hs->n; i++)
    need += hs->h[i].nlen + 1;
  hs->signed_names = need <= sizeof hs->names_stack ? hs->names_stack : malloc (need);
  if (!hs->signed_names)
    return -1;
  char *o = hs->signed_names;
  for (size_t i = 0; i < hs->n; i++) {
    if (i > 0 && strcmp (hs->h[i - 1].name, hs->h[i].name) == 0)
      continue;
    if (i)
      *o++ = ';';
    memcpy (o, hs->h[i].name, hs->h[i].nlen);
    o += hs->h[i].nlen;
  }
  *o = '\0';
  return 0;
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
  size_t total = in->nheaders + nadded, need = 0;
  hs->h = total <= 16 ? hs->stack : calloc (total, sizeof *hs->h);
  if (!hs->h)
    return -1;
  for (size_t i = 0; i < total; i++) {
    const struct Pallet_aws_hdr *x = i < in->nheaders ? &in->headers[i] : &added[i - in->nheaders];
    hs->h[i] = (struct chdr){ x->name, x->value, strlen (x->name), strlen (x->value), i };
    need += hs->h[i].nlen + hs->h[i].vlen + 2;
  }
  hs->arena = need <= sizeof hs->arena_stack ? hs->arena_stack : malloc (need);
  if (!hs->arena)
    return -1;
  char *o = hs->arena;
  for (size_t i = 0; i < total; i++) {
    struct chdr *c = &hs->h[i];
    const char *name = c->name, *value = c->value;
    c->name = o;
    o = put_lower (o, name, c->nlen);
    c->value = o;
    o = put_trimmed (o, value, c->vlen, &c->vlen);
  }
  hs->n = total;
  chdr_sort (hs->h, hs->n);
  return headers_names (hs);
}

/* "name:value\n" per name; a name given twice has its values joined with
 * ",", in the request's order. */
static void
headers_canonical (const struct headers *hs, struct Pallet_aws_buf *b)
{
  for (size_t i = 0; i < hs->n; i++) {
    const struct chdr *c = &hs->h[i];
    if (i > 0 && strcmp (hs->h[i - 1].name, c->name) == 0)
      buf_add (b, ",", 1);
    else {
      if (i > 0)
        buf_add (b, "\n", 1);
      buf_add (b, c->name, c->nlen);
      buf_add (b, ":", 1);
    }
    buf_add (b, c->value, c->vlen);
  }
  if (hs->n > 0)
    buf_add (b, "\n", 1);
}

/* ---- the signing key ---- */

/* The key for one access key id, day, region and service.  No copy of the
 * secret: an access key id names one secret, and a new one (refreshed
 * credentials) misses the cache. */
struct Pallet_aws_sigv4_key {
  char *key_id, *date, *region, *service; /* what the key is for */
  SHA256_CTX inner, outer;                /* SHA-256 after (key ^ ipad), (key ^ opad) */
  /* inner after the string to sign's prefix "AWS4-HMAC-SHA256\nX-AMZ-DATE\n
   * SCOPE\n", the same for every request of that second: only the 64
   * hex digits of the canonical request's hash are left to hash. */
  char prefix_date[17];
  SHA256_CTX prefix;
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

void
Pallet_aws_sigv4_key_free (struct Pallet_aws_sigv4_key *k)
{
  if (!k)
    return;
  free (k->key_id);
  free (k->date);
  free (k->region);
  free (k->service);
  OPENSSL_cleanse (k, sizeof *k); /* the HMAC states are the key */
  free (k);
}

static bool
key_is_for (const struct Pallet_aws_sigv4_key *k, const char *key_id, const char *date,
            const char *region, const char *service)
{
  return k && strcmp (k->key_id, key_id) == 0 && strcmp (k->date, date) == 0
         && strcmp (k->region, region) == 0 && strcmp (k->service, service) == 0;
}

/* The HMAC chain from "AWS4" + secret over date, region, service and
 * "aws4_request"; NULL when out of memory. */
static struct Pallet_aws_sigv4_key *
key_derive (const char *key_id, const char *date, const char *region, const char *service,
            const char *secret)
{
  struct Pallet_aws_sigv4_key *k = calloc (1, sizeof *k);
  size_t sl = strlen (secret);
  unsigned char *aws4 = malloc (sl + 4);
  if (!k || !aws4 || !(k->key_id = strdup (key_id)) || !(k->date = strdup (date))
      || !(k->region = strdup (region)) || !(k->service = strdup (service))) {
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
 * access key id, day, region and service, else a new one (kept in the
 * cache when there is one, and then owned by it). */
static struct Pallet_aws_sigv4_key *
signing_key (const struct Pallet_aws_sigv4_in *in, const char *date)
{
  struct Pallet_aws_sigv4_key **cache = in->key_cache;
  if (cache && key_is_for (*cache, in->access_key_id, date, in->region, in->service))
    return *cache;
  struct Pallet_aws_sigv4_key *k =
      key_derive (in->access_key_id, date, in->region, in->service, in->secret_access_key);
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
  buf_add (arena, "", 1);
  Pallet_aws_buf_free (&cred);
  offs[1] = arena->len;
  Pallet_aws_uri_encode (arena, signed_names, strlen (signed_names), false);
  buf_add (arena, "", 1);
  offs[2] = arena->len;
  if (token)
    Pallet_aws_uri_encode (arena, in->session_token, strlen (in->session_token), false);
  buf_add (arena, "", 1);
  offs[3] = arena->len;
  Pallet_aws_buf_printf (arena, "%ld", in->expires);
  buf_add (arena, "", 1);
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

static void
canonical_request (const struct Pallet_aws_sigv4_in *in, const struct headers *hs,
                   const struct qpair *params, size_t nparams, struct Pallet_aws_buf *b)
{
  buf_puts (b, in->method);
  buf_add (b, "\n", 1);
  canonical_uri (b, in->path, in->normalize_path);
  buf_add (b, "\n", 1);
  canonical_query (b, in->query, params, nparams);
  buf_add (b, "\n", 1);
  headers_canonical (hs, b);
  buf_add (b, "\n", 1);
  buf_puts (b, hs->signed_names);
  buf_add (b, "\n", 1);
  buf_puts (b, in->payload_hash);
}

/* Two hex digits per byte from one table load. */
static void
hex32 (const unsigned char md[32], char out[65])
{
  static const char pairs[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                              "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
                              "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
                              "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
                              "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
                              "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
                              "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
                              "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
  for (size_t i = 0; i < 32; i++)
    memcpy (out + 2 * i, pairs + 2 * md[i], 2);
  out[64] = '\0';
}

/* Appends the string to sign (after the canonical request at creq_off,
 * creq_len long) and returns where its hex hash starts in b. */
static size_t
string_to_sign (const struct Pallet_aws_sigv4_in *in, const char *scope, size_t creq_off,
                size_t creq_len, struct Pallet_aws_buf *b)
{
  unsigned char md[32];
  char creq_hash[65];
  SHA256_CTX sc;
  SHA256_Init (&sc); /* not SHA256(): in OpenSSL 3 that fetches an EVP_MD per call */
  SHA256_Update (&sc, b->data + creq_off, creq_len);
  SHA256_Final (md, &sc);
  hex32 (md, creq_hash);
  buf_add (b, "AWS4-HMAC-SHA256\n", 17);
  buf_add (b, in->amz_date, 16);
  buf_add (b, "\n", 1);
  buf_puts (b, scope);
  buf_add (b, "\n", 1);
  size_t at = b->len;
  buf_add (b, creq_hash, 64);
  return at;
}

/* The HMAC of the string to sign sts (its last 64 bytes the hash) with
 * the cached prefix state when this second's is there. */
static void
sign_sts (struct Pallet_aws_sigv4_key *k, const char *amz_date, const char *sts, size_t len,
          unsigned char md[32])
{
  if (memcmp (k->prefix_date, amz_date, 17) != 0) {
    k->prefix = k->inner;
    SHA256_Update (&k->prefix, sts, len - 64);
    memcpy (k->prefix_date, amz_date, 17);
  }
  SHA256_CTX c = k->prefix;
  unsigned char ih[32];
  SHA256_Update (&c, sts + len - 64, 64);
  SHA256_Final (ih, &c);
  c = k->outer;
  SHA256_Update (&c, ih, sizeof ih);
  SHA256_Final (md, &c);
  OPENSSL_cleanse (&c, sizeof c);
}

/* The presigned query string (ARENA at OFFS holds its encoded values) or
   the Authorization header. */
static int
signed_result (const struct Pallet_aws_sigv4_in *in, const char *scope, const char *signed_names,
               bool token, const struct Pallet_aws_buf *arena, const size_t *offs,
               struct Pallet_aws_buf *b, const char *signature)
{
  if (in->presign) {
    const char *a = arena->data;
    Pallet_aws_buf_printf (b,
                           "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s"
                           "&X-Amz-Date=%s&X-Amz-SignedHeaders=%s&X-Amz-Expires=%ld",
                           a + offs[0], in->amz_date, a + offs[1], in->expires);
    if (token)
      Pallet_aws_buf_printf (b, "&X-Amz-Security-Token=%s", a + offs[2]);
    Pallet_aws_buf_printf (b, "&X-Amz-Signature=%s", signature);
  }
  else {
    buf_add (b, "AWS4-HMAC-SHA256 Credential=", 28);
    buf_puts (b, in->access_key_id);
    buf_add (b, "/", 1);
    buf_puts (b, scope);
    buf_add (b, ", SignedHeaders=", 16);
    buf_puts (b, signed_names);
    buf_add (b, ", Signature=", 12);
    buf_add (b, signature, 64);
  }
  return Pallet_aws_buf_str (b) ? 0 : -1;
}

int
Pallet_aws_sigv4_sign (const struct Pallet_aws_sigv4_in *in, struct Pallet_aws_sigv4_out *out)
{
  int ret = -1;
  char date[9], scope[256];
  struct headers hs;
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
  headers_init (&hs);
  if (headers_collect (in, sign_token, &hs) < 0)
    goto out;
  if (in->presign
      && presign_params (in, scope, hs.signed_names, token, sign_token, &arena, params, &nparams,
                         offs)
             < 0)
    goto out;
  /* The canonical request, the string to sign and the result, each with
   * its NUL, one after the other in b. */
  Pallet_aws_buf_reserve (&b, 1024);
  canonical_request (in, &hs, params, nparams, &b);
  size_t creq_len = b.len;
  buf_add (&b, "", 1);
  size_t sts_off = b.len;
  if (b.oom)
    goto out;
  string_to_sign (in, scope, 0, creq_len, &b);
  size_t sts_len = b.len - sts_off;
  buf_add (&b, "", 1);
  size_t res_off = b.len;
  if (b.oom)
    goto out;

  unsigned char md[32];
  struct Pallet_aws_sigv4_key *key = signing_key (in, date);
  if (!key)
    goto out;
  sign_sts (key, in->amz_date, b.data + sts_off, sts_len, md);
  if (!in->key_cache)
    Pallet_aws_sigv4_key_free (key);
  hex32 (md, out->signature);
  if (signed_result (in, scope, hs.signed_names, token, &arena, offs, &b, out->signature) < 0)
    goto out;
  out->block = b.data;
  out->canonical_request = b.data;
  out->string_to_sign = b.data + sts_off;
  if (in->presign)
    out->presign_query = b.data + res_off;
  else
    out->authorization = b.data + res_off;
  memset (&b, 0, sizeof b);
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
  free (out->block); /* the strings point into it */
  out->canonical_request = out->string_to_sign = out->authorization = NULL;
  out->presign_query = out->block = NULL;
}
