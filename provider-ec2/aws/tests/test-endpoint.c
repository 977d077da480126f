/* SPDX-License-Identifier: Apache-2.0 */
/* Integration: pallet_aws against tests/endpoint/pallet-endpoint.py.
 * Usage: test-endpoint PYTHON3 ENDPOINT_SCRIPT
 * Starts the endpoint (posix_spawn) with 2,500 synthetic instances, drives
 * every action, pagination, injected faults (throttling, 5xx, resets,
 * latency, bad checksums), bad credentials, and checks that a debug log
 * of the whole run holds no secret. */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <CUnit/Basic.h>
#include "aws-internal.h"

extern char **environ;

#define SRC_KEY       "AKIAPALLETSOURCE0001"
#define SRC_SECRET    "pallet/source/secret/key/0000000000000001"
#define TGT_KEY       "AKIAPALLETTARGET0002"
#define TGT_SECRET    "pallet/target/secret/key/0000000000000002"
#define PLANTED_TOKEN "PLANTEDsessionTOKENvalue0123456789"
#define NINST         2500

static const char *python, *script;
static pid_t ep_pid;
static char url[64];
static struct Pallet_aws_buf logbuf; /* every log line of the run */

static void
log_cb (void *opaque, int level, const char *msg)
{
  (void) opaque;
  Pallet_aws_buf_printf (&logbuf, "%d %s\n", level, msg);
  if (getenv ("PALLET_AWS_TEST_VERBOSE"))
    fprintf (stderr, "[%d] %s\n", level, msg);
}

static int
start_endpoint (void)
{
  int fds[2];
  if (pipe (fds) < 0)
    return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_adddup2 (&fa, fds[1], 1);
  posix_spawn_file_actions_addclose (&fa, fds[0]);
  char n[16];
  snprintf (n, sizeof n, "%d", NINST);
  char *argv[] = { (char *) python,
                   (char *) script,
                   "--port",
                   "0",
                   "--synthetic-instances",
                   n,
                   "--snapshot-delay",
                   "0",
                   "--volume-delay",
                   "0",
                   "--start-delay",
                   "0",
                   "--stop-delay",
                   "0",
                   "--fault-seed",
                   "42",
                   NULL };
  int r = posix_spawn (&ep_pid, python, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  close (fds[1]);
  if (r != 0) {
    fprintf (stderr, "cannot start %s %s: %s\n", python, script, strerror (r));
    close (fds[0]);
    return -1;
  }
  char line[128];
  size_t len = 0;
  while (len < sizeof line - 1) {
    ssize_t k = read (fds[0], line + len, 1);
    if (k <= 0)
      break;
    if (line[len] == '\n')
      break;
    len++;
  }
  line[len] = '\0';
  close (fds[0]);
  int port;
  if (sscanf (line, "PORT=%d", &port) != 1) {
    fprintf (stderr, "pallet-endpoint did not print its port (got \"%s\")\n", line);
    return -1;
  }
  snprintf (url, sizeof url, "http://127.0.0.1:%d", port);
  return 0;
}

static void
stop_endpoint (void)
{
  if (ep_pid > 0) {
    kill (ep_pid, SIGTERM);
    waitpid (ep_pid, NULL, 0);
    ep_pid = 0;
  }
}

/* The endpoint's /_pallet/ control API. */
static size_t
ctl_write (char *p, size_t s, size_t n, void *ud)
{
  Pallet_aws_buf_add (ud, p, s * n);
  return s * n;
}

static json_t *
control (const char *method, const char *path, const char *body)
{
  CURL *h = curl_easy_init ();
  struct Pallet_aws_buf out = { 0 };
  char u[512];
  snprintf (u, sizeof u, "%s%s", url, path);
  curl_easy_setopt (h, CURLOPT_URL, u);
  curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, method);
  if (body)
    curl_easy_setopt (h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, ctl_write);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, &out);
  CURLcode cc = curl_easy_perform (h);
  curl_easy_cleanup (h);
  json_t *j = cc == CURLE_OK && out.data ? json_loadb (out.data, out.len, 0, NULL) : NULL;
  Pallet_aws_buf_free (&out);
  return j;
}

static void
set_faults (const char *json_faults)
{
  char body[1024];
  snprintf (body, sizeof body, "{\"replace\": true, \"seed\": 42, \"faults\": %s}", json_faults);
  json_decref (control ("POST", "/_pallet/faults", body));
}

static int
calls (const char *action)
{
  char p[256];
  snprintf (p, sizeof p, "/_pallet/calls?action=%s", action);
  json_t *j = control ("GET", p, NULL);
  int n = (int) json_integer_value (json_object_get (j, "count"));
  json_decref (j);
  return n;
}

static void
reset_calls (void)
{
  json_decref (control ("POST", "/_pallet/calls/reset", "{}"));
}

