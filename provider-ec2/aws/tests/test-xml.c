/* SPDX-License-Identifier: Apache-2.0 */
/* XML -> JSON conversion, error envelopes, Query parameters, and the
 * bounded-memory guarantee on a 1,000-instance DescribeInstances page.
 * Usage: test-xml FIXTURE_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/xmlmemory.h>
#include <libxml/parser.h>
#include <CUnit/Basic.h>
#include "aws-internal.h"

static const char *fixtures;

/* ---- allocation accounting (libxml2 + jansson) ---- */
static size_t live, peak;
struct hdr {
  size_t size;
  size_t pad;
};

static void *
cnt_malloc (size_t n)
{
  struct hdr *h = malloc (sizeof *h + n);
  if (!h)
    return NULL;
  h->size = n;
  live += n;
  if (live > peak)
    peak = live;
  return h + 1;
}

static void
cnt_free (void *p)
{
  if (!p)
    return;
  struct hdr *h = (struct hdr *) p - 1;
  live -= h->size;
  free (h);
}

static void *
cnt_realloc (void *p, size_t n)
{
  if (!p)
    return cnt_malloc (n);
  struct hdr *h = (struct hdr *) p - 1;
  size_t old = h->size;
  struct hdr *q = realloc (h, sizeof *q + n);
  if (!q)
    return NULL;
  live = live - old + n;
  q->size = n;
  if (live > peak)
    peak = live;
  return q + 1;
}

static char *
cnt_strdup (const char *s)
{
  size_t l = strlen (s) + 1;
  char *d = cnt_malloc (l);
  if (d)
    memcpy (d, s, l);
  return d;
}

static char *
slurp (const char *name, size_t *len)
{
  char path[4096];
  snprintf (path, sizeof path, "%s/%s", fixtures, name);
  FILE *f = fopen (path, "rb");
  if (!f) {
    fprintf (stderr, "cannot open %s\n", path);
    return NULL;
  }
  struct Pallet_aws_buf b = { 0 };
  char tmp[8192];
  size_t n;
  Pallet_aws_buf_add (&b, "", 0);
  while ((n = fread (tmp, 1, sizeof tmp, f)) > 0)
    Pallet_aws_buf_add (&b, tmp, n);
  fclose (f);
  *len = b.len;
  return b.data;
}

struct collect {
  json_t *items;
  json_t *contexts;
  int stop_after;
};

static int
collect_cb (void *opaque, json_t *item, const json_t *ctx)
{
  struct collect *c = opaque;
  json_array_append (c->items, item);
  json_array_append_new (c->contexts, ctx ? json_deep_copy (ctx) : json_null ());
  return c->stop_after && (int) json_array_size (c->items) >= c->stop_after;
}

