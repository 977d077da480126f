/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_aws internals shared by the .c files and the unit tests. */
#ifndef PALLET_AWS_INTERNAL_H
#define PALLET_AWS_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <time.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <libxml/xmlreader.h>
#include "pallet-aws.h"

/* ---- small string buffer ---- */
struct Pallet_aws_buf {
  char *data;
  size_t len, cap;
  int oom;
};
void Pallet_aws_buf_add (struct Pallet_aws_buf *b, const char *s, size_t n);
/* Room for more bytes and a NUL past len (sets oom if there is none). */
void Pallet_aws_buf_reserve (struct Pallet_aws_buf *b, size_t more);
void Pallet_aws_buf_puts (struct Pallet_aws_buf *b, const char *s);
void Pallet_aws_buf_printf (struct Pallet_aws_buf *b, const char *fmt, ...) PALLET_PRINTF (2, 3);
/* Returns the NUL-terminated string (owned by b) or NULL if OOM. */
const char *Pallet_aws_buf_str (struct Pallet_aws_buf *b);
void Pallet_aws_buf_free (struct Pallet_aws_buf *b);

/* RFC 3986 percent-encoding; slash kept if keep_slash. */
/* 1 for the bytes RFC 3986 leaves unencoded (A-Z a-z 0-9 - _ . ~). */
extern const unsigned char Pallet_aws_unreserved[256];
void Pallet_aws_uri_encode (struct Pallet_aws_buf *b, const char *s, size_t n, bool keep_slash);
void Pallet_aws_hex (const unsigned char *in, size_t n, char *out);
/* hex SHA-256 of data into out[65]. */
void Pallet_aws_sha256_hex (const void *data, size_t n, char out[65]);

/* Appends extra's pairs to p. */
int Pallet_aws_params_append (struct Pallet_aws_params *p, const struct Pallet_aws_params *extra);

/* ---- SigV4 ---- */
struct Pallet_aws_hdr {
  const char *name;
  const char *value; /* raw; may contain folded lines */
};

struct Pallet_aws_sigv4_key;

struct Pallet_aws_sigv4_in {
  const char *method;
  const char *path;                     /* unencoded path, "/" if empty */
  const char *query;                    /* raw query string without '?', or NULL */
  const struct Pallet_aws_hdr *headers; /* must include host */
  size_t nheaders;
  const char *payload_hash; /* hex SHA-256 of the body */
  const char *access_key_id, *secret_access_key, *session_token;
  const char *region, *service;
  const char *amz_date;    /* YYYYMMDDTHHMMSSZ */
  bool normalize_path;     /* remove dot segments and "//" */
  bool presign;            /* query signing */
  long expires;            /* presign: X-Amz-Expires */
  bool omit_session_token; /* token added after signing, unsigned */
  bool add_content_sha256; /* sign an x-amz-content-sha256 header */
  /* Where the signing key of the last request is kept, so the next one of
   * the same access key id, day, region and service skips deriving it; or
   * NULL.  Keyed by the key id, not the secret (no copy of it is kept):
   * whoever replaces the credentials frees the cache.  One per client, not
   * for concurrent use (signing also updates it).  Added by the signer,
   * freed with Pallet_aws_sigv4_key_free (which clears it). */
  struct Pallet_aws_sigv4_key **key_cache;
};

struct Pallet_aws_sigv4_out {
  char *canonical_request;
  char *string_to_sign;
  char signature[65];
  char *authorization; /* header mode: the Authorization value */
  /* presign: what to append to the query, in the order AWS tools use:
   * X-Amz-Algorithm..X-Amz-Signature (already encoded). */
  char *presign_query;
  /* The strings above live in this one allocation (freed by
   * Pallet_aws_sigv4_out_free): one malloc per signature, not five. */
  char *block;
};

int Pallet_aws_sigv4_sign (const struct Pallet_aws_sigv4_in *in, struct Pallet_aws_sigv4_out *out);
void Pallet_aws_sigv4_out_free (struct Pallet_aws_sigv4_out *out);
void Pallet_aws_sigv4_key_free (struct Pallet_aws_sigv4_key *k);
/* Canonical URI of a raw path (encoded once). */
char *Pallet_aws_sigv4_canonical_uri (const char *path, bool normalize);
/* Canonical query of a raw query string (decoded then re-encoded, sorted). */
char *Pallet_aws_sigv4_canonical_query (const char *query);

/* ---- XML streaming conversion ---- */
/* Converts the document in buf.  Items at item_path (relative to the root
 * element) go to cb; the rest is returned in *rest (root's children as an
 * object) and the root element's local name in root_name (if not NULL,
 * size >= 64).  Returns 0, or -1 with a message in err. */