static struct Pallet_aws_client *
client_with (const char *key, const char *secret, const char *token, int max_attempts,
             long timeout_ms)
{
  struct Pallet_aws_config cfg = {
    .access_key_id = key,
    .secret_access_key = secret,
    .session_token = token,
    .region = "us-east-1",
    .endpoint_url = url,
    .max_attempts = max_attempts,
    .backoff_base_ms = 5,
    .backoff_max_ms = 50,
    .timeout_ms = timeout_ms,
    .log = log_cb,
  };
  char *err = NULL;
  struct Pallet_aws_client *c = Pallet_aws_client_new (&cfg, &err);
  if (!c)
    fprintf (stderr, "client: %s\n", err);
  free (err);
  return c;
}

static struct Pallet_aws_client *
src (void)
{
  return client_with (SRC_KEY, SRC_SECRET, NULL, 5, 0);
}

struct seen {
  size_t n;
  json_t *ids; /* set: id -> true */
  json_t *first;
};

static int
seen_cb (void *opaque, json_t *item, const json_t *ctx)
{
  struct seen *s = opaque;
  (void) ctx;
  const char *id = Pallet_aws_json_str (item, "instanceId");
  if (!id)
    id = Pallet_aws_json_str (item, "snapshotId");
  if (!id)
    id = Pallet_aws_json_str (item, "volumeId");
  if (!id)
    id = Pallet_aws_json_str (item, "subnetId");
  if (!id)
    id = Pallet_aws_json_str (item, "vpcId");
  if (!id)
    id = Pallet_aws_json_str (item, "zoneName");
  if (!id)
    id = Pallet_aws_json_str (item, "regionName");
  if (!id)
    id = Pallet_aws_json_str (item, "instanceType");
  if (id)
    json_object_set_new (s->ids, id, json_true ());
  if (!s->first)
    s->first = json_incref (item);
  s->n++;
  return 0;
}

static void
seen_init (struct seen *s)
{
  s->n = 0;
  s->ids = json_object ();
  s->first = NULL;
}

static void
seen_free (struct seen *s)
{
  json_decref (s->ids);
  json_decref (s->first);
}

/* ---- tests ---- */

static void
test_sts (void)
{
  struct Pallet_aws_client *c = src ();
  CU_ASSERT_PTR_NOT_NULL_FATAL (c);
  json_t *id = NULL;
  CU_ASSERT_EQUAL_FATAL (Pallet_aws_sts_get_caller_identity (c, &id), 0);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (id, "Account"), "111111111111");
  CU_ASSERT_PTR_NOT_NULL (strstr (Pallet_aws_json_str (id, "Arn"), "arn:aws:iam::111111111111:"));
  CU_ASSERT_PTR_NOT_NULL (Pallet_aws_json_str (id, "UserId"));
  json_decref (id);
  Pallet_aws_client_free (c);
}

static void
test_pagination (void)
{
  struct Pallet_aws_client *c = src ();
  struct seen s;
  seen_init (&s);
  reset_calls ();
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_instances (c, NULL, seen_cb, &s), 0);
  CU_ASSERT_EQUAL (s.n, NINST);
  CU_ASSERT_EQUAL (json_object_size (s.ids), NINST); /* no duplicates */
  CU_ASSERT_EQUAL (calls ("DescribeInstances"), 3);  /* 1000 + 1000 + 500 */
  CU_ASSERT_PTR_NOT_NULL (json_object_get (s.first, "blockDeviceMapping"));
  seen_free (&s);

  /* Filters narrow it: group g3 is a tenth; state filter with two values. */
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  const char *g[] = { "g3" };
  const char *st[] = { "running", "stopped" };
  Pallet_aws_params_add_filter (p, "tag:group", g, 1);
  Pallet_aws_params_add_filter (p, "instance-state-name", st, 2);
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_instances (c, p, seen_cb, &s), 0);
  CU_ASSERT_EQUAL (s.n, NINST / 10);
  seen_free (&s);
  Pallet_aws_params_free (p);

  /* Volumes page by 500. */
  seen_init (&s);
  reset_calls ();
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_volumes (c, NULL, seen_cb, &s), 0);
  CU_ASSERT_EQUAL (s.n, NINST);
  CU_ASSERT_EQUAL (calls ("DescribeVolumes"), NINST / 500);
  seen_free (&s);
  Pallet_aws_client_free (c);
}

