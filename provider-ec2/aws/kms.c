/* SPDX-License-Identifier: Apache-2.0 */
/* KMS (JSON 1.1 protocol, signing name "kms"): DescribeKey, which the
 * provider's validate uses to check that the target can use a key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aws-internal.h"

#define KMS PALLET_AWS_KMS

int
Pallet_aws_kms_describe_key (struct Pallet_aws_client *c, const char *key_id, json_t **metadata)
{
  if (metadata)
    *metadata = NULL;
  if (!key_id || !*key_id || strlen (key_id) > 2048) {
    Pallet_aws_set_error (c, PALLET_E_INVALID, 0, 0, KMS, "DescribeKey", "ValidationException",
                          NULL, NULL,
                          "AWS kms DescribeKey: the key id is %s; pass a key id, "
                          "key ARN, alias name or alias ARN (1..2048 characters)",
                          key_id && *key_id ? "too long" : "empty");
    return -1;
  }
  json_t *in = json_pack ("{s:s}", "KeyId", key_id);
  char *body = in ? json_dumps (in, JSON_COMPACT) : NULL;
  json_decref (in);
  if (!body) {
    Pallet_aws_set_error (c, PALLET_E_NOMEM, 0, 0, KMS, "DescribeKey", NULL, NULL, NULL,
                          "out of memory building an AWS kms DescribeKey request");
    return -1;
  }
  struct Pallet_aws_request req = {
    .svc = KMS,
    .action = "DescribeKey",
    .method = "POST",
    .path = "/",
    .content_type = "application/x-amz-json-1.1",
    .body = body,
    .body_len = strlen (body),
    .accept = "application/json",
    .target = "TrentService.DescribeKey",
  };
  struct Pallet_aws_resp resp = { 0 };
  int r = Pallet_aws_send (c, &req, &resp);
  free (body);
  if (r < 0)
    return -1;
  json_error_t jerr;
  json_t *j = json_loadb (resp.body.data ? resp.body.data : "", resp.body.len, 0, &jerr);
  json_t *md = json_object_get (j, "KeyMetadata");
  if (!json_is_object (md) || !json_is_string (json_object_get (md, "KeyId"))) {
    Pallet_aws_set_error (
        c, PALLET_E_FAILED, resp.status, 1, KMS, "DescribeKey", "MalformedResponse",
        j ? "no KeyMetadata.KeyId" : jerr.text, resp.request_id,
        "AWS kms DescribeKey in region %s returned a "
        "response without KeyMetadata.KeyId (request id %s); check that the "
        "endpoint %s is an AWS KMS endpoint",
        c->r.region, resp.request_id[0] ? resp.request_id : "unknown", c->r.endpoint[KMS]);
    json_decref (j);
    Pallet_aws_buf_free (&resp.body);
    return -1;
  }
  Pallet_aws_buf_free (&resp.body);
  if (metadata) {
    json_incref (md);
    *metadata = md;
  }
  json_decref (j);
  return 0;
}
