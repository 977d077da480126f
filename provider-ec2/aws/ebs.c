/* SPDX-License-Identifier: Apache-2.0 */
/* EBS direct APIs (REST/JSON, signing name "ebs"):
 * ListSnapshotBlocks, ListChangedBlocks, GetSnapshotBlock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>
#include "aws-internal.h"

#define EBS             PALLET_AWS_EBS
#define EBS_MAX_RESULTS 10000

static int
bad_id (struct Pallet_aws_client *c, const char *action, const char *what, const char *v)
{
  if (v && *v && strspn (v, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen (v))
    return 0;
  Pallet_aws_set_error (c, PALLET_E_INVALID, 0, 0, EBS, action, "InvalidParameter", NULL, NULL,
                        "AWS ebs %s: %s \"%s\" is not a snapshot id (snap-...); pass a valid "
                        "one",
                        action, what, v ? v : "");
  return -1;
}

/* One listing (ListSnapshotBlocks / ListChangedBlocks), all pages. */
static int
list_blocks (struct Pallet_aws_client *c, const char *action, const char *path,
             const char *first_snapshot_id, int64_t start, const char *array_key,
             Pallet_aws_item_fn cb, void *opaque, json_t **info)
{
  char *token = NULL;
  int ret = -1;
  if (info)
    *info = NULL;
  for (int page = 1;; page++) {
    struct Pallet_aws_params *q = Pallet_aws_params_new ();
    int bad = q ? 0 : -1;
    if (first_snapshot_id)
      bad |= Pallet_aws_params_add (q, "firstSnapshotId", first_snapshot_id);
    bad |= Pallet_aws_params_addf (q, "maxResults", "%d", EBS_MAX_RESULTS);
    if (token)
      bad |= Pallet_aws_params_add (q, "pageToken", token);
    if (start >= 0)
      bad |= Pallet_aws_params_addf (q, "startingBlockIndex", "%lld", (long long) start);
    char *query = bad ? NULL : Pallet_aws_params_encode (q);
    Pallet_aws_params_free (q);
    if (!query) {
      Pallet_aws_set_error (c, PALLET_E_NOMEM, 0, 0, EBS, action, NULL, NULL, NULL,
                            "out of memory building an AWS ebs %s request", action);
      goto out;
    }
    struct Pallet_aws_request req = {
      .svc = EBS,
      .action = action,
      .method = "GET",
      .path = path,
      .query = query,
      .accept = "application/json",
    };
    struct Pallet_aws_resp resp = { 0 };
    int r = Pallet_aws_send (c, &req, &resp);
    free (query);
    if (r < 0)
      goto out;
    json_error_t jerr;
    json_t *j = json_loadb (resp.body.data ? resp.body.data : "", resp.body.len, 0, &jerr);
    json_t *arr = json_object_get (j, array_key);
    if (!json_is_object (j) || (arr && !json_is_array (arr))) {
      Pallet_aws_set_error (c, PALLET_E_FAILED, resp.status, 1, EBS, action, "MalformedResponse",
                            jerr.text, resp.request_id,
                            "AWS ebs %s in region %s returned a response that is not the "
                            "expected JSON (%s; request id %s); check that the endpoint %s "
                            "is an AWS EBS endpoint",
                            action, c->r.region, j ? "wrong shape" : jerr.text,
                            resp.request_id[0] ? resp.request_id : "unknown", c->r.endpoint[EBS]);
      json_decref (j);
      Pallet_aws_buf_free (&resp.body);
      goto out;
    }
    Pallet_aws_buf_free (&resp.body);
    if (info && !*info)
      *info = json_pack ("{s:O?, s:O?, s:O?}", "VolumeSize", json_object_get (j, "VolumeSize"),
                         "BlockSize", json_object_get (j, "BlockSize"), "ExpiryTime",
                         json_object_get (j, "ExpiryTime"));
    size_t i;
    json_t *item;
    json_array_foreach (arr, i, item) {
      if (cb && cb (opaque, item, j)) {
        json_decref (j);
        Pallet_aws_set_error (c, PALLET_E_CANCELLED, 200, 1, EBS, action, "Aborted",
                              "the item callback stopped the listing", NULL,
                              "AWS ebs %s: the listing was stopped by the caller", action);
        goto out;
      }
    }
    const char *next = json_string_value (json_object_get (j, "NextToken"));
    if (next && token && strcmp (next, token) == 0) {
      json_decref (j);
      Pallet_aws_set_error (c, PALLET_E_FAILED, 200, 1, EBS, action, "PaginationLoop", NULL, NULL,
                            "AWS ebs %s returned the same NextToken twice (page %d); "
                            "the endpoint's pagination is broken",
                            action, page);
      goto out;
    }
    free (token);
    token = next && *next ? strdup (next) : NULL;
    json_decref (j);
    if (!token)
      break;
  }
  ret = 0;
out:
  free (token);
  if (ret < 0 && info) {
    json_decref (*info);
    *info = NULL;
  }
  return ret;
}