int Pallet_aws_xml_convert (const char *buf, size_t len, const char *item_path,
                            Pallet_aws_item_fn cb, void *opaque, json_t **rest, char *root_name,
                            char *err, size_t errlen, int *cb_stopped);

/* Error envelope of EC2 (<Response><Errors><Error>..) or STS
 * (<ErrorResponse><Error>..).  Returns 0 if found; out strings malloc'd. */
int Pallet_aws_xml_error (const char *buf, size_t len, char **code, char **message,
                          char **request_id);

/* ---- retries ---- */
enum Pallet_aws_retry_kind {
  PALLET_AWS_NO_RETRY = 0,
  PALLET_AWS_RETRY_THROTTLE = 1,
  PALLET_AWS_RETRY_TRANSIENT = 2,
  PALLET_AWS_RETRY_TIMEOUT = 3,
};
bool Pallet_aws_is_throttle_code (const char *code);
bool Pallet_aws_is_transient_code (const char *code);
bool Pallet_aws_is_auth_code (const char *code);
/* Classifies one attempt: curl result, HTTP status, AWS code. */
enum Pallet_aws_retry_kind Pallet_aws_classify (CURLcode cc, long http_status, const char *code);
/* Full-jitter delay in ms: rnd in [0,1) * min(base * 2^attempt, max),
 * attempt counted from 0. */
long Pallet_aws_backoff_ms (int attempt, long base_ms, long max_ms, double rnd);
/* The SDK's retry quota. */
struct Pallet_aws_quota {
  int tokens;
  int max;
  bool disabled;
};
#define PALLET_AWS_RETRY_COST   5
#define PALLET_AWS_TIMEOUT_COST 10
/* Takes the cost of a retry; false if the bucket is empty. */
bool Pallet_aws_quota_acquire (struct Pallet_aws_quota *q, enum Pallet_aws_retry_kind k,
                               int *taken);
void Pallet_aws_quota_release (struct Pallet_aws_quota *q, int taken);
/* pallet_status of a final AWS error code. */
int Pallet_aws_status_of_code (const char *code, long http_status);

/* ---- INI files and credential / region / endpoint resolution ---- */
/* *out = malloc'd printf, or left NULL on OOM; out may be NULL. */
void Pallet_aws_strf (char **out, const char *fmt, ...) PALLET_PRINTF (2, 3);

/* A whole shared config/credentials file, parsed strictly (ini.c).  A
 * missing file loads as an empty one.  0, -1 (*errmsg names file and
 * line) or -2 (out of memory). */
struct Pallet_aws_ini;
int Pallet_aws_ini_load (const char *file, struct Pallet_aws_ini **out, char **errmsg);
void Pallet_aws_ini_free (struct Pallet_aws_ini *ini);
const char *Pallet_aws_ini_file (const struct Pallet_aws_ini *ini);
bool Pallet_aws_ini_has_section (const struct Pallet_aws_ini *ini, const char *section);
/* Non-empty value of key in [section], or NULL; borrowed. */
const char *Pallet_aws_ini_value (const struct Pallet_aws_ini *ini, const char *section,
                                  const char *key);
/* Indented "sub = value" under "key =" (e.g. [services x] ec2 = / endpoint_url). */
const char *Pallet_aws_ini_sub (const struct Pallet_aws_ini *ini, const char *section,
                                const char *key, const char *sub);
/* Value of key in [section] of file; malloc'd or NULL.  *found_section set
 * to true if the section exists. */
char *Pallet_aws_ini_get (const char *file, const char *section, const char *key,
                          bool *found_section);

/* What the credential chain needs to run again (to refresh temporary
 * credentials): owned copies. */
struct Pallet_aws_chain_spec {
  char *profile;
  bool profile_explicit; /* given (config or AWS_PROFILE), not "default" */
  char *region;
  char *sts_endpoint;
  char *ca_bundle;
  int insecure;
};

struct Pallet_aws_creds {
  char *access_key_id, *secret_access_key, *session_token;
  time_t expiration; /* 0: does not expire */
  char *source;      /* "env", "web-identity", "profile:x", "imds"... */
};
void Pallet_aws_creds_free (struct Pallet_aws_creds *k);

/* The chain after the explicit and environment keys (credsrc.c): web
 * identity, the profile, the container endpoint, IMDS.  0 with *out set,
 * 1 (no source configured; *tried lists each source and why it was
 * skipped), -1 (a configured source failed: *errmsg), -2 (OOM). */
int Pallet_aws_creds_chain (const struct Pallet_aws_chain_spec *spec, struct Pallet_aws_creds *out,
                            struct Pallet_aws_buf *tried, char **errmsg);
/* credential_process command line split as botocore's shlex.split does
 * (POSIX rules, no shell): NULL-terminated argv, or NULL with *errmsg. */
