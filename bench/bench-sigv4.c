/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-bench-sigv4: time pallet's SigV4 signer on a list of requests.
 *
 *   pallet-bench-sigv4 REQUESTS.tsv SIGNATURES.out REPS
 *
 * REQUESTS.tsv: one request a line, tab-separated:
 *   method host path query service region amz-date access-key secret-key
 * (query already percent-encoded; empty body).  Each of REPS rounds signs
 * every request (Pallet_aws_sigv4_sign + free, header mode, with one
 * signing-key cache as an AWS client has), the work behind one
 * Authorization header.  The last round's signatures are
 * written to SIGNATURES.out, one a line, so the caller can check they
 * equal botocore's.  Prints JSON: per-round wall and CPU seconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws-internal.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct req {
  char *line; /* owns the fields below */
  const char *f[9];
};

static double
clock_s (clockid_t id)
{
  struct timespec ts;
  clock_gettime (id, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static int
split (struct req *r)
{
  char *p = r->line;
  for (int i = 0; i < 9; i++) {
    r->f[i] = p;
    char *t = strchr (p, i < 8 ? '\t' : '\n');
    if (t == NULL) {
      if (i == 8)
        return 0;
      return -1;
    }
    *t = '\0';
    p = t + 1;
  }
  return 0;
}

int
main (int argc, char *argv[])
{
  if (argc != 4) {
    fprintf (stderr, "usage: pallet-bench-sigv4 REQUESTS.tsv SIGNATURES.out REPS\n");
    return 2;
  }
  long reps = strtol (argv[3], NULL, 10);
  if (reps < 1 || reps > 10000) {
    fprintf (stderr, "pallet-bench-sigv4: REPS '%s' must be 1..10000\n", argv[3]);
    return 2;
  }
  FILE *fp = fopen (argv[1], "r");
  if (fp == NULL) {
    perror (argv[1]);
    return 1;
  }
  struct req *rq = NULL;
  size_t n = 0, cap = 0;
  char *line = NULL;
  size_t lcap = 0;
  while (getline (&line, &lcap, fp) > 0) {
    if (n == cap) {
      cap = cap ? cap * 2 : 1024;
      struct req *t = realloc (rq, cap * sizeof *rq);
      if (t == NULL) {
        fprintf (stderr, "pallet-bench-sigv4: out of memory\n");
        return 1;
      }
      rq = t;
    }
    rq[n].line = strdup (line);
    if (rq[n].line == NULL || split (&rq[n]) == -1) {
      fprintf (stderr,
               "pallet-bench-sigv4: %s line %zu: expected 9 tab-separated "
               "fields: method host path query service region amz-date key secret\n",
               argv[1], n + 1);
      return 1;
    }
    n++;
  }
  free (line);
  fclose (fp);
  if (n == 0) {
    fprintf (stderr, "pallet-bench-sigv4: %s has no requests\n", argv[1]);
    return 1;
  }

  char (*sig)[65] = calloc (n, sizeof *sig);
  double *wall = calloc ((size_t) reps, sizeof *wall);
  double *cpu = calloc ((size_t) reps, sizeof *cpu);
  if (!sig || !wall || !cpu) {
    fprintf (stderr, "pallet-bench-sigv4: out of memory\n");
    return 1;
  }
  /* The signing key cache, as each AWS client keeps one: derived on the
   * first request, reused while the access key id, day, region and service hold. */
  struct Pallet_aws_sigv4_key *key = NULL;
  for (long k = 0; k < reps; k++) {
    double w0 = clock_s (CLOCK_MONOTONIC), c0 = clock_s (CLOCK_PROCESS_CPUTIME_ID);
    for (size_t i = 0; i < n; i++) {
      const char **f = rq[i].f;
      struct Pallet_aws_hdr hdr = { "host", f[1] };
      struct Pallet_aws_sigv4_in in = {
        .method = f[0],
        .path = f[2],
        .query = *f[3] ? f[3] : NULL,
        .headers = &hdr,
        .nheaders = 1,
        .payload_hash = EMPTY_SHA256,
        .access_key_id = f[7],
        .secret_access_key = f[8],
        .service = f[4],
        .region = f[5],
        .amz_date = f[6],
        .key_cache = &key,
      };
      struct Pallet_aws_sigv4_out out;
      if (Pallet_aws_sigv4_sign (&in, &out) != 0) {
        fprintf (stderr, "pallet-bench-sigv4: request %zu: signing failed\n", i + 1);
        return 1;
      }
      memcpy (sig[i], out.signature, sizeof sig[i]);
      Pallet_aws_sigv4_out_free (&out);
    }
    cpu[k] = clock_s (CLOCK_PROCESS_CPUTIME_ID) - c0;
    wall[k] = clock_s (CLOCK_MONOTONIC) - w0;
  }

  FILE *out = fopen (argv[2], "w");
  if (out == NULL) {
    perror (argv[2]);
    return 1;
  }
  for (size_t i = 0; i < n; i++)
    fprintf (out, "%s\n", sig[i]);
  if (fclose (out) != 0) {
    perror (argv[2]);
    return 1;
  }
  qsort (wall, (size_t) reps, sizeof *wall, cmp_double);
  qsort (cpu, (size_t) reps, sizeof *cpu, cmp_double);
  printf ("{\"requests\": %zu, \"reps\": %ld, \"wall_s_median\": %.6f, "
          "\"cpu_s_median\": %.6f, \"wall_s_min\": %.6f}\n",
          n, reps, wall[reps / 2], cpu[reps / 2], wall[0]);
  Pallet_aws_sigv4_key_free (key);
  for (size_t i = 0; i < n; i++)
    free (rq[i].line);
  free (rq);
  free (sig);
  free (wall);
  free (cpu);
  return 0;
}
