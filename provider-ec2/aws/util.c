/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers: string buffer, encoding, hashing, randomness, JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "aws-internal.h"

void
Pallet_aws_buf_reserve (struct Pallet_aws_buf *b, size_t more)
{
  if (b->oom)
    return;
  if (b->len + more + 1 <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + more + 1)
    cap *= 2;
  char *p = realloc (b->data, cap);
  if (!p) {
    b->oom = 1;
    return;
  }
  b->data = p;
  b->cap = cap;
}

void
Pallet_aws_buf_add (struct Pallet_aws_buf *b, const char *s, size_t n)
{
  Pallet_aws_buf_reserve (b, n);
  if (b->oom)
    return;
  memcpy (b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void
Pallet_aws_buf_puts (struct Pallet_aws_buf *b, const char *s)
{
  Pallet_aws_buf_add (b, s, strlen (s));
}

void
Pallet_aws_buf_printf (struct Pallet_aws_buf *b, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (NULL, 0, fmt, ap);
  va_end (ap);
  if (n < 0) {
    b->oom = 1;
    return;
  }
  Pallet_aws_buf_reserve (b, (size_t) n);
  if (b->oom)
    return;
  va_start (ap, fmt);
  vsnprintf (b->data + b->len, (size_t) n + 1, fmt, ap);
  va_end (ap);
  b->len += (size_t) n;
}

const char *
Pallet_aws_buf_str (struct Pallet_aws_buf *b)
{
  Pallet_aws_buf_reserve (b, 0);
  if (b->oom)
    return NULL;
  b->data[b->len] = '\0';
  return b->data;
}

void
Pallet_aws_buf_free (struct Pallet_aws_buf *b)
{
  free (b->data);
  memset (b, 0, sizeof *b);
}

/* RFC 3986 unreserved characters, by byte. */
const unsigned char Pallet_aws_unreserved[256] = {
  ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1,
  ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
  ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1,
  ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1,
  ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,
  ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1, ['0'] = 1, ['1'] = 1,
  ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['-'] = 1,
  ['_'] = 1, ['.'] = 1, ['~'] = 1,
};

void
Pallet_aws_uri_encode (struct Pallet_aws_buf *b, const char *s, size_t n, bool keep_slash)
{
  static const char hexd[] = "0123456789ABCDEF";
  Pallet_aws_buf_reserve (b, 3 * n);
  if (b->oom)
    return;
  char *o = b->data + b->len;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char) s[i];
    if (Pallet_aws_unreserved[ch] || (keep_slash && ch == '/'))
      *o++ = (char) ch;
    else {
      *o++ = '%';
      *o++ = hexd[ch >> 4];
      *o++ = hexd[ch & 15];
    }
  }
  b->len = (size_t) (o - b->data);
  b->data[b->len] = '\0';
}

void
Pallet_aws_hex (const unsigned char *in, size_t n, char *out)
{
  static const char hexd[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hexd[in[i] >> 4];
    out[2 * i + 1] = hexd[in[i] & 15];
  }
  out[2 * n] = '\0';
}

void
Pallet_aws_sha256_hex (const void *data, size_t n, char out[65])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!EVP_Digest (data, n, md, &mdlen, EVP_sha256 (), NULL))
    mdlen = 0;
  Pallet_aws_hex (md, mdlen, out);
}

double
Pallet_aws_random (void)
{
  uint64_t r = 0;
  if (RAND_bytes ((unsigned char *) &r, sizeof r) != 1)
    r = (uint64_t) rand ();
  return (double) (r >> 11) / 9007199254740992.0; /* 2^53 */
}

void
Pallet_aws_uuid (char out[37])
{
  unsigned char u[16];
  if (RAND_bytes (u, sizeof u) != 1)
    for (size_t i = 0; i < sizeof u; i++)
      u[i] = (unsigned char) rand ();
  u[6] = (u[6] & 0x0f) | 0x40;
  u[8] = (u[8] & 0x3f) | 0x80;
  snprintf (out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
            u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
            u[15]);
}

long long
Pallet_aws_json_int (const json_t *obj, const char *key, long long def)
{
  json_t *v = json_object_get (obj, key);
  if (json_is_integer (v))
    return json_integer_value (v);
  if (json_is_string (v)) {
    const char *s = json_string_value (v);
    char *end;
    long long n = strtoll (s, &end, 10);
    if (*s && *end == '\0')
      return n;
  }
  return def;
}

const char *
Pallet_aws_json_str (const json_t *obj, const char *key)
{
  return json_string_value (json_object_get (obj, key));
}