static void
test_describe_others (void)
{
  struct Pallet_aws_client *c = src ();
  struct seen s;
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_instance_types (c, NULL, seen_cb, &s), 0);
  CU_ASSERT_TRUE (s.n >= 10);
  CU_ASSERT_PTR_NOT_NULL (json_object_get (s.ids, "m5.large"));
  seen_free (&s);
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_subnets (c, NULL, seen_cb, &s), 0);
  CU_ASSERT_TRUE (s.n >= 1);
  seen_free (&s);
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_vpcs (c, NULL, seen_cb, &s), 0);
  CU_ASSERT_TRUE (s.n >= 1);
  seen_free (&s);
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_availability_zones (c, NULL, seen_cb, &s), 0);
  CU_ASSERT_PTR_NOT_NULL (json_object_get (s.ids, "us-east-1a"));
  seen_free (&s);
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_regions (c, NULL, seen_cb, &s), 0);
  CU_ASSERT_PTR_NOT_NULL (json_object_get (s.ids, "us-west-2"));
  seen_free (&s);

  /* The response-size cap: a clear error, not a truncated parse. */
  struct Pallet_aws_config small = {
    .access_key_id = SRC_KEY,
    .secret_access_key = SRC_SECRET,
    .region = "us-east-1",
    .endpoint_url = url,
    .max_response_bytes = 4096,
    .log = log_cb,
  };
  struct Pallet_aws_client *sc = Pallet_aws_client_new (&small, NULL);
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_instances (sc, NULL, seen_cb, &s), -1);
  CU_ASSERT_EQUAL (s.n, 0);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_last_error (sc)->code, "ResponseTooLarge");
  CU_ASSERT_PTR_NOT_NULL (strstr (Pallet_aws_errmsg (sc), "4096-byte limit"));
  CU_ASSERT_EQUAL (Pallet_aws_last_error (sc)->attempts, 1);
  seen_free (&s);
  Pallet_aws_client_free (sc);

  /* A missing instance: NotFound with the AWS code and a request id. */
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  Pallet_aws_params_add (p, "InstanceId.1", "i-0123456789abcdef0");
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_instances (c, p, seen_cb, &s), -1);
  const struct Pallet_aws_error *e = Pallet_aws_last_error (c);
  CU_ASSERT_EQUAL (e->status, PALLET_E_NOT_FOUND);
  CU_ASSERT_STRING_EQUAL (e->code, "InvalidInstanceID.NotFound");
  CU_ASSERT_TRUE (strlen (e->request_id) > 0);
  CU_ASSERT_PTR_NOT_NULL (strstr (e->text, e->request_id));
  CU_ASSERT_PTR_NOT_NULL (strstr (e->text, "DescribeInstances"));
  seen_free (&s);
  Pallet_aws_params_free (p);
  Pallet_aws_client_free (c);
}

/* First instance's id and root volume. */
static void
first_instance (struct Pallet_aws_client *c, char *iid, char *vid, char *az)
{
  struct seen s;
  seen_init (&s);
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  const char *n[] = { "synthetic-00001" };
  Pallet_aws_params_add_filter (p, "tag:Name", n, 1);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_instances (c, p, seen_cb, &s), 0);
  CU_ASSERT_EQUAL_FATAL (s.n, 1);
  snprintf (iid, 32, "%s", Pallet_aws_json_str (s.first, "instanceId"));
  json_t *bdm = json_array_get (json_object_get (s.first, "blockDeviceMapping"), 0);
  snprintf (vid, 32, "%s", Pallet_aws_json_str (json_object_get (bdm, "ebs"), "volumeId"));
  snprintf (az, 32, "%s",
            Pallet_aws_json_str (json_object_get (s.first, "placement"), "availabilityZone"));
  seen_free (&s);
  Pallet_aws_params_free (p);
}

