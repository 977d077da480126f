/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: SigV4 canonicalisation.  The input is split on '\n'
 * into method, path, query and header lines ("name:value"), then signed in
 * header mode and presign mode with path normalisation on and off.  A
 * one-pair query's canonical form must not depend on which path made it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "aws-internal.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define MAXH 16

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *s = malloc (size + 1);
  if (!s)
    return 0;
  memcpy (s, data, size);
  s[size] = '\0';
  char *line[3 + MAXH];
  size_t nl = 0;
  for (char *p = s, *nx; p && nl < 3 + MAXH; p = nx) {
    nx = strchr (p, '\n');
    if (nx)
      *nx++ = '\0';
    line[nl++] = p;
  }
  const char *method = nl > 0 ? line[0] : "GET";
  const char *path = nl > 1 ? line[1] : "/";
  const char *query = nl > 2 ? line[2] : NULL;
  struct Pallet_aws_hdr h[MAXH + 1];
  size_t nh = 0;
  h[nh].name = "host";
  h[nh++].value = "example.amazonaws.com";
  for (size_t i = 3; i < nl && nh <= MAXH; i++) {
    char *c = strchr (line[i], ':');
    if (!c)
      continue;
    *c = '\0';
    h[nh].name = line[i];
    h[nh++].value = c + 1;
  }
  char *u = Pallet_aws_sigv4_canonical_uri (path, size & 1);
  free (u);
  char *q = Pallet_aws_sigv4_canonical_query (query ? query : "");
  /* One pair may be copied as it is when it is already canonical; with a
   * trailing '&' (an empty pair, dropped) it takes the general path. */
  if (q && query && !strchr (query, '&')) {
    size_t ql = strlen (query);
    char *g = malloc (ql + 2);
    if (g) {
      memcpy (g, query, ql);
      memcpy (g + ql, "&", 2);
      char *gq = Pallet_aws_sigv4_canonical_query (g);
      if (gq && strcmp (q, gq) != 0)
        abort ();
      free (gq);
      free (g);
    }
  }
  free (q);
  for (int mode = 0; mode < 4; mode++) {
    struct Pallet_aws_sigv4_in in = {
      .method = method,
      .path = path,
      .query = query,
      .headers = h,
      .nheaders = nh,
      .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      .access_key_id = "AKIDEXAMPLE",
      .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
      .session_token = (mode & 2) ? "token" : NULL,
      .region = "us-east-1",
      .service = "service",
      .amz_date = "20150830T123600Z",
      .normalize_path = mode & 1,
      .presign = mode == 3,
      .expires = 300,
      .add_content_sha256 = mode == 2,
    };
    struct Pallet_aws_sigv4_out out;
    memset (&out, 0, sizeof out);
    Pallet_aws_sigv4_sign (&in, &out);
    Pallet_aws_sigv4_out_free (&out);
  }
  free (s);
  return 0;
}
