/* SPDX-License-Identifier: Apache-2.0 */
/* DNS-1123 labels and Kubernetes label values. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "pallet-k8sname.h"

static int
is_lower_alnum (unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int
is_alnum (unsigned char c)
{
  return is_lower_alnum (c) || (c >= 'A' && c <= 'Z');
}

int
Pallet_k8s_is_dns1123_label (const char *s)
{
  size_t i, n;

  if (s == NULL)
    return 0;
  n = strlen (s);
  if (n == 0 || n > PALLET_K8S_DNS1123_LABEL_MAX)
    return 0;
  for (i = 0; i < n; i++)
    if (!is_lower_alnum (s[i]) && s[i] != '-')
      return 0;
  return is_lower_alnum (s[0]) && is_lower_alnum (s[n - 1]);
}

int
Pallet_k8s_is_label_value (const char *s)
{
  size_t i, n;

  if (s == NULL)
    return 0;
  n = strlen (s);
  if (n == 0)
    return 1;
  if (n > 63)
    return 0;
  for (i = 0; i < n; i++)
    if (!is_alnum (s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
      return 0;
  return is_alnum (s[0]) && is_alnum (s[n - 1]);
}

int
Pallet_k8s_is_dns1123_subdomain (const char *s)
{
  size_t i, n;

  if (s == NULL)
    return 0;
  n = strlen (s);
  if (n == 0 || n > 253)
    return 0;
  for (i = 0; i < n; i++)
    if (!is_lower_alnum (s[i]) && s[i] != '-' && s[i] != '.')
      return 0;
  return is_lower_alnum (s[0]) && is_lower_alnum (s[n - 1]);
}

int
Pallet_k8s_is_label_key (const char *s)
{
  const char *slash, *name;
  char *prefix;
  int ok;

  if (s == NULL)
    return 0;
  slash = strchr (s, '/');
  name = slash ? slash + 1 : s;
  if (*name == '\0' || !Pallet_k8s_is_label_value (name))
    return 0;
  if (slash == NULL)
    return 1;
  prefix = strndup (s, slash - s);
  if (prefix == NULL)
    return 0;
  ok = Pallet_k8s_is_dns1123_subdomain (prefix);
  free (prefix);
  return ok;
}

/* Drops trailing '-' so the label ends alphanumeric. */
static void
trim_trailing_dashes (char *s)
{
  size_t n = strlen (s);

  while (n > 0 && s[n - 1] == '-')
    s[--n] = '\0';
}

/* Six hex digits of SHA-256(text, salt): short, stable across runs and
 * machines (unlike a random suffix), and unlikely to collide. */
static int
short_hash (const char *text, unsigned salt, char out[7])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  int ok;

  if (ctx == NULL)
    return -1;
  ok = EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL) && EVP_DigestUpdate (ctx, text, strlen (text))
       && (salt == 0 || EVP_DigestUpdate (ctx, &salt, sizeof salt))
       && EVP_DigestFinal_ex (ctx, md, &mdlen);
  EVP_MD_CTX_free (ctx);
  if (!ok || mdlen < 3)
    return -1;
  snprintf (out, 7, "%02x%02x%02x", md[0], md[1], md[2]);
  return 0;
}

static int
is_taken (const char *s, const char *const *taken, size_t ntaken)
{
  size_t i;

  for (i = 0; i < ntaken; i++)
    if (taken[i] != NULL && strcmp (s, taken[i]) == 0)
      return 1;
  return 0;
}

int
Pallet_k8s_dns1123_label (const char *in, const char *seed, const char *const *taken, size_t ntaken,
                          size_t maxlen, char **out, int *changed)
{
  size_t n, i, j, baselen;
  char *base, *res;
  unsigned salt;

  if (in == NULL || out == NULL || maxlen < 16 || maxlen > PALLET_K8S_DNS1123_LABEL_MAX)
    return -1;
  *out = NULL;
  n = strlen (in);
  base = malloc (n + 1);
  if (base == NULL)
    return -1;

  /* Map every byte; a run of unusable bytes becomes one '-'. */
  for (i = j = 0; i < n; i++) {
    unsigned char c = in[i];

    if (c >= 'A' && c <= 'Z')
      c = c - 'A' + 'a';
    if (!is_lower_alnum (c))
      c = '-';
    if (c == '-' && (j == 0 || base[j - 1] == '-'))
      continue; /* leading or repeated dash */
    base[j++] = c;
  }
  base[j] = '\0';
  if (j > maxlen)
    base[maxlen] = '\0';
  trim_trailing_dashes (base);

  if (base[0] != '\0' && !is_taken (base, taken, ntaken)) {
    if (changed)
      *changed = strcmp (base, in) != 0;
    *out = base;
    return 0;
  }

  /* Empty or taken: add a hash suffix, salted until it is free. */
  res = malloc (maxlen + 1);
  if (res == NULL) {
    free (base);
    return -1;
  }
  baselen = strlen (base);
  if (baselen > maxlen - 7)
    baselen = maxlen - 7;
  for (salt = 0; salt < 1000; salt++) {
    char hex[7];

    if (short_hash (seed ? seed : in, salt, hex) == -1)
      break;
    memcpy (res, base, baselen);
    res[baselen] = '\0';
    trim_trailing_dashes (res);
    if (res[0] == '\0')
      strcpy (res, "vm");
    strcat (res, "-");
    strcat (res, hex);
    if (!is_taken (res, taken, ntaken)) {
      free (base);
      if (changed)
        *changed = strcmp (res, in) != 0;
      *out = res;
      return 0;
    }
  }
  free (base);
  free (res);
  return -1;
}