static void
test_lifecycle (void)
{
  struct Pallet_aws_client *c = src ();
  struct Pallet_aws_client *t = client_with (TGT_KEY, TGT_SECRET, NULL, 5, 0);
  char iid[32], vid[32], az[32];
  first_instance (c, iid, vid, az);
  const char *ids[] = { iid };
  json_t *r = NULL;

  CU_ASSERT_EQUAL (Pallet_aws_ec2_stop_instances (c, ids, 1, 0, &r), 0);
  json_t *chg = json_array_get (json_object_get (r, "instancesSet"), 0);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (chg, "instanceId"), iid);
  CU_ASSERT_PTR_NOT_NULL (json_object_get (chg, "currentState"));
  json_decref (r);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_start_instances (c, ids, 1, &r), 0);
  json_decref (r);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_stop_instances (c, ids, 1, 1, NULL), 0);

  /* CreateSnapshot with tags at creation, found again by tag filter. */
  struct Pallet_aws_params *tags = Pallet_aws_params_new ();
  struct Pallet_aws_tag tg[] = { { "forklift.konveyor.io/vmID", iid }, { "Name", "pallet test" } };
  Pallet_aws_params_add_tag_spec (tags, "snapshot", tg, 2);
  CU_ASSERT_EQUAL_FATAL (
      Pallet_aws_ec2_create_snapshot (c, vid, "Forklift migration snapshot", tags, &r), 0);
  char sid[32];
  snprintf (sid, sizeof sid, "%s", Pallet_aws_json_str (r, "snapshotId"));
  CU_ASSERT_EQUAL (strncmp (sid, "snap-", 5), 0);
  json_decref (r);
  struct Pallet_aws_params *f = Pallet_aws_params_new ();
  const char *iv[] = { iid };
  Pallet_aws_params_add_filter (f, "tag:forklift.konveyor.io/vmID", iv, 1);
  struct seen s;
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_snapshots (c, f, seen_cb, &s), 0);
  CU_ASSERT_EQUAL (s.n, 1);
  CU_ASSERT_PTR_NOT_NULL (json_object_get (s.ids, sid));
  seen_free (&s);
  Pallet_aws_params_free (f);

  /* CreateSnapshots (multi-volume). */
  CU_ASSERT_EQUAL (Pallet_aws_ec2_create_snapshots (c, iid, "multi", tags, &r), 0);
  CU_ASSERT_TRUE (json_array_size (json_object_get (r, "snapshotSet")) >= 1);
  json_decref (r);
  Pallet_aws_params_free (tags);

  /* CreateTags. */
  struct Pallet_aws_tag more[] = { { "pallet", "yes" } };
  const char *res[] = { sid };
  CU_ASSERT_EQUAL (Pallet_aws_ec2_create_tags (c, res, 1, more, 1), 0);

  /* Share with the target account in both wire forms; the target sees it. */
  CU_ASSERT_EQUAL (Pallet_aws_ec2_modify_snapshot_permission (c, sid, "222222222222", 0, 0), 0);
  struct Pallet_aws_params *byid = Pallet_aws_params_new ();
  Pallet_aws_params_add (byid, "SnapshotId.1", sid);
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_snapshots (t, byid, seen_cb, &s), 0);
  CU_ASSERT_EQUAL (s.n, 1);
  seen_free (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_modify_snapshot_permission (c, sid, "222222222222", 1, 1), 0);
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_snapshots (t, byid, seen_cb, &s), -1);
  seen_free (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_modify_snapshot_permission (c, sid, "222222222222", 0, 1), 0);
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_snapshots (t, byid, seen_cb, &s), 0);
  CU_ASSERT_EQUAL (s.n, 1);
  seen_free (&s);

  /* CreateVolume in the target with a ClientToken: the same token twice is
   * one volume. */
  char token[37];
  Pallet_aws_uuid (token);
  CU_ASSERT_EQUAL_FATAL (Pallet_aws_ec2_create_volume (t, sid, az, "gp3", token, NULL, &r), 0);
  char nv[32];
  snprintf (nv, sizeof nv, "%s", Pallet_aws_json_str (r, "volumeId"));
  json_decref (r);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_create_volume (t, sid, az, "gp3", token, NULL, &r), 0);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (r, "volumeId"), nv);
  json_decref (r);

  /* CopySnapshot (in-region) with a ClientToken, idempotent too. */
  Pallet_aws_uuid (token);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_copy_snapshot (c, "us-east-1", sid, "copy", token, NULL, &r), 0);
  char cs[32];
  snprintf (cs, sizeof cs, "%s", Pallet_aws_json_str (r, "snapshotId"));
  json_decref (r);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_copy_snapshot (c, "us-east-1", sid, "copy", token, NULL, &r), 0);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (r, "snapshotId"), cs);
  json_decref (r);

  /* Cleanup; a second delete is NotFound. */
  CU_ASSERT_EQUAL (Pallet_aws_ec2_delete_volume (t, nv), 0);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_delete_snapshot (c, cs), 0);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_delete_snapshot (c, cs), -1);
  CU_ASSERT_EQUAL (Pallet_aws_last_error (c)->status, PALLET_E_NOT_FOUND);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_delete_volume (c, ""), -1);
  CU_ASSERT_EQUAL (Pallet_aws_last_error (c)->status, PALLET_E_INVALID);
  Pallet_aws_params_free (byid);
  Pallet_aws_client_free (t);
  Pallet_aws_client_free (c);
}

struct blocks {
  json_t *list;
};

static int
block_cb (void *opaque, json_t *item, const json_t *ctx)
{
  (void) ctx;
  json_array_append (((struct blocks *) opaque)->list, item);
  return 0;
}