static void
test_describe_instances (void)
{
  size_t len;
  char *xml = slurp ("describe-instances.xml", &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL (xml);
  struct collect c = { json_array (), json_array (), 0 };
  json_t *rest = NULL;
  char root[64], err[256];
  int rc = Pallet_aws_xml_convert (xml, len, "reservationSet/item/instancesSet/item", collect_cb,
                                   &c, &rest, root, err, sizeof err, NULL);
  CU_ASSERT_EQUAL_FATAL (rc, 0);
  CU_ASSERT_STRING_EQUAL (root, "DescribeInstancesResponse");
  CU_ASSERT_EQUAL_FATAL (json_array_size (c.items), 3);
  json_t *i0 = json_array_get (c.items, 0);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (i0, "instanceId"), "i-1234567890abcdef0");
  CU_ASSERT_STRING_EQUAL (
      json_string_value (json_object_get (json_object_get (i0, "instanceState"), "name")),
      "running");
  CU_ASSERT_EQUAL (Pallet_aws_json_int (json_object_get (i0, "instanceState"), "code", -1), 16);
  CU_ASSERT_EQUAL (json_array_size (json_object_get (i0, "groupSet")), 1);
  json_t *bdm = json_object_get (i0, "blockDeviceMapping");
  CU_ASSERT_EQUAL (json_array_size (bdm), 2);
  CU_ASSERT_STRING_EQUAL (json_string_value (json_object_get (
                              json_object_get (json_array_get (bdm, 1), "ebs"), "volumeId")),
                          "vol-0fedcba0987654321");
  json_t *tags = json_object_get (i0, "tagSet");
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (json_array_get (tags, 0), "value"),
                          "Server_1 & <web>");
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (json_array_get (tags, 1), "value"), "");
  json_t *eni = json_array_get (json_object_get (i0, "networkInterfaceSet"), 0);
  CU_ASSERT_STRING_EQUAL (
      Pallet_aws_json_str (json_array_get (json_object_get (eni, "ipv6AddressesSet"), 0),
                           "ipv6Address"),
      "2001:db8:1234:1a2b::123");
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (i0, "reason"), "");
  /* context: the reservation, as read so far */
  json_t *ctx0 = json_array_get (c.contexts, 0);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (ctx0, "reservationId"), "r-1234567890abcdef0");
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (ctx0, "ownerId"), "123456789012");
  CU_ASSERT_PTR_NULL (json_object_get (ctx0, "instancesSet")
                          ? json_array_get (json_object_get (ctx0, "instancesSet"), 0)
                          : NULL);
  json_t *i1 = json_array_get (c.items, 1);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (i1, "description"), "cdata <kept> as text");
  CU_ASSERT_TRUE (json_is_array (json_object_get (i1, "tagSet")));
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (json_array_get (c.contexts, 2), "reservationId"),
                          "r-0aaaabbbbccccdddd");
  CU_ASSERT_TRUE (json_is_array (json_object_get (json_array_get (c.contexts, 1), "groupSet")));
  /* the rest: no items kept, the token and the request id are */
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (rest, "nextToken"),
                          "eyJ2IjoiMiIsImMiOiJleGFtcGxlIn0=");
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (rest, "requestId"),
                          "8f7724cf-496f-496e-8fe3-example");
  CU_ASSERT_EQUAL (json_array_size (json_object_get (rest, "reservationSet")), 0);
  json_decref (rest);

  /* Without an item path everything lands in rest. */
  CU_ASSERT_EQUAL (
      Pallet_aws_xml_convert (xml, len, NULL, NULL, NULL, &rest, NULL, err, sizeof err, NULL), 0);
  json_t *rs = json_object_get (rest, "reservationSet");
  CU_ASSERT_EQUAL (json_array_size (rs), 2);
  CU_ASSERT_EQUAL (json_array_size (json_object_get (json_array_get (rs, 1), "instancesSet")), 2);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (json_array_get (rs, 1), "requesterId"),
                          "940372691376");
  json_decref (rest);

  /* A callback can stop the walk. */
  struct collect c2 = { json_array (), json_array (), 2 };
  int stopped = 0;
  CU_ASSERT_EQUAL (Pallet_aws_xml_convert (xml, len, "reservationSet/item/instancesSet/item",
                                           collect_cb, &c2, &rest, NULL, err, sizeof err, &stopped),
                   -1);
  CU_ASSERT_EQUAL (stopped, 1);
  CU_ASSERT_EQUAL (json_array_size (c2.items), 2);
  CU_ASSERT_PTR_NULL (rest);
  json_decref (c2.items);
  json_decref (c2.contexts);
  json_decref (c.items);
  json_decref (c.contexts);
  free (xml);
}

static void
test_describe_volumes_and_sts (void)
{
  size_t len;
  char *xml = slurp ("describe-volumes.xml", &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL (xml);
  struct collect c = { json_array (), json_array (), 0 };
  char err[256];
  CU_ASSERT_EQUAL (Pallet_aws_xml_convert (xml, len, "volumeSet/item", collect_cb, &c, NULL, NULL,
                                           err, sizeof err, NULL),
                   0);
  CU_ASSERT_EQUAL_FATAL (json_array_size (c.items), 1);
  json_t *v = json_array_get (c.items, 0);
  CU_ASSERT_EQUAL (Pallet_aws_json_int (v, "size", 0), 80);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (v, "volumeType"), "gp3");
  CU_ASSERT_STRING_EQUAL (
      Pallet_aws_json_str (json_array_get (json_object_get (v, "attachmentSet"), 0), "device"),
      "/dev/sdh");
  /* context of a top-level list is the response's rest so far */
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (json_array_get (c.contexts, 0), "requestId"),
                          "59dbff89-35bd-4eac-99ed-be587EXAMPLE");
  json_decref (c.items);
  json_decref (c.contexts);
  free (xml);

  xml = slurp ("get-caller-identity.xml", &len);
  json_t *rest;
  CU_ASSERT_EQUAL (
      Pallet_aws_xml_convert (xml, len, NULL, NULL, NULL, &rest, NULL, err, sizeof err, NULL), 0);
  CU_ASSERT_STRING_EQUAL (
      Pallet_aws_json_str (json_object_get (rest, "GetCallerIdentityResult"), "Account"),
      "123456789012");
  json_decref (rest);
  free (xml);
}

