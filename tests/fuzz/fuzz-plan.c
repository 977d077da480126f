/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: plan YAML/JSON reading (pallet_plan_read_buffer) and
 * normalisation, plus the provider config of each side, as `pallet
 * migrate PLAN` does. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pallet-plan.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  /* The first byte picks the name: .yaml, .json or sniffed. */
  static const char *const names[] = { "fuzz.yaml", "fuzz.json", "fuzz" };
  const char *name = size ? names[data[0] % 3] : "fuzz";
  const char *text = (const char *) data + (size ? 1 : 0);
  size_t len = size ? size - 1 : 0;
  char *err = NULL;
  json_t *res = pallet_plan_read_buffer (name, text, len, &err);
  free (err);
  err = NULL;
  if (!res)
    return 0;
  json_t *plan = pallet_plan_normalize (res, NULL, &err);
  free (err);
  err = NULL;
  if (plan) {
    static const char *const sides[] = { "source", "destination" };
    for (int i = 0; i < 2; i++) {
      json_t *cfg = pallet_plan_provider_config (res, plan, sides[i], &err);
      free (err);
      err = NULL;
      json_decref (cfg);
    }
    char *s = json_dumps (plan, JSON_COMPACT);
    free (s);
    json_decref (plan);
  }
  json_decref (res);
  return 0;
}