static void
test_ebs (void)
{
  struct Pallet_aws_client *c = src ();
  char iid[32], vid[32], az[32];
  first_instance (c, iid, vid, az);
  /* Two snapshots: blocks 0 and 3 written, then block 3 changed. */
  char path[128], body[512];
  snprintf (path, sizeof path, "/_pallet/volumes/%s/write", vid);
  snprintf (body, sizeof body,
            "{\"writes\": [{\"offset\": 0, \"fill\": 171, \"length\": 524288},"
            "{\"offset\": %d, \"fill\": 7, \"length\": 4096}], \"snapshot\": true}",
            3 * 524288);
  json_t *r1 = control ("POST", path, body);
  snprintf (body, sizeof body,
            "{\"writes\": [{\"offset\": %d, \"fill\": 9, \"length\": 100}],"
            " \"snapshot\": true}",
            3 * 524288 + 10);
  json_t *r2 = control ("POST", path, body);
  const char *s1 = Pallet_aws_json_str (r1, "snapshotId");
  const char *s2 = Pallet_aws_json_str (r2, "snapshotId");
  CU_ASSERT_PTR_NOT_NULL_FATAL (s1);
  CU_ASSERT_PTR_NOT_NULL_FATAL (s2);

  struct blocks b = { json_array () };
  json_t *info = NULL;
  CU_ASSERT_EQUAL_FATAL (Pallet_aws_ebs_list_snapshot_blocks (c, s1, -1, block_cb, &b, &info), 0);
  CU_ASSERT_EQUAL (Pallet_aws_json_int (info, "BlockSize", 0), 524288);
  CU_ASSERT_TRUE (Pallet_aws_json_int (info, "VolumeSize", 0) >= 8);
  json_t *blk0 = NULL, *blk3 = NULL;
  size_t i;
  json_t *it;
  json_array_foreach (b.list, i, it) {
    if (Pallet_aws_json_int (it, "BlockIndex", -1) == 0)
      blk0 = it;
    if (Pallet_aws_json_int (it, "BlockIndex", -1) == 3)
      blk3 = it;
  }
  CU_ASSERT_PTR_NOT_NULL_FATAL (blk0);
  CU_ASSERT_PTR_NOT_NULL_FATAL (blk3);

  unsigned char *buf = malloc (524288);
  size_t len = 0;
  CU_ASSERT_EQUAL (Pallet_aws_ebs_get_snapshot_block (
                       c, s1, 0, Pallet_aws_json_str (blk0, "BlockToken"), buf, 524288, &len),
                   0);
  CU_ASSERT_EQUAL (len, 524288);
  CU_ASSERT_TRUE (buf[0] == 171 && buf[524287] == 171);
  CU_ASSERT_EQUAL (Pallet_aws_ebs_get_snapshot_block (
                       c, s1, 3, Pallet_aws_json_str (blk3, "BlockToken"), buf, 524288, &len),
                   0);
  CU_ASSERT_TRUE (buf[0] == 7 && buf[4095] == 7 && buf[4096] == 0);

  /* One bad checksum is retried; bad every time is a permanent error. */
  set_faults ("{\"ebs:GetSnapshotBlock\": {\"bad_checksum_count\": 1}}");
  reset_calls ();
  CU_ASSERT_EQUAL (Pallet_aws_ebs_get_snapshot_block (
                       c, s1, 0, Pallet_aws_json_str (blk0, "BlockToken"), buf, 524288, &len),
                   0);
  int gsb = calls ("GetSnapshotBlock");
  if (gsb != 2) {
    json_t *all = control ("GET", "/_pallet/calls?action=GetSnapshotBlock", NULL);
    char *dump = json_dumps (all, JSON_COMPACT);
    fprintf (stderr, "GetSnapshotBlock calls: %s\n", dump);
    free (dump);
    json_decref (all);
  }
  CU_ASSERT_EQUAL (gsb, 2);
  set_faults ("{\"ebs:GetSnapshotBlock\": {\"bad_checksum\": 1.0}}");
  CU_ASSERT_EQUAL (Pallet_aws_ebs_get_snapshot_block (
                       c, s1, 0, Pallet_aws_json_str (blk0, "BlockToken"), buf, 524288, &len),
                   -1);
  const struct Pallet_aws_error *e = Pallet_aws_last_error (c);
  CU_ASSERT_STRING_EQUAL (e->code, "ChecksumMismatch");
  CU_ASSERT_EQUAL (e->status, PALLET_E_FAILED);
  CU_ASSERT_EQUAL (e->attempts, 5);
  set_faults ("{}");

  /* A too-small buffer is a clear error, not an overflow (last: the
   * aborted transfer is logged by the server a little later). */
  CU_ASSERT_EQUAL (Pallet_aws_ebs_get_snapshot_block (
                       c, s1, 0, Pallet_aws_json_str (blk0, "BlockToken"), buf, 1000, &len),
                   -1);
  CU_ASSERT_PTR_NOT_NULL (strstr (Pallet_aws_errmsg (c), "limit"));

  /* Changed blocks between the two: block 3 only. */
  json_t *changed = json_array ();
  struct blocks cb2 = { changed };
  CU_ASSERT_EQUAL (Pallet_aws_ebs_list_changed_blocks (c, s1, s2, -1, block_cb, &cb2, NULL), 0);
  CU_ASSERT_EQUAL (json_array_size (changed), 1);
  CU_ASSERT_EQUAL (Pallet_aws_json_int (json_array_get (changed, 0), "BlockIndex", -1), 3);
  CU_ASSERT_PTR_NOT_NULL (Pallet_aws_json_str (json_array_get (changed, 0), "SecondBlockToken"));

  /* Unknown snapshot: NotFound from the JSON error. */
  CU_ASSERT_EQUAL (
      Pallet_aws_ebs_list_snapshot_blocks (c, "snap-0000000000000dead", -1, block_cb, &b, NULL),
      -1);
  CU_ASSERT_EQUAL (Pallet_aws_last_error (c)->status, PALLET_E_NOT_FOUND);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_last_error (c)->code, "ResourceNotFoundException");
  CU_ASSERT_EQUAL (Pallet_aws_ebs_list_snapshot_blocks (c, "../x", -1, block_cb, &b, NULL), -1);
  CU_ASSERT_EQUAL (Pallet_aws_last_error (c)->status, PALLET_E_INVALID);
  free (buf);
  json_decref (changed);
  json_decref (b.list);
  json_decref (info);
  json_decref (r1);
  json_decref (r2);
  Pallet_aws_client_free (c);
}