char **Pallet_aws_split_command (const char *cmd, char **errmsg);
void Pallet_aws_argv_free (char **argv);
/* ISO 8601 "2026-12-07T01:02:03Z" (also with fraction / +00:00) to time_t; -1. */
time_t Pallet_aws_parse_time (const char *s);

struct Pallet_aws_resolved {
  char *access_key_id, *secret_access_key, *session_token;
  char *region;
  char *endpoint[PALLET_AWS_NSERVICES];
  char *cred_source;
  char *ca_bundle;   /* AWS_CA_BUNDLE or the profile's ca_bundle, if the config has none */
  time_t expiration; /* of temporary credentials, or 0 */
  struct Pallet_aws_chain_spec *spec; /* to refresh them; NULL if static */
};
int Pallet_aws_resolve (const struct Pallet_aws_config *cfg, struct Pallet_aws_resolved *r,
                        char **errmsg);
void Pallet_aws_resolved_free (struct Pallet_aws_resolved *r);
/* Refreshes temporary credentials that expire within 15 minutes (as
 * botocore's advisory window).  0 (fresh or refreshed, or a refresh
 * failed but the old ones are still valid: logged), -1 (expired and the
 * refresh failed; the client error is set). */
struct Pallet_aws_client;
int Pallet_aws_creds_refresh (struct Pallet_aws_client *c);

/* ---- the client and one HTTP exchange ---- */
struct Pallet_aws_resp {
  long status;
  struct Pallet_aws_buf body;
  size_t cap; /* size limit for body */
  bool too_large;
  /* binary sink: a 200 body goes here instead of body */
  unsigned char *sink;
  size_t sink_size, sink_len;
  /* SHA-256 of the sink's bytes, hashed as they arrive (still in cache),
   * when the request asks for it; else NULL. */
  EVP_MD_CTX *sink_md;
  char request_id[128];
  char checksum[128];
  char checksum_alg[32];
  char error_type[128]; /* x-amzn-ErrorType */
  char content_type[128];
  char date[64]; /* Date, for clock-skew correction */
};

struct Pallet_aws_client {
  CURL *curl;
  struct Pallet_aws_config cfg; /* copy; strings below */
  struct Pallet_aws_resolved r;
  char *ca_bundle;
  struct Pallet_aws_quota quota;
  struct Pallet_aws_error err;
  char *err_strings[7]; /* owned strings of err */
  int max_attempts;
  long backoff_base_ms, backoff_max_ms;
  long clock_offset;                      /* seconds added to time() when signing */
  struct Pallet_aws_sigv4_key *key_cache; /* the last signing key */
  EVP_MD_CTX *sink_md;                    /* for requests with sink_sha256 */
};

/* A request as the transport sees it. */
struct Pallet_aws_request {
  enum Pallet_aws_service svc;
  const char *action;       /* for logs and errors */
  const char *method;       /* GET, POST */
  const char *path;         /* raw path ("/" for Query) */
  const char *query;        /* encoded query, or NULL */
  const char *content_type; /* or NULL */
  const char *body;
  size_t body_len;
  const char *accept; /* or NULL */
  const char *target; /* X-Amz-Target (JSON protocols), signed; or NULL */
  /* optional binary sink for 200 bodies (GetSnapshotBlock) */
  void *sink;
  size_t sink_size;
  bool sink_sha256; /* hash the sink's bytes as they arrive (resp->sink_md) */
  /* called on a 2xx response; returns 0 ok, 1 retryable failure
   * (e.g. checksum), -1 permanent; may set code/message in the client err. */
  int (*check) (struct Pallet_aws_client *c, struct Pallet_aws_resp *resp, void *opaque, char *code,
                size_t codelen, char *msg, size_t msglen);
  void *check_opaque;
};

/* Sends req with retries.  On success 0 and *resp holds the final response
 * (caller frees resp->body).  On failure -1 with the client error set. */
int Pallet_aws_send (struct Pallet_aws_client *c, const struct Pallet_aws_request *req,
                     struct Pallet_aws_resp *resp);

void Pallet_aws_log (struct Pallet_aws_client *c, int level, const char *fmt, ...)
    PALLET_PRINTF (3, 4);
/* Sets the client error.  code/message/request_id may be NULL. */
void Pallet_aws_set_error (struct Pallet_aws_client *c, int status, long http_status, int attempts,
                           enum Pallet_aws_service svc, const char *action, const char *code,
                           const char *message, const char *request_id, const char *fmt, ...)
    PALLET_PRINTF (10, 11);
const char *Pallet_aws_service_name (enum Pallet_aws_service svc);
/* Random double in [0,1). */
double Pallet_aws_random (void);

#endif
