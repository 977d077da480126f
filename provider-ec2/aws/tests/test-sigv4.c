/* SPDX-License-Identifier: Apache-2.0 */
/* Runs every SigV4 test vector directory (aws-c-auth layout: context.json,
 * request.txt, {header,query}-{canonical-request,string-to-sign,signature,
 * signed-request}.txt) through Pallet_aws_sigv4_sign.
 * Usage: test-sigv4 VECTOR_DIR [EXPECTED_COUNT] */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include "aws-internal.h"

static const char *vector_dir;
static int expected_count = 38;
static struct Pallet_aws_sigv4_key *shared_key; /* the vectors' key cache */

static char *
slurp (const char *dir, const char *name, size_t *len)
{
  char path[4096];
  snprintf (path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen (path, "rb");
  if (!f)
    return NULL;
  struct Pallet_aws_buf b = { 0 };
  char tmp[4096];
  size_t n;
  Pallet_aws_buf_add (&b, "", 0);
  while ((n = fread (tmp, 1, sizeof tmp, f)) > 0)
    Pallet_aws_buf_add (&b, tmp, n);
  fclose (f);
  if (len)
    *len = b.len;
  return b.data;
}

struct rawhdr {
  char *name;
  struct Pallet_aws_buf value;
};

struct req {
  char *method, *path, *query, *line;
  struct rawhdr h[32];
  size_t nh;
  char *body;
  size_t body_len;
};

static void
req_free (struct req *r)
{
  free (r->method);
  free (r->path);
  free (r->query);
  free (r->line);
  for (size_t i = 0; i < r->nh; i++) {
    free (r->h[i].name);
    Pallet_aws_buf_free (&r->h[i].value);
  }
  free (r->body);
}

/* "METHOD PATH[?QUERY] HTTP/1.1\nName:value\n  folded\n...\n\nbody" */
static int
parse_req (char *text, size_t len, struct req *r)
{
  memset (r, 0, sizeof *r);
  char *end = text + len;
  char *nl = memchr (text, '\n', len);
  if (!nl)
    return -1;
  r->line = strndup (text, (size_t) (nl - text));
  char *sp = strchr (r->line, ' ');
  char *http = strstr (r->line, " HTTP/");
  if (!sp || !http || http < sp)
    return -1;
  r->method = strndup (r->line, (size_t) (sp - r->line));
  char *target = strndup (sp + 1, (size_t) (http - sp - 1));
  char *q = strchr (target, '?');
  if (q) {
    r->query = strdup (q + 1);
    *q = '\0';
  }
  r->path = target;
  char *p = nl + 1;
  while (p < end) {
    char *e = memchr (p, '\n', (size_t) (end - p));
    size_t l = e ? (size_t) (e - p) : (size_t) (end - p);
    if (l == 0) {
      p = e + 1;
      break;
    }
    if ((*p == ' ' || *p == '\t') && r->nh > 0) {
      Pallet_aws_buf_add (&r->h[r->nh - 1].value, "\n", 1);
      Pallet_aws_buf_add (&r->h[r->nh - 1].value, p, l);
    }
    else {
      char *colon = memchr (p, ':', l);
      if (!colon || r->nh >= 32)
        return -1;
      r->h[r->nh].name = strndup (p, (size_t) (colon - p));
      Pallet_aws_buf_add (&r->h[r->nh].value, "", 0);
      Pallet_aws_buf_add (&r->h[r->nh].value, colon + 1, l - (size_t) (colon - p) - 1);
      r->nh++;
    }
    p = e ? e + 1 : end;
  }
  r->body_len = p < end ? (size_t) (end - p) : 0;
  r->body = strndup (p < end ? p : "", r->body_len);
  return 0;
}

static int
check_eq (const char *dir, const char *file, const char *got)
{
  char *want = slurp (dir, file, NULL);
  int ok = want && got && strcmp (want, got) == 0;
  if (!ok)
    fprintf (stderr, "  %s/%s differs:\n--- want\n%s\n--- got\n%s\n", dir, file,
             want ? want : "(missing)", got ? got : "(null)");
  free (want);
  return ok;
}

/* One vector directory, both signing modes.  Returns 1 if all match. */
static int
run_case (const char *dir)
{
  size_t len;
  char *ctx_text = slurp (dir, "context.json", NULL);
  char *req_text = slurp (dir, "request.txt", &len);
  json_t *ctx = ctx_text ? json_loads (ctx_text, 0, NULL) : NULL;
  struct req r;
  int ok = 0;
  memset (&r, 0, sizeof r);
  if (!ctx || !req_text || parse_req (req_text, len, &r) < 0) {
    fprintf (stderr, "  %s: cannot read context.json/request.txt\n", dir);
    goto out;
  }
  json_t *cred = json_object_get (ctx, "credentials");
  char amz_date[17] = "";
  const char *ts = json_string_value (json_object_get (ctx, "timestamp"));
  for (size_t i = 0, j = 0; ts && ts[i] && j < 16; i++)
    if (ts[i] != '-' && ts[i] != ':')
      amz_date[j++] = ts[i];
  struct Pallet_aws_hdr hdrs[32];
  for (size_t i = 0; i < r.nh; i++)
    hdrs[i] = (struct Pallet_aws_hdr){ r.h[i].name, r.h[i].value.data };
  char payload[65];
  Pallet_aws_sha256_hex (r.body, r.body_len, payload);

  struct Pallet_aws_sigv4_in in = {
    .method = r.method,
    .path = r.path,
    .query = r.query,
    .headers = hdrs,
    .nheaders = r.nh,
    .payload_hash = payload,
    .access_key_id = json_string_value (json_object_get (cred, "access_key_id")),
    .secret_access_key = json_string_value (json_object_get (cred, "secret_access_key")),
    .session_token = json_string_value (json_object_get (cred, "token")),
    .region = json_string_value (json_object_get (ctx, "region")),
    .service = json_string_value (json_object_get (ctx, "service")),
    .amz_date = amz_date,
    .normalize_path = json_is_true (json_object_get (ctx, "normalize")),
    .omit_session_token = json_is_true (json_object_get (ctx, "omit_session_token")),
    .add_content_sha256 = json_is_true (json_object_get (ctx, "sign_body")),
    .expires = (long) json_integer_value (json_object_get (ctx, "expiration_in_seconds")),
  };

  ok = 1;
  for (int mode = 0; mode < 2; mode++) {
    const char *pre = mode ? "query" : "header";
    char f[64];
    struct Pallet_aws_sigv4_out out;
    in.presign = mode == 1;
    if (Pallet_aws_sigv4_sign (&in, &out) < 0) {
      fprintf (stderr, "  %s: %s signing failed\n", dir, pre);
      ok = 0;
      continue;
    }
    /* The same signature through the key cache, shared by every vector: a
     * hit when day, region, service and secret repeat, a new key if not. */
    struct Pallet_aws_sigv4_in cin = in;
    struct Pallet_aws_sigv4_out cout;
    cin.key_cache = &shared_key;
    if (Pallet_aws_sigv4_sign (&cin, &cout) < 0 || strcmp (cout.signature, out.signature)) {
      fprintf (stderr, "  %s: %s signing with the key cache gave another signature\n", dir, pre);
      ok = 0;
    }
    Pallet_aws_sigv4_out_free (&cout);
    snprintf (f, sizeof f, "%s-canonical-request.txt", pre);
    ok &= check_eq (dir, f, out.canonical_request);
    snprintf (f, sizeof f, "%s-string-to-sign.txt", pre);
    ok &= check_eq (dir, f, out.string_to_sign);
    snprintf (f, sizeof f, "%s-signature.txt", pre);
    ok &= check_eq (dir, f, out.signature);

    /* The signed request, as the vectors print it. */
    struct Pallet_aws_buf s = { 0 };
    if (mode == 0) {
      Pallet_aws_buf_printf (&s, "%s\n", r.line);
      for (size_t i = 0; i < r.nh; i++)
        Pallet_aws_buf_printf (&s, "%s:%s\n", r.h[i].name, r.h[i].value.data);
      if (in.session_token)
        Pallet_aws_buf_printf (&s, "X-Amz-Security-Token:%s\n", in.session_token);
      Pallet_aws_buf_printf (&s, "X-Amz-Date:%s\n", amz_date);
      if (in.add_content_sha256)
        Pallet_aws_buf_printf (&s, "x-amz-content-sha256:%s\n", payload);
      Pallet_aws_buf_printf (&s, "Authorization:%s\n", out.authorization);
    }
    else {
      Pallet_aws_buf_printf (&s, "%s %s%s%s%s%s HTTP/1.1\n", r.method, r.path, "?",
                             r.query ? r.query : "", r.query ? "&" : "", out.presign_query);
      for (size_t i = 0; i < r.nh; i++)
        Pallet_aws_buf_printf (&s, "%s:%s\n", r.h[i].name, r.h[i].value.data);
    }
    Pallet_aws_buf_printf (&s, "\n");
    Pallet_aws_buf_add (&s, r.body, r.body_len);
    snprintf (f, sizeof f, "%s-signed-request.txt", pre);
    ok &= check_eq (dir, f, Pallet_aws_buf_str (&s));
    Pallet_aws_buf_free (&s);
    Pallet_aws_sigv4_out_free (&out);
  }

out:
  req_free (&r);
  json_decref (ctx);
  free (ctx_text);
  free (req_text);
  return ok;
}

static int
name_cmp (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Collects every directory under dir holding a context.json (a case),
 * at any depth: vector sets nest cases in groups (e.g. post-sts-token/). */
static void
find_cases (const char *dir, const char *rel, char **names, size_t *n, int depth)
{
  DIR *d = opendir (dir);
  if (!d || depth > 4) {
    if (d)
      closedir (d);
    return;
  }
  struct dirent *e;
  while ((e = readdir (d)) && *n < 256) {
    if (e->d_name[0] == '.')
      continue;
    char sub[4096], subrel[1024], ctx[4200];
    snprintf (sub, sizeof sub, "%s/%s", dir, e->d_name);
    snprintf (subrel, sizeof subrel, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
    snprintf (ctx, sizeof ctx, "%s/context.json", sub);
    if (access (ctx, R_OK) == 0)
      names[(*n)++] = strdup (subrel);
    else
      find_cases (sub, subrel, names, n, depth + 1);
  }
  closedir (d);
}

static void
test_all_vectors (void)
{
  char *names[256];
  size_t n = 0;
  find_cases (vector_dir, "", names, &n, 0);
  CU_ASSERT_TRUE_FATAL (n > 0);
  qsort (names, n, sizeof *names, name_cmp);
  int passed = 0, failed = 0;
  for (size_t i = 0; i < n; i++) {
    char dir[4096];
    snprintf (dir, sizeof dir, "%s/%s", vector_dir, names[i]);
    if (run_case (dir))
      passed++;
    else {
      failed++;
      fprintf (stderr, "FAIL %s\n", names[i]);
    }
    free (names[i]);
  }
  Pallet_aws_sigv4_key_free (shared_key);
  shared_key = NULL;
  printf ("\nsigv4 vectors: %d passed, %d failed\n", passed, failed);
  CU_ASSERT_EQUAL (failed, 0);
  CU_ASSERT_EQUAL (passed, expected_count);
}

static void
test_canonical_bits (void)
{
  char *s = Pallet_aws_sigv4_canonical_query ("b=2&a=%7e&a=1&c");
  CU_ASSERT_STRING_EQUAL (s, "a=1&a=~&b=2&c=");
  free (s);
  s = Pallet_aws_sigv4_canonical_uri ("/a/./b/../c//d/", true);
  CU_ASSERT_STRING_EQUAL (s, "/a/c/d/");
  free (s);
  s = Pallet_aws_sigv4_canonical_uri ("", true);
  CU_ASSERT_STRING_EQUAL (s, "/");
  free (s);
  /* A session token is signed in header mode; a bad date is refused. */
  struct Pallet_aws_hdr h[] = { { "Host", "ec2.us-east-1.amazonaws.com" } };
  struct Pallet_aws_sigv4_in in = {
    .method = "POST",
    .path = "/",
    .headers = h,
    .nheaders = 1,
    .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    .access_key_id = "AKID",
    .secret_access_key = "SECRET",
    .session_token = "TOKEN",
    .region = "us-east-1",
    .service = "ec2",
    .amz_date = "20150830T123600Z",
    .normalize_path = true,
  };
  struct Pallet_aws_sigv4_out out;
  CU_ASSERT_EQUAL_FATAL (Pallet_aws_sigv4_sign (&in, &out), 0);
  CU_ASSERT_PTR_NOT_NULL (strstr (out.canonical_request, "x-amz-security-token:TOKEN\n"));
  CU_ASSERT_PTR_NOT_NULL (
      strstr (out.authorization, "SignedHeaders=host;x-amz-date;x-amz-security-token,"));
  CU_ASSERT_PTR_NULL (strstr (out.authorization, "SECRET"));
  Pallet_aws_sigv4_out_free (&out);
  in.amz_date = "2015";
  CU_ASSERT_EQUAL (Pallet_aws_sigv4_sign (&in, &out), -1);
}

/* A cached key is used only for its own access key id, day, region and
 * service; new credentials (a new key id) derive a new one. */
static void
test_key_cache (void)
{
  struct Pallet_aws_hdr h[] = { { "Host", "ebs.us-east-1.amazonaws.com" } };
  struct Pallet_aws_sigv4_in in = {
    .method = "GET",
    .path = "/snapshots/snap-1/blocks/0",
    .query = "blockToken=T",
    .headers = h,
    .nheaders = 1,
    .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    .region = "us-east-1",
    .service = "ebs",
    .normalize_path = true,
  };
  struct {
    const char *key_id, *secret, *region, *service, *date;
  } v[] = {
    { "AKID", "SECRET", "us-east-1", "ebs", "20150830T123600Z" },
    { "AKID", "SECRET", "us-east-1", "ebs", "20150830T123600Z" },   /* a hit, same second */
    { "AKID", "SECRET", "us-east-1", "ebs", "20150830T235959Z" },   /* same day: a hit */
    { "ASIANEW", "OTHER", "us-east-1", "ebs", "20150830T235959Z" }, /* refreshed keys */
    { "ASIANEW", "OTHER", "eu-west-1", "ebs", "20150830T235959Z" },
    { "ASIANEW", "OTHER", "eu-west-1", "ec2", "20150830T235959Z" },
    { "ASIANEW", "OTHER", "eu-west-1", "ec2", "20150831T000000Z" },
    { "AKID", "SECRET", "us-east-1", "ebs", "20150830T123600Z" },
  };
  struct Pallet_aws_sigv4_key *cache = NULL, *prev = NULL;
  char last[65] = "";
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    in.access_key_id = v[i].key_id;
    in.secret_access_key = v[i].secret;
    in.region = v[i].region;
    in.service = v[i].service;
    in.amz_date = v[i].date;
    struct Pallet_aws_sigv4_out plain, cached;
    in.key_cache = NULL;
    CU_ASSERT_EQUAL_FATAL (Pallet_aws_sigv4_sign (&in, &plain), 0);
    in.key_cache = &cache;
    CU_ASSERT_EQUAL_FATAL (Pallet_aws_sigv4_sign (&in, &cached), 0);
    CU_ASSERT_PTR_NOT_NULL (cache);
    CU_ASSERT_STRING_EQUAL (plain.signature, cached.signature);
    /* A hit reuses the key; anything else replaces it. */
    bool hit = i > 0 && strcmp (v[i].key_id, v[i - 1].key_id) == 0
               && strcmp (v[i].region, v[i - 1].region) == 0
               && strcmp (v[i].service, v[i - 1].service) == 0
               && strncmp (v[i].date, v[i - 1].date, 8) == 0;
    if (i > 0)
      CU_ASSERT_EQUAL (cache == prev, hit);
    if (i == 1) /* the same request in the same second: the same signature */
      CU_ASSERT_STRING_EQUAL (cached.signature, last);
    prev = cache;
    memcpy (last, cached.signature, sizeof last);
    Pallet_aws_sigv4_out_free (&plain);
    Pallet_aws_sigv4_out_free (&cached);
  }
  Pallet_aws_sigv4_key_free (cache);
}

/* A one-pair query already canonical is copied as it is; anything else is
 * decoded and encoded again.  Both ways must agree: "q&" takes the general
 * path (the empty pair is dropped) and is the oracle. */
static void
test_query_passthrough (void)
{
  static const char *q[] = {
    "blockToken=nwgXUWrt%2FQTTem%2FhA8bdjo5ffPq8YxT2J3eOpfzIIe6fCBdRau39BNN6b%2BEDxt2Ojl98%3D",
    "a=b",
    "a=",
    "a=%7e",      /* lower case hex, and an unreserved byte escaped */
    "a=%7E",      /* '~' escaped */
    "a=%41",      /* 'A' escaped */
    "a=%2b",      /* lower case */
    "a=%2B",      /* canonical */
    "a=%",        /* a bare '%' at the end */
    "a=%4",       /* a short escape at the end */
    "a=%4G",      /* not hex */
    "a=b=c",      /* a second '=' */
    "a%3D=b",     /* '=' escaped in the key */
    "=b",         /* an empty key */
    "a",          /* no '=' */
    "a=b c",      /* a space */
    "a=b+c",      /* '+' */
    "a=\xc3\xa9", /* UTF-8 */
    "k=0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.~%20",
    "k=0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.~ ",
  };
  for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
    char general[512];
    snprintf (general, sizeof general, "%s&", q[i]);
    char *a = Pallet_aws_sigv4_canonical_query (q[i]);
    char *b = Pallet_aws_sigv4_canonical_query (general);
    CU_ASSERT_PTR_NOT_NULL_FATAL (a);
    CU_ASSERT_PTR_NOT_NULL_FATAL (b);
    if (strcmp (a, b) != 0)
      fprintf (stderr, "query %s: %s, general path %s\n", q[i], a, b);
    CU_ASSERT_STRING_EQUAL (a, b);
    free (a);
    free (b);
  }
  char *s = Pallet_aws_sigv4_canonical_query ("a=%7e%41%2b");
  CU_ASSERT_STRING_EQUAL (s, "a=~A%2B");
  free (s);
}

int
main (int argc, char **argv)
{
  if (argc < 2) {
    fprintf (stderr, "usage: %s VECTOR_DIR [EXPECTED_COUNT]\n", argv[0]);
    return 2;
  }
  vector_dir = argv[1];
  if (argc > 2)
    expected_count = atoi (argv[2]);
  CU_initialize_registry ();
  CU_pSuite s = CU_add_suite ("sigv4", NULL, NULL);
  CU_add_test (s, "all vectors", test_all_vectors);
  CU_add_test (s, "canonical pieces", test_canonical_bits);
  CU_add_test (s, "signing key cache", test_key_cache);
  CU_add_test (s, "canonical query pass-through", test_query_passthrough);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned fails = CU_get_number_of_failures ();
  CU_cleanup_registry ();
  return fails ? 1 : 0;
}