static void
test_throttling (void)
{
  /* Half the calls throttled: the listing still completes. */
  struct Pallet_aws_client *c = client_with (SRC_KEY, SRC_SECRET, NULL, 10, 0);
  set_faults ("{\"ec2:DescribeInstances\": {\"throttle\": 0.5}}");
  reset_calls ();
  struct seen s;
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_instances (c, NULL, seen_cb, &s), 0);
  CU_ASSERT_EQUAL (s.n, NINST);
  CU_ASSERT_EQUAL (json_object_size (s.ids), NINST);
  int total = calls ("DescribeInstances");
  printf ("\n  50%% throttling: %d DescribeInstances calls for 3 pages\n", total);
  CU_ASSERT_TRUE (total > 3);
  seen_free (&s);
  Pallet_aws_client_free (c);

  /* Always throttled: a clear error after max attempts, with the id. */
  c = client_with (SRC_KEY, SRC_SECRET, NULL, 4, 0);
  set_faults ("{\"ec2:DescribeVolumes\": {\"throttle\": 1.0}}");
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_volumes (c, NULL, seen_cb, &s), -1);
  const struct Pallet_aws_error *e = Pallet_aws_last_error (c);
  CU_ASSERT_STRING_EQUAL (e->code, "RequestLimitExceeded");
  CU_ASSERT_EQUAL (e->status, PALLET_E_TRANSIENT);
  CU_ASSERT_EQUAL (e->attempts, 4);
  CU_ASSERT_EQUAL (e->http_status, 503);
  CU_ASSERT_STRING_EQUAL (e->action, "DescribeVolumes");
  CU_ASSERT_STRING_EQUAL (e->service, "ec2");
  CU_ASSERT_STRING_EQUAL (e->region, "us-east-1");
  CU_ASSERT_TRUE (strlen (e->request_id) > 8);
  CU_ASSERT_PTR_NOT_NULL (strstr (e->text, e->request_id));
  CU_ASSERT_PTR_NOT_NULL (strstr (e->text, "after 4 attempts"));
  printf ("  exhausted: %s\n", e->text);
  CU_ASSERT_EQUAL (s.n, 0);
  seen_free (&s);

  /* STS and EBS throttling codes are retried too. */
  set_faults ("{\"sts:GetCallerIdentity\": {\"throttle_count\": 2}, "
              "\"ebs:ListSnapshotBlocks\": {\"throttle_count\": 2}}");
  json_t *id = NULL;
  CU_ASSERT_EQUAL (Pallet_aws_sts_get_caller_identity (c, &id), 0);
  json_decref (id);
  set_faults ("{}");
  Pallet_aws_client_free (c);
}

static void
test_5xx_resets_timeouts (void)
{
  struct Pallet_aws_client *c = client_with (SRC_KEY, SRC_SECRET, NULL, 4, 0);
  struct seen s;
  /* Two 500s then success. */
  set_faults ("{\"ec2:DescribeVpcs\": {\"error_count\": 2}}");
  reset_calls ();
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_vpcs (c, NULL, seen_cb, &s), 0);
  CU_ASSERT_EQUAL (calls ("DescribeVpcs"), 3);
  seen_free (&s);
  /* Always 500. */
  set_faults ("{\"ec2:DescribeVpcs\": {\"error\": 1.0}}");
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_vpcs (c, NULL, seen_cb, &s), -1);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_last_error (c)->code, "InternalError");
  CU_ASSERT_EQUAL (Pallet_aws_last_error (c)->http_status, 500);
  CU_ASSERT_EQUAL (Pallet_aws_last_error (c)->attempts, 4);
  seen_free (&s);

  /* Connection resets: two, then success; always, then NetworkError. */
  set_faults ("{\"ec2:DescribeSubnets\": {\"reset_count\": 2}}");
  reset_calls ();
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_subnets (c, NULL, seen_cb, &s), 0);
  CU_ASSERT_TRUE (s.n >= 1);
  seen_free (&s);
  set_faults ("{\"ec2:DescribeSubnets\": {\"reset\": 1.0}}");
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_subnets (c, NULL, seen_cb, &s), -1);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_last_error (c)->code, "NetworkError");
  CU_ASSERT_EQUAL (Pallet_aws_last_error (c)->status, PALLET_E_TRANSIENT);
  CU_ASSERT_EQUAL (Pallet_aws_last_error (c)->attempts, 4);
  printf ("\n  resets: %s\n", Pallet_aws_errmsg (c));
  seen_free (&s);
  Pallet_aws_client_free (c);

  /* Slow answers past the timeout. */
  c = client_with (SRC_KEY, SRC_SECRET, NULL, 2, 300);
  set_faults ("{\"ec2:DescribeRegions\": {\"latency_ms\": 1500}}");
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_regions (c, NULL, seen_cb, &s), -1);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_last_error (c)->code, "RequestTimeout");
  CU_ASSERT_EQUAL (Pallet_aws_last_error (c)->status, PALLET_E_TIMEOUT);
  CU_ASSERT_EQUAL (Pallet_aws_last_error (c)->attempts, 2);
  printf ("  timeout: %s\n", Pallet_aws_errmsg (c));
  seen_free (&s);
  set_faults ("{}");
  sleep (2); /* let the server finish the abandoned slow calls */
  Pallet_aws_client_free (c);
}

