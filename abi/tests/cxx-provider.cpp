// pallet-provider-cxx: a provider written in C++, to prove the header and
// PALLET_PROVIDER_DEFINE work there: the entry point must be exported
// unmangled (extern "C"), and the host loads it like any other.
#include <cstdlib>
#include <new>
#include <string>

#include <jansson.h>
#include <pallet/provider.h>

namespace {

struct session {
  std::string region;
};

// Parses a per-VM input; nullptr after reporting why.
json_t *
parse (struct pallet_call *call, const char *input, const char **id)
{
  json_error_t err;
  json_t *in = json_loads (input, 0, &err);
  if (in == nullptr
      || json_unpack_ex (in, &err, 0, "{s:{}, s:{s:s}, s:{}}", "plan", "vm",
                         "id", id, "state") == -1) {
    pallet_fail (call, PALLET_E_INVALID, "input: %s; pass {\"plan\": {...}, "
                 "\"vm\": {\"id\": ...}, \"state\": {...}}", err.text);
    json_decref (in);
    return nullptr;
  }
  return in;
}

int
emit (struct pallet_call *call, int kind, json_t *obj)
{
  char *text = obj ? json_dumps (obj, JSON_COMPACT) : nullptr;
  int r = text ? pallet_emit (call, kind, text) : -1;
  std::free (text);
  json_decref (obj);
  return r;
}

void *
cxx_open (struct pallet_call *call, const char *config_json)
{
  json_error_t err;
  json_t *cfg = json_loads (config_json, 0, &err);
  const char *region = nullptr;
  if (cfg == nullptr
      || json_unpack_ex (cfg, &err, 0, "{s?{s?s}}", "settings", "region",
                         &region) == -1) {
    json_decref (cfg);
    pallet_fail (call, PALLET_E_INVALID, "config: %s; pass {\"settings\": "
                 "{\"region\": \"...\"}}", err.text);
    return nullptr;
  }
  session *s = nullptr;
  try {
    s = new session { region ? region : "local" };
  }
  catch (const std::bad_alloc &) {
    pallet_fail (call, PALLET_E_NOMEM, "out of memory");
  }
  json_decref (cfg);
  return s;
}

void
cxx_close (void *handle)
{
  delete static_cast<session *> (handle);
}

int
cxx_validate (void *handle, struct pallet_call *call, const char *input)
{
  (void) handle;
  const char *id;
  json_t *in = parse (call, input, &id);
  json_decref (in);
  return in ? PALLET_OK : PALLET_E_INVALID;
}

int
cxx_inventory (void *handle, struct pallet_call *call, const char *input)
{
  session *s = static_cast<session *> (handle);
  json_error_t err;
  const char *kind = nullptr, *query = nullptr;
  json_t *in = json_loads (input, 0, &err);
  if (in == nullptr || json_unpack_ex (in, &err, 0, "{s:s, s?s}", "kind",
                                       &kind, "query", &query)) {
    json_decref (in);
    return pallet_fail (call, PALLET_E_INVALID, "input: %s; pass "
                        "{\"kind\": \"instances\"}", err.text);
  }
  int r = PALLET_OK;
  if (std::string (kind) != "instances")
    r = pallet_fail (call, PALLET_E_UNSUPPORTED, "kind '%.40s' is unknown; "
                     "known kinds: instances", kind);
  else if (emit (call, PALLET_EMIT_ITEM,
                 json_pack ("{s:s, s:s, s:s}", "id", "vm-1", "name",
                            ("cxx-" + s->region).c_str (), "powerState",
                            "Off")) == -1)
    r = PALLET_E_FAILED;
  json_decref (in);
  return r;
}

int
cxx_transfer (void *handle, struct pallet_call *call, const char *input)
{
  (void) handle;
  const char *id;
  json_t *in = parse (call, input, &id);
  if (in == nullptr)
    return PALLET_E_INVALID;
  int r = PALLET_OK;
  if (pallet_cancelled (call))
    r = pallet_fail (call, PALLET_E_CANCELLED, "transfer %s: cancelled", id);
  else if (emit (call, PALLET_EMIT_STATE,
                 json_pack ("{s:b}", "transferred", 1)) == -1)
    r = PALLET_E_FAILED;
  json_decref (in);
  return r;
}

int
cxx_cleanup (void *handle, struct pallet_call *call, const char *input)
{
  (void) handle;
  const char *id;
  json_t *in = parse (call, input, &id);
  json_decref (in);
  return in ? PALLET_OK : PALLET_E_INVALID;
}

const struct pallet_setting cxx_settings[] = {
  { "region", PALLET_SETTING_STRING, "local", "the name prefix of the VM" },
  { nullptr, 0, nullptr, nullptr }
};

} // namespace

PALLET_PROVIDER_DEFINE (cxx_provider,
  .name = "cxx",
  .version = "1.0",
  .description = "a provider written in C++",
  .thread_model = PALLET_THREAD_MODEL_SERIALIZE_ALL,
  .cancel_bound_ms = 1000,
  .capabilities = PALLET_CAP_COLD_MIGRATION,
  .open = cxx_open,
  .close = cxx_close,
  .validate = cxx_validate,
  .inventory = cxx_inventory,
  .transfer = cxx_transfer,
  .cleanup = cxx_cleanup,
  .settings = cxx_settings);