static void
test_error_envelopes (void)
{
  size_t len;
  char *code, *msg, *rid;
  char *xml = slurp ("error-ec2.xml", &len);
  CU_ASSERT_EQUAL_FATAL (Pallet_aws_xml_error (xml, len, &code, &msg, &rid), 0);
  CU_ASSERT_STRING_EQUAL (code, "InvalidInstanceID.NotFound");
  CU_ASSERT_STRING_EQUAL (msg, "The instance ID 'i-1a2b3c4d' does not exist");
  CU_ASSERT_STRING_EQUAL (rid, "ea966190-f9aa-478e-9ede-example");
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code (code, 400), PALLET_E_NOT_FOUND);
  free (code);
  free (msg);
  free (rid);
  free (xml);

  xml = slurp ("error-sts.xml", &len);
  CU_ASSERT_EQUAL_FATAL (Pallet_aws_xml_error (xml, len, &code, &msg, &rid), 0);
  CU_ASSERT_STRING_EQUAL (code, "InvalidClientTokenId");
  CU_ASSERT_STRING_EQUAL (rid, "4c9a1f2e-1111-2222-3333-example");
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code (code, 403), PALLET_E_AUTH);
  free (code);
  free (msg);
  free (rid);
  free (xml);

  /* Two errors: the first one is reported. */
  const char *two =
      "<Response><Errors><Error><Code>A</Code><Message>a</Message></Error>"
      "<Error><Code>B</Code><Message>b</Message></Error></Errors><RequestID>r</RequestID></Response>";
  CU_ASSERT_EQUAL_FATAL (Pallet_aws_xml_error (two, strlen (two), &code, &msg, &rid), 0);
  CU_ASSERT_STRING_EQUAL (code, "A");
  free (code);
  free (msg);
  free (rid);

  const char *bad[] = {
    "",
    "<html><body>502 Bad Gateway</body></html>",
    "{\"message\":\"x\"}",
    "<Response><Errors><Error><Code>Trunc",
    "<Response><Errors></Errors></Response>",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CU_ASSERT_EQUAL (Pallet_aws_xml_error (bad[i], strlen (bad[i]), &code, &msg, &rid), -1);
    CU_ASSERT_PTR_NULL (code);
  }
}

static void
test_malformed (void)
{
  char err[256];
  json_t *rest = (json_t *) 1;
  const char *trunc = "<DescribeVolumesResponse><volumeSet><item><volumeId>v";
  CU_ASSERT_EQUAL (Pallet_aws_xml_convert (trunc, strlen (trunc), "volumeSet/item", NULL, NULL,
                                           &rest, NULL, err, sizeof err, NULL),
                   -1);
  CU_ASSERT_PTR_NULL (rest);
  CU_ASSERT_TRUE (strlen (err) > 0);
  /* 200 levels deep: refused, not a stack overflow. */
  struct Pallet_aws_buf b = { 0 };
  for (int i = 0; i < 200; i++)
    Pallet_aws_buf_puts (&b, "<a>");
  for (int i = 0; i < 200; i++)
    Pallet_aws_buf_puts (&b, "</a>");
  CU_ASSERT_EQUAL (
      Pallet_aws_xml_convert (b.data, b.len, NULL, NULL, NULL, &rest, NULL, err, sizeof err, NULL),
      -1);
  CU_ASSERT_PTR_NOT_NULL (strstr (err, "deep"));
  Pallet_aws_buf_free (&b);
  /* An external entity is not fetched or expanded. */
  const char *xxe =
      "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
      "<r><v>&x;</v></r>";
  if (Pallet_aws_xml_convert (xxe, strlen (xxe), NULL, NULL, NULL, &rest, NULL, err, sizeof err,
                              NULL)
      == 0) {
    const char *v = Pallet_aws_json_str (rest, "v");
    CU_ASSERT_TRUE (v == NULL || strstr (v, "root:") == NULL);
    json_decref (rest);
  }
}