static struct timespec cancel_start;
/* Asks to cancel 300 ms after the call started. */
static int
cancel_cb (void *opaque)
{
  (void) opaque;
  struct timespec now;
  clock_gettime (CLOCK_MONOTONIC, &now);
  return (now.tv_sec - cancel_start.tv_sec) * 1000 + (now.tv_nsec - cancel_start.tv_nsec) / 1000000
         > 300;
}

static void
test_cancel (void)
{
  struct Pallet_aws_config cfg = {
    .access_key_id = SRC_KEY,
    .secret_access_key = SRC_SECRET,
    .region = "us-east-1",
    .endpoint_url = url,
    .max_attempts = 5,
    .backoff_base_ms = 60000,
    .backoff_max_ms = 60000,
    .log = log_cb,
    .cancelled = cancel_cb,
  };
  cfg.cancelled = NULL;
  struct Pallet_aws_client *c = Pallet_aws_client_new (&cfg, NULL);
  /* Installed later, as a provider does per op call. */
  Pallet_aws_client_set_callbacks (c, log_cb, NULL, cancel_cb, NULL);
  set_faults ("{\"ec2:DescribeVpcs\": {\"throttle\": 1.0}}");
  /* Cancelled while sleeping a (up to) 60 s backoff: returns soon. */
  struct seen s;
  seen_init (&s);
  reset_calls ();
  Pallet_aws_random ();
  time_t t0 = time (NULL);
  clock_gettime (CLOCK_MONOTONIC, &cancel_start);
  int r = Pallet_aws_ec2_describe_vpcs (c, NULL, seen_cb, &s);
  CU_ASSERT_EQUAL (r, -1);
  CU_ASSERT_EQUAL (Pallet_aws_last_error (c)->status, PALLET_E_CANCELLED);
  CU_ASSERT_TRUE (time (NULL) - t0 < 5);
  CU_ASSERT_TRUE (calls ("DescribeVpcs") >= 1);
  printf ("\n  cancel: %s\n", Pallet_aws_errmsg (c));
  seen_free (&s);
  set_faults ("{}");
  Pallet_aws_client_free (c);
}

static void
test_bad_credentials (void)
{
  /* A wrong secret: SignatureDoesNotMatch; an unknown key: per service. */
  struct Pallet_aws_client *c = client_with (SRC_KEY, "wrong-secret-PLANTED", NULL, 3, 0);
  struct seen s;
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_regions (c, NULL, seen_cb, &s), -1);
  const struct Pallet_aws_error *e = Pallet_aws_last_error (c);
  CU_ASSERT_EQUAL (e->status, PALLET_E_AUTH);
  CU_ASSERT_STRING_EQUAL (e->code, "SignatureDoesNotMatch");
  CU_ASSERT_EQUAL (e->attempts, 1); /* not retried */
  CU_ASSERT_PTR_NOT_NULL (strstr (e->text, SRC_KEY));
  CU_ASSERT_PTR_NOT_NULL (strstr (e->text, "us-east-1"));
  CU_ASSERT_PTR_NOT_NULL (strstr (e->text, "ec2"));
  CU_ASSERT_PTR_NOT_NULL (strstr (e->text, "check"));
  CU_ASSERT_PTR_NULL (strstr (e->text, "wrong-secret"));
  printf ("\n  bad secret: %s\n", e->text);
  seen_free (&s);
  Pallet_aws_client_free (c);

  c = client_with ("AKIAUNKNOWNKEY000000", "x", NULL, 3, 0);
  json_t *id = NULL;
  CU_ASSERT_EQUAL (Pallet_aws_sts_get_caller_identity (c, &id), -1);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_last_error (c)->code, "InvalidClientTokenId");
  CU_ASSERT_STRING_EQUAL (Pallet_aws_last_error (c)->service, "sts");
  CU_ASSERT_PTR_NOT_NULL (strstr (Pallet_aws_errmsg (c), "AKIAUNKNOWNKEY000000"));
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_vpcs (c, NULL, seen_cb, &s), -1);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_last_error (c)->code, "AuthFailure");
  CU_ASSERT_EQUAL (Pallet_aws_last_error (c)->status, PALLET_E_AUTH);
  seen_free (&s);
  struct blocks b = { json_array () };
  CU_ASSERT_EQUAL (Pallet_aws_ebs_list_snapshot_blocks (c, "snap-0123", -1, block_cb, &b, NULL),
                   -1);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_last_error (c)->code, "UnrecognizedClientException");
  CU_ASSERT_EQUAL (Pallet_aws_last_error (c)->status, PALLET_E_AUTH);
  CU_ASSERT_PTR_NOT_NULL (strstr (Pallet_aws_errmsg (c), "ebs"));
  json_decref (b.list);
  Pallet_aws_client_free (c);

  /* Nothing listening: a network error naming the endpoint. */
  struct Pallet_aws_config cfg = {
    .access_key_id = SRC_KEY,
    .secret_access_key = SRC_SECRET,
    .region = "us-east-1",
    .endpoint_url = "http://127.0.0.1:1",
    .max_attempts = 2,
    .backoff_base_ms = 1,
  };
  c = Pallet_aws_client_new (&cfg, NULL);
  CU_ASSERT_EQUAL (Pallet_aws_sts_get_caller_identity (c, &id), -1);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_last_error (c)->code, "NetworkError");
  CU_ASSERT_PTR_NOT_NULL (strstr (Pallet_aws_errmsg (c), "127.0.0.1:1"));
  Pallet_aws_client_free (c);
}

