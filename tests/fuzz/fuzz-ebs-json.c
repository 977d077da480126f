/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the EBS direct JSON responses (ListSnapshotBlocks,
 * ListChangedBlocks pages) through ebs.c's real parsing and pagination.
 * The transport is replaced at link time: Pallet_aws_send below returns
 * the fuzz input's pages (split on NUL bytes) one per call, so ebs.c is
 * compiled unchanged and without http.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "aws-internal.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const char *cur, *end;
static int calls;

int
Pallet_aws_send (struct Pallet_aws_client *c, const struct Pallet_aws_request *req,
                 struct Pallet_aws_resp *resp)
{
  (void) c;
  (void) req;
  memset (resp, 0, sizeof *resp);
  /* Bound the pagination: a real endpoint cannot loop forever either, the
   * provider's own NextToken-loop check is what we want to hit. */
  if (++calls > 64 || cur >= end) {
    Pallet_aws_buf_puts (&resp->body, "{}");
    resp->status = 200;
    return 0;
  }
  const char *nul = memchr (cur, '\0', (size_t) (end - cur));
  size_t n = nul ? (size_t) (nul - cur) : (size_t) (end - cur);
  Pallet_aws_buf_add (&resp->body, cur, n);
  cur += n + (nul ? 1 : 0);
  resp->status = 200;
  return 0;
}

void
Pallet_aws_set_error (struct Pallet_aws_client *c, int status, long http_status, int attempts,
                      enum Pallet_aws_service svc, const char *action, const char *code,
                      const char *message, const char *request_id, const char *fmt, ...)
{
  (void) c;
  (void) status;
  (void) http_status;
  (void) attempts;
  (void) svc;
  (void) action;
  (void) code;
  (void) message;
  (void) request_id;
  /* Format the message as the real one does: catches bad varargs. */
  char buf[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
}

void
Pallet_aws_log (struct Pallet_aws_client *c, int level, const char *fmt, ...)
{
  (void) c;
  (void) level;
  (void) fmt;
}

/* Reads each block as the provider's transfer does. */
static int
block_cb (void *opaque, json_t *item, const json_t *context)
{
  (void) context;
  size_t *n = opaque;
  json_int_t idx = json_integer_value (json_object_get (item, "BlockIndex"));
  const char *tok = json_string_value (json_object_get (item, "BlockToken"));
  if (!tok)
    tok = json_string_value (json_object_get (item, "SecondBlockToken"));
  (void) idx;
  if (tok)
    (void) strlen (tok);
  ++*n;
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct Pallet_aws_client c;
  memset (&c, 0, sizeof c);
  c.r.region = (char *) "us-east-1";
  c.r.endpoint[PALLET_AWS_EBS] = (char *) "http://127.0.0.1:1";
  for (int which = 0; which < 2; which++) {
    cur = (const char *) data;
    end = cur + size;
    calls = 0;
    size_t n = 0;
    json_t *info = NULL;
    if (which == 0)
      Pallet_aws_ebs_list_snapshot_blocks (&c, "snap-0123456789abcdef0", -1, block_cb, &n, &info);
    else
      Pallet_aws_ebs_list_changed_blocks (&c, "snap-0123456789abcdef0", "snap-0123456789abcdef1", 0,
                                          block_cb, &n, &info);
    json_decref (info);
  }
  return 0;
}

const char *
Pallet_aws_service_name (enum Pallet_aws_service svc)
{
  return svc == PALLET_AWS_EBS ? "ebs" : svc == PALLET_AWS_STS ? "sts" : "ec2";
}