/* A DescribeInstances page of n instances, each ~2 KiB like a real one. */
static char *
make_page (int n, size_t *len)
{
  size_t flen;
  char *fx = slurp ("describe-instances.xml", &flen);
  const char *s = strstr (fx, "<instancesSet>") + strlen ("<instancesSet>");
  const char *e = strstr (s, "</instancesSet>");
  struct Pallet_aws_buf b = { 0 };
  Pallet_aws_buf_puts (
      &b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeInstancesResponse "
          "xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>req-1</requestId>"
          "<reservationSet>");
  for (int i = 0; i < n; i++) {
    Pallet_aws_buf_printf (&b,
                           "<item><reservationId>r-%08d</reservationId><ownerId>1234</ownerId>"
                           "<groupSet/><instancesSet>",
                           i);
    /* First instance of the fixture, with a unique id. */
    const char *inst_end = strstr (s, "</item>\n            </instancesSet>");
    (void) e;
    const char *id = strstr (s, "i-1234567890abcdef0");
    Pallet_aws_buf_add (&b, s, (size_t) (id - s));
    Pallet_aws_buf_printf (&b, "i-%017d", i);
    id += strlen ("i-1234567890abcdef0");
    Pallet_aws_buf_add (&b, id, (size_t) (inst_end - id));
    Pallet_aws_buf_puts (&b, "</item></instancesSet></item>");
  }
  Pallet_aws_buf_puts (&b,
                       "</reservationSet><nextToken>tok</nextToken></DescribeInstancesResponse>");
  free (fx);
  *len = b.len;
  return b.data;
}

struct counter {
  int n;
  int ids_ok;
};

static int
count_cb (void *opaque, json_t *item, const json_t *ctx)
{
  struct counter *c = opaque;
  char want[32];
  snprintf (want, sizeof want, "i-%017d", c->n);
  const char *id = Pallet_aws_json_str (item, "instanceId");
  char rid[32];
  snprintf (rid, sizeof rid, "r-%08d", c->n);
  if (id && strcmp (id, want) == 0
      && json_array_size (json_object_get (item, "blockDeviceMapping")) == 2
      && strcmp (Pallet_aws_json_str (ctx, "reservationId"), rid) == 0)
    c->ids_ok++;
  c->n++;
  return 0;
}

static size_t
peak_for (const char *xml, size_t len, struct counter *c)
{
  json_t *rest = NULL;
  char err[256];
  size_t base = live;
  peak = live;
  int rc = Pallet_aws_xml_convert (xml, len, "reservationSet/item/instancesSet/item", count_cb, c,
                                   &rest, NULL, err, sizeof err, NULL);
  CU_ASSERT_EQUAL (rc, 0);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (rest, "nextToken"), "tok");
  json_decref (rest);
  CU_ASSERT_EQUAL (live, base); /* nothing leaked through the counters */
  return peak - base;
}

static void
test_thousand_instances_bounded (void)
{
  size_t l10, l1000;
  char *p10 = make_page (10, &l10);
  char *p1000 = make_page (1000, &l1000);
  struct counter c10 = { 0, 0 }, c1000 = { 0, 0 };
  size_t peak10 = peak_for (p10, l10, &c10);
  size_t peak1000 = peak_for (p1000, l1000, &c1000);
  printf ("\n  page of 10: %zu bytes XML, converter peak %zu bytes\n", l10, peak10);
  printf ("  page of 1000: %zu bytes XML, converter peak %zu bytes\n", l1000, peak1000);
  CU_ASSERT_EQUAL (c10.n, 10);
  CU_ASSERT_EQUAL (c10.ids_ok, 10);
  CU_ASSERT_EQUAL (c1000.n, 1000);
  CU_ASSERT_EQUAL (c1000.ids_ok, 1000);
  CU_ASSERT_TRUE (l1000 > 2000000); /* a realistic page: >2 MB */
  /* Bounded: 100x the instances, not 100x the memory. */
  CU_ASSERT_TRUE (peak1000 < 2 * peak10 + 64 * 1024);
  CU_ASSERT_TRUE (peak1000 < 512 * 1024);
  CU_ASSERT_TRUE (peak1000 < l1000 / 8);
  free (p10);
  free (p1000);
}