static void
test_clock_skew (void)
{
  /* An hour slow: refused once (RequestExpired), corrected from the
   * service's Date header, then fine for later calls too. */
  struct Pallet_aws_config cfg = {
    .access_key_id = SRC_KEY,
    .secret_access_key = SRC_SECRET,
    .region = "us-east-1",
    .endpoint_url = url,
    .clock_skew_s = -3600,
    .log = log_cb,
  };
  struct Pallet_aws_client *c = Pallet_aws_client_new (&cfg, NULL);
  size_t before = logbuf.len;
  reset_calls ();
  struct seen s;
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_availability_zones (c, NULL, seen_cb, &s), 0);
  CU_ASSERT_EQUAL (calls ("DescribeAvailabilityZones"), 2);
  CU_ASSERT_PTR_NOT_NULL (strstr (logbuf.data + before, "local clock is"));
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_availability_zones (c, NULL, seen_cb, &s), 0);
  CU_ASSERT_EQUAL (calls ("DescribeAvailabilityZones"), 3);
  json_t *id = NULL;
  CU_ASSERT_EQUAL (Pallet_aws_sts_get_caller_identity (c, &id), 0);
  json_decref (id);
  seen_free (&s);
  Pallet_aws_client_free (c);
}

static void
test_session_token_and_no_secrets_logged (void)
{
  /* A session token is sent (signed); the endpoint ignores its value. */
  struct Pallet_aws_client *c = client_with (SRC_KEY, SRC_SECRET, PLANTED_TOKEN, 3, 0);
  json_t *id = NULL;
  CU_ASSERT_EQUAL (Pallet_aws_sts_get_caller_identity (c, &id), 0);
  json_decref (id);
  struct seen s;
  seen_init (&s);
  CU_ASSERT_EQUAL (Pallet_aws_ec2_describe_availability_zones (c, NULL, seen_cb, &s), 0);
  seen_free (&s);
  Pallet_aws_client_free (c);

  const char *log = Pallet_aws_buf_str (&logbuf);
  CU_ASSERT_PTR_NOT_NULL_FATAL (log);
  /* The run did log at debug level: actions, attempts, request ids. */
  CU_ASSERT_PTR_NOT_NULL (strstr (log, "3 ec2 DescribeInstances attempt 1/"));
  CU_ASSERT_PTR_NOT_NULL (strstr (log, "request-id "));
  CU_ASSERT_PTR_NOT_NULL (strstr (log, "retrying in"));
  const char *planted[] = {
    SRC_SECRET,   TGT_SECRET,      PLANTED_TOKEN,          "wrong-secret-PLANTED",
    "Signature=", "Authorization", "X-Amz-Security-Token", "pallet/source/secret",
  };
  for (size_t i = 0; i < sizeof planted / sizeof *planted; i++) {
    if (strstr (log, planted[i]))
      fprintf (stderr, "secret-looking \"%s\" found in the debug log\n", planted[i]);
    CU_ASSERT_PTR_NULL (strstr (log, planted[i]));
  }
  printf ("\n  debug log: %zu bytes, no secrets\n", logbuf.len);
}

int
main (int argc, char **argv)
{
  if (argc < 3) {
    fprintf (stderr, "usage: %s PYTHON3 PALLET_ENDPOINT_SCRIPT\n", argv[0]);
    return 2;
  }
  python = argv[1];
  script = argv[2];
  if (access (script, R_OK) < 0) {
    fprintf (stderr, "FAIL: %s not found: the endpoint is needed for this test\n", script);
    return 1;
  }
  curl_global_init (CURL_GLOBAL_DEFAULT);
  if (start_endpoint () < 0) {
    stop_endpoint ();
    return 1;
  }
  CU_initialize_registry ();
  CU_pSuite s = CU_add_suite ("endpoint", NULL, NULL);
  CU_add_test (s, "STS GetCallerIdentity", test_sts);
  CU_add_test (s, "pagination over 2500 instances", test_pagination);
  CU_add_test (s, "other Describe actions", test_describe_others);
  CU_add_test (s, "power, snapshots, sharing, volumes, tags", test_lifecycle);
  CU_add_test (s, "EBS direct APIs", test_ebs);
  CU_add_test (s, "throttling", test_throttling);
  CU_add_test (s, "5xx, resets, timeouts", test_5xx_resets_timeouts);
  CU_add_test (s, "cancel during backoff", test_cancel);
  CU_add_test (s, "bad credentials", test_bad_credentials);
  CU_add_test (s, "clock skew corrected", test_clock_skew);
  CU_add_test (s, "session token; no secrets in the debug log",
               test_session_token_and_no_secrets_logged);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned fails = CU_get_number_of_failures ();
  CU_cleanup_registry ();
  stop_endpoint ();
  Pallet_aws_buf_free (&logbuf);
  curl_global_cleanup ();
  return fails ? 1 : 0;
}
