/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: EC2/STS XML responses -> JSON (Pallet_aws_xml_convert)
 * and the error envelope parser (Pallet_aws_xml_error), as the transport
 * feeds them a response body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "aws-internal.h"

static int
count_cb (void *opaque, json_t *item, const json_t *context)
{
  (void) context;
  size_t *n = opaque;
  /* Touch the item so a malformed tree shows up under ASan. */
  char *s = json_dumps (item, JSON_COMPACT);
  free (s);
  /* Stop after many items: exercises the early-stop path too. */
  return ++*n > 1000;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const char *const paths[] = {
    "reservationSet/item/instancesSet/item",
    "volumeSet/item",
    "snapshotSet/item",
    NULL,
  };
  /* The first byte picks the item path so one corpus covers them all. */
  const char *path = size ? paths[data[0] % 4] : NULL;
  const char *buf = (const char *) data + (size ? 1 : 0);
  size_t len = size ? size - 1 : 0;
  json_t *rest = NULL;
  char root[64], err[256];
  size_t n = 0;
  int stopped = 0;
  if (Pallet_aws_xml_convert (buf, len, path, path ? count_cb : NULL, &n, &rest, root, err,
                              sizeof err, &stopped)
      == 0) {
    char *s = json_dumps (rest, JSON_COMPACT);
    free (s);
  }
  json_decref (rest);
  char *code = NULL, *msg = NULL, *rid = NULL;
  Pallet_aws_xml_error (buf, len, &code, &msg, &rid);
  free (code);
  free (msg);
  free (rid);
  return 0;
}