static void
test_params (void)
{
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  const char *vals[] = { "running", "stopped" };
  const char *one[] = { "i-1" };
  struct Pallet_aws_tag tags[] = { { "forklift.konveyor.io/vmID", "i-1" }, { "Name", "a b&c=d" } };
  CU_ASSERT_EQUAL (Pallet_aws_params_add_filter (p, "instance-state-name", vals, 2), 0);
  CU_ASSERT_EQUAL (Pallet_aws_params_add_filter (p, "tag:forklift.konveyor.io/vmID", one, 1), 0);
  CU_ASSERT_EQUAL (Pallet_aws_params_add_tag_spec (p, "snapshot", tags, 2), 0);
  CU_ASSERT_EQUAL (Pallet_aws_params_add_list (p, "InstanceId", one, 1), 0);
  CU_ASSERT_EQUAL (Pallet_aws_params_addf (p, "MaxResults", "%d", 5), 0);
  char *enc = Pallet_aws_params_encode (p);
  CU_ASSERT_STRING_EQUAL (
      enc,
      "Filter.1.Name=instance-state-name&Filter.1.Value.1=running&Filter.1.Value.2=stopped"
      "&Filter.2.Name=tag%3Aforklift.konveyor.io%2FvmID&Filter.2.Value.1=i-1"
      "&TagSpecification.1.ResourceType=snapshot"
      "&TagSpecification.1.Tag.1.Key=forklift.konveyor.io%2FvmID&TagSpecification.1.Tag.1.Value=i-1"
      "&TagSpecification.1.Tag.2.Key=Name&TagSpecification.1.Tag.2.Value=a%20b%26c%3Dd"
      "&InstanceId.1=i-1&MaxResults=5");
  free (enc);
  struct Pallet_aws_params *q = Pallet_aws_params_copy (p);
  CU_ASSERT_EQUAL (Pallet_aws_params_count (q), Pallet_aws_params_count (p));
  CU_ASSERT_EQUAL (Pallet_aws_params_add_filter (q, "x", one, 1), 0);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_params_get (q, "Filter.3.Name"), "x");
  CU_ASSERT_PTR_NULL (Pallet_aws_params_get (p, "Filter.3.Name"));
  CU_ASSERT_EQUAL (Pallet_aws_params_add (q, NULL, "x"), -1);
  Pallet_aws_params_free (q);
  Pallet_aws_params_free (p);
  char u[37], u2[37];
  Pallet_aws_uuid (u);
  Pallet_aws_uuid (u2);
  CU_ASSERT_EQUAL (strlen (u), 36);
  CU_ASSERT_EQUAL (u[14], '4');
  CU_ASSERT_STRING_NOT_EQUAL (u, u2);
}

int
main (int argc, char **argv)
{
  if (argc < 2) {
    fprintf (stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
    return 2;
  }
  fixtures = argv[1];
  /* Count every libxml2 and jansson allocation from here on. */
  xmlMemSetup (cnt_free, cnt_malloc, cnt_realloc, cnt_strdup);
  xmlInitParser ();
  json_set_alloc_funcs (cnt_malloc, cnt_free);
  CU_initialize_registry ();
  CU_pSuite s = CU_add_suite ("xml", NULL, NULL);
  CU_add_test (s, "DescribeInstances fixture", test_describe_instances);
  CU_add_test (s, "DescribeVolumes and STS", test_describe_volumes_and_sts);
  CU_add_test (s, "error envelopes", test_error_envelopes);
  CU_add_test (s, "malformed input", test_malformed);
  CU_add_test (s, "1000-instance page in bounded memory", test_thousand_instances_bounded);
  CU_add_test (s, "query parameters", test_params);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned fails = CU_get_number_of_failures ();
  CU_cleanup_registry ();
  xmlCleanupParser ();
  return fails ? 1 : 0;
}