int
Pallet_aws_ebs_list_snapshot_blocks (struct Pallet_aws_client *c, const char *snapshot_id,
                                     int64_t starting_block_index, Pallet_aws_item_fn cb,
                                     void *opaque, json_t **info)
{
  if (bad_id (c, "ListSnapshotBlocks", "the snapshot id", snapshot_id) < 0)
    return -1;
  char path[256];
  snprintf (path, sizeof path, "/snapshots/%s/blocks", snapshot_id);
  return list_blocks (c, "ListSnapshotBlocks", path, NULL, starting_block_index, "Blocks", cb,
                      opaque, info);
}

int
Pallet_aws_ebs_list_changed_blocks (struct Pallet_aws_client *c, const char *first_snapshot_id,
                                    const char *second_snapshot_id, int64_t starting_block_index,
                                    Pallet_aws_item_fn cb, void *opaque, json_t **info)
{
  if (bad_id (c, "ListChangedBlocks", "the second snapshot id", second_snapshot_id) < 0
      || (first_snapshot_id
          && bad_id (c, "ListChangedBlocks", "the first snapshot id", first_snapshot_id) < 0))
    return -1;
  char path[256];
  snprintf (path, sizeof path, "/snapshots/%s/changedblocks", second_snapshot_id);
  return list_blocks (c, "ListChangedBlocks", path, first_snapshot_id, starting_block_index,
                      "ChangedBlocks", cb, opaque, info);
}

/* Verifies x-amz-Checksum (base64 SHA-256 of the block). */
static int
check_block (struct Pallet_aws_client *c, struct Pallet_aws_resp *resp, void *opaque, char *code,
             size_t codelen, char *msg, size_t msglen)
{
  (void) c;
  (void) opaque;
  if (resp->checksum_alg[0] && strcasecmp (resp->checksum_alg, "SHA256") != 0) {
    snprintf (code, codelen, "UnsupportedChecksumAlgorithm");
    snprintf (msg, msglen, "the block's checksum algorithm is %s, not SHA256", resp->checksum_alg);
    return -1;
  }
  if (!resp->checksum[0]) {
    snprintf (code, codelen, "ChecksumMismatch");
    snprintf (msg, msglen, "the response has no x-amz-Checksum header");
    return 1;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  if (resp->sink_md ? !EVP_DigestFinal_ex (resp->sink_md, md, &mdlen)
                    : !EVP_Digest (resp->sink, resp->sink_len, md, &mdlen, EVP_sha256 (), NULL))
    mdlen = 0;
  EVP_EncodeBlock (b64, md, (int) mdlen);
  if (strcmp ((const char *) b64, resp->checksum) != 0) {
    snprintf (code, codelen, "ChecksumMismatch");
    snprintf (msg, msglen, "the block's SHA-256 is %s but x-amz-Checksum says %s (%zu bytes)",
              (const char *) b64, resp->checksum, resp->sink_len);
    return 1;
  }
  return 0;
}

int
Pallet_aws_ebs_get_snapshot_block (struct Pallet_aws_client *c, const char *snapshot_id,
                                   int64_t block_index, const char *block_token, void *buf,
                                   size_t bufsize, size_t *len)
{
  if (len)
    *len = 0;
  if (bad_id (c, "GetSnapshotBlock", "the snapshot id", snapshot_id) < 0)
    return -1;
  if (block_index < 0 || !block_token || !*block_token || !buf) {
    Pallet_aws_set_error (c, PALLET_E_INVALID, 0, 0, EBS, "GetSnapshotBlock", "InvalidParameter",
                          NULL, NULL,
                          "AWS ebs GetSnapshotBlock: a block index >= 0, a block token and a "
                          "buffer are needed; pass them from ListSnapshotBlocks");
    return -1;
  }
  char path[256];
  snprintf (path, sizeof path, "/snapshots/%s/blocks/%lld", snapshot_id, (long long) block_index);
  struct Pallet_aws_params *q = Pallet_aws_params_new ();
  char *query = q && Pallet_aws_params_add (q, "blockToken", block_token) == 0
                    ? Pallet_aws_params_encode (q)
                    : NULL;
  Pallet_aws_params_free (q);
  if (!query) {
    Pallet_aws_set_error (c, PALLET_E_NOMEM, 0, 0, EBS, "GetSnapshotBlock", NULL, NULL, NULL,
                          "out of memory building an AWS ebs GetSnapshotBlock request");
    return -1;
  }
  struct Pallet_aws_request req = {
    .svc = EBS,
    .action = "GetSnapshotBlock",
    .method = "GET",
    .path = path,
    .query = query,
    .sink = buf,
    .sink_size = bufsize,
    .sink_sha256 = true,
    .check = check_block,
  };
  struct Pallet_aws_resp resp = { 0 };
  int r = Pallet_aws_send (c, &req, &resp);
  free (query);
  if (r == 0 && len)
    *len = resp.sink_len;
  Pallet_aws_buf_free (&resp.body);
  return r;
}
