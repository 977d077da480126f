/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_aws: the AWS wire layer of the EC2 provider (static, internal).
 *
 * SigV4, libcurl transport with SDK "standard" retries, the EC2/STS Query
 * API (XML streamed by libxml2 into jansson objects) and the EBS direct
 * APIs (REST/JSON).  Linked into pallet-provider-ec2.so; nothing here is
 * exported from that .so.
 *
 * Threads: a client owns one CURL easy handle and is NOT thread-safe.
 * Use one client per thread (Pallet_aws_client_new is cheap).
 *
 * Errors: every call returns 0 on success or -1 on failure; the failure is
 * described by Pallet_aws_last_error() / Pallet_aws_errmsg() until the
 * next call on the same client.
 *
 * XML -> JSON: element names are kept exactly as on the wire (camelCase:
 * "instanceId", "tagSet"); <xxx><item>..</item></xxx> becomes an array; an
 * empty element whose name ends in "Set" becomes []; every leaf is a JSON
 * string (numbers and booleans too: "true", "8").
 */
#ifndef PALLET_AWS_H
#define PALLET_AWS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <pallet/provider.h> /* enum pallet_status, enum pallet_log_level */

#define PALLET_AWS_EC2_VERSION "2016-11-15"
#define PALLET_AWS_STS_VERSION "2011-06-15"

/* Defaults (documented in README.md). */
#define PALLET_AWS_DEFAULT_MAX_ATTEMPTS       5     /* SDK standard is 3 */
#define PALLET_AWS_DEFAULT_BACKOFF_BASE_MS    1000  /* SDK standard: 1 s */
#define PALLET_AWS_DEFAULT_BACKOFF_MAX_MS     20000 /* SDK standard: 20 s */
#define PALLET_AWS_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define PALLET_AWS_DEFAULT_TIMEOUT_MS         120000
#define PALLET_AWS_DEFAULT_LOW_SPEED_LIMIT    1  /* bytes/s ... */
#define PALLET_AWS_DEFAULT_LOW_SPEED_TIME_S   30 /* ... for this long */
#define PALLET_AWS_DEFAULT_MAX_RESPONSE       (64u << 20)
#define PALLET_AWS_RETRY_QUOTA_INITIAL        500 /* SDK token bucket */

enum Pallet_aws_service {
  PALLET_AWS_EC2 = 0,
  PALLET_AWS_STS = 1,
  PALLET_AWS_EBS = 2,
  PALLET_AWS_KMS = 3,
};
#define PALLET_AWS_NSERVICES 4

/* level is an enum pallet_log_level.  msg never contains secrets. */
typedef void (*Pallet_aws_log_fn) (void *opaque, int level, const char *msg);
/* Non-zero: stop (polled during backoff sleeps and transfers). */
typedef int (*Pallet_aws_cancel_fn) (void *opaque);

/* All fields optional (zero/NULL = default or environment).  Strings are
 * copied by Pallet_aws_client_new. */
struct Pallet_aws_config {
  /* Credentials: explicit, else env AWS_ACCESS_KEY_ID/..., else the
   * profile (profile, AWS_PROFILE, "default") in ~/.aws/credentials and
   * ~/.aws/config (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE). */
  const char *access_key_id;
  const char *secret_access_key;
  const char *session_token;
  const char *profile;
  /* config, AWS_REGION, AWS_DEFAULT_REGION, the profile's region. */
  const char *region;
  /* Endpoints ("https://host[:port]").  Per service: the config's
   * service-specific one, the config's endpoint_url,
   * AWS_ENDPOINT_URL_{EC2,EBS,STS,KMS}, AWS_ENDPOINT_URL, then
   * https://SERVICE.REGION.amazonaws.com. */
  const char *endpoint_url;
  const char *ec2_endpoint;
  const char *ebs_endpoint;
  const char *sts_endpoint;
  const char *kms_endpoint;
  /* TLS: verification is always on unless insecure is set. */
  const char *ca_bundle; /* CA file (PEM) */
  const char *ca_pem;    /* CAs (PEM) in memory, instead of ca_bundle */
  int insecure;
  /* Timeouts; 0 = default. */
  long connect_timeout_ms;
  long timeout_ms;      /* whole request */
  long low_speed_limit; /* bytes/s */
  long low_speed_time_s;
  size_t max_response_bytes; /* XML/JSON bodies */
  /* Retries; 0 = default.  max_attempts also from AWS_MAX_ATTEMPTS. */
  int max_attempts;
  long backoff_base_ms;
  long backoff_max_ms;
  int no_retry_quota; /* disable the SDK retry token bucket */
  /* Seconds added to the local clock when signing.  Normally 0: the
   * client learns the offset from the service's Date header when a
   * request is refused for clock skew, and retries once. */
  long clock_skew_s;
  Pallet_aws_log_fn log;
  void *log_opaque;
  Pallet_aws_cancel_fn cancelled;
  void *cancel_opaque;
};

/* Fills the credential/region fields of *cfg from a Forklift EC2 Secret
 * object (accessKeyId, secretAccessKey, sessionToken, region).  The
 * strings stay owned by secret. */
void Pallet_aws_config_from_secret (struct Pallet_aws_config *cfg, const json_t *secret);

struct Pallet_aws_error {
  int status;       /* enum pallet_status */
  long http_status; /* 0: no HTTP response */
  int attempts;
  const char *code;       /* AWS error code or "" */
  const char *message;    /* AWS message or transport error */
  const char *request_id; /* "" when unknown */
  const char *service;    /* "ec2", "sts", "ebs" */
  const char *action;     /* "DescribeInstances", "GetSnapshotBlock" */
  const char *region;
  const char *text; /* full message: thing, problem, fix */
};

struct Pallet_aws_client;

/* NULL on failure with *errmsg (malloc'd, caller frees) if errmsg. */
struct Pallet_aws_client *Pallet_aws_client_new (const struct Pallet_aws_config *cfg,
                                                 char **errmsg);
void Pallet_aws_client_free (struct Pallet_aws_client *c);
/* Replaces the log and cancel callbacks (e.g. per provider op call, whose
 * struct pallet_call changes each time).  NULL fn disables it. */
void Pallet_aws_client_set_callbacks (struct Pallet_aws_client *c, Pallet_aws_log_fn log,
                                      void *log_opaque, Pallet_aws_cancel_fn cancelled,
                                      void *cancel_opaque);
const struct Pallet_aws_error *Pallet_aws_last_error (const struct Pallet_aws_client *c);
const char *Pallet_aws_errmsg (const struct Pallet_aws_client *c);
const char *Pallet_aws_region (const struct Pallet_aws_client *c);
const char *Pallet_aws_access_key_id (const struct Pallet_aws_client *c);
/* "https://ec2.us-east-1.amazonaws.com" etc. */
const char *Pallet_aws_endpoint (const struct Pallet_aws_client *c, enum Pallet_aws_service svc);
/* Where the credentials came from: "config", "env", "profile:NAME". */
const char *Pallet_aws_credentials_source (const struct Pallet_aws_client *c);
/* The credentials the client signs with (borrowed; session_token NULL
 * when there is none), for handing to a process that calls AWS in our
 * stead (the in-cluster copy Pod's Secret).  Never log them. */
void Pallet_aws_credentials (const struct Pallet_aws_client *c, const char **access_key_id,
                             const char **secret_access_key, const char **session_token);

/* ---- Query parameters (ordered key/value list) ---- */
struct Pallet_aws_params;
struct Pallet_aws_params *Pallet_aws_params_new (void);
void Pallet_aws_params_free (struct Pallet_aws_params *p);
struct Pallet_aws_params *Pallet_aws_params_copy (const struct Pallet_aws_params *p);
int Pallet_aws_params_add (struct Pallet_aws_params *p, const char *key, const char *value);
int Pallet_aws_params_addf (struct Pallet_aws_params *p, const char *key, const char *fmt, ...)
    PALLET_PRINTF (3, 4);
/* prefix.1=v[0] .. prefix.n=v[n-1], e.g. "InstanceId". */
int Pallet_aws_params_add_list (struct Pallet_aws_params *p, const char *prefix,
                                const char *const *values, size_t n);
/* Filter.N.Name=name, Filter.N.Value.M=values[M-1]; N counts per params. */
int Pallet_aws_params_add_filter (struct Pallet_aws_params *p, const char *name,
                                  const char *const *values, size_t n);
struct Pallet_aws_tag {
  const char *key;
  const char *value;
};
/* TagSpecification.N.ResourceType + .Tag.M.Key/.Value. */
int Pallet_aws_params_add_tag_spec (struct Pallet_aws_params *p, const char *resource_type,
                                    const struct Pallet_aws_tag *tags, size_t n);
size_t Pallet_aws_params_count (const struct Pallet_aws_params *p);
const char *Pallet_aws_params_get (const struct Pallet_aws_params *p, const char *key);
/* "Action=..&Version=..&k=v.." form body (RFC 3986 encoded); malloc'd. */
char *Pallet_aws_params_encode (const struct Pallet_aws_params *p);

/* ---- Generic Query API (EC2, STS) ---- */

/* One item of a list.  item is borrowed (the callee json_incref's to keep
 * it); context is the enclosing object of the list, as parsed so far
 * (for DescribeInstances: the reservation: reservationId, ownerId...).
 * Return 0 to go on, non-zero to stop (the call then fails with
 * PALLET_E_CANCELLED and code "Aborted"). */
typedef int (*Pallet_aws_item_fn) (void *opaque, json_t *item, const json_t *context);

/* One request (with retries).  item_path (e.g. "reservationSet/item/
 * instancesSet/item", relative to the response root) names the items to
 * stream to cb; NULL streams nothing.  *result (if result) receives the
 * rest of the response as JSON (root element's children). */
int Pallet_aws_query (struct Pallet_aws_client *c, enum Pallet_aws_service svc, const char *action,
                      const struct Pallet_aws_params *params, const char *item_path,
                      Pallet_aws_item_fn cb, void *opaque, json_t **result);
/* Follows nextToken.  max_results > 0 adds MaxResults unless a key
 * starting with no_max_if_prefix (e.g. "InstanceId.") is present. */
int Pallet_aws_query_paged (struct Pallet_aws_client *c, enum Pallet_aws_service svc,
                            const char *action, const struct Pallet_aws_params *params,
                            int max_results, const char *no_max_if_prefix, const char *item_path,
                            Pallet_aws_item_fn cb, void *opaque);

/* ---- EC2 actions.  params may be NULL (filters, ids, extra fields). ---- */
/* One item per instance; context = its reservation. */
int Pallet_aws_ec2_describe_instances (struct Pallet_aws_client *c,
                                       const struct Pallet_aws_params *params,
                                       Pallet_aws_item_fn cb, void *opaque);
int Pallet_aws_ec2_describe_instance_types (struct Pallet_aws_client *c,
                                            const struct Pallet_aws_params *params,
                                            Pallet_aws_item_fn cb, void *opaque);
int Pallet_aws_ec2_describe_volumes (struct Pallet_aws_client *c,
                                     const struct Pallet_aws_params *params, Pallet_aws_item_fn cb,
                                     void *opaque);
/* Add OwnerId.1=self yourself if you want only your own snapshots. */
int Pallet_aws_ec2_describe_snapshots (struct Pallet_aws_client *c,
                                       const struct Pallet_aws_params *params,
                                       Pallet_aws_item_fn cb, void *opaque);
int Pallet_aws_ec2_describe_subnets (struct Pallet_aws_client *c,
                                     const struct Pallet_aws_params *params, Pallet_aws_item_fn cb,
                                     void *opaque);
int Pallet_aws_ec2_describe_vpcs (struct Pallet_aws_client *c,
                                  const struct Pallet_aws_params *params, Pallet_aws_item_fn cb,
                                  void *opaque);
int Pallet_aws_ec2_describe_availability_zones (struct Pallet_aws_client *c,
                                                const struct Pallet_aws_params *params,
                                                Pallet_aws_item_fn cb, void *opaque);
int Pallet_aws_ec2_describe_regions (struct Pallet_aws_client *c,
                                     const struct Pallet_aws_params *params, Pallet_aws_item_fn cb,
                                     void *opaque);
/* *result: the response object (e.g. {"instancesSet":[...]}); caller
 * json_decref's.  result may be NULL. */
int Pallet_aws_ec2_stop_instances (struct Pallet_aws_client *c, const char *const *ids, size_t n,
                                   int force, json_t **result);
int Pallet_aws_ec2_start_instances (struct Pallet_aws_client *c, const char *const *ids, size_t n,
                                    json_t **result);
/* extra: e.g. a TagSpecification (resource type "snapshot"). */
int Pallet_aws_ec2_create_snapshot (struct Pallet_aws_client *c, const char *volume_id,
                                    const char *description, const struct Pallet_aws_params *extra,
                                    json_t **result);
/* InstanceSpecification.InstanceId; *result {"snapshotSet":[...]}. */
int Pallet_aws_ec2_create_snapshots (struct Pallet_aws_client *c, const char *instance_id,
                                     const char *description, const struct Pallet_aws_params *extra,
                                     json_t **result);
/* client_token NULL: a random one (same for every retry of this call);
 * pass a stored one to make a re-run idempotent. */
int Pallet_aws_ec2_copy_snapshot (struct Pallet_aws_client *c, const char *source_region,
                                  const char *source_snapshot_id, const char *description,
                                  const char *client_token, const struct Pallet_aws_params *extra,
                                  json_t **result);
/* volume_type may be NULL; extra for Size, Iops, Encrypted, tags... */
int Pallet_aws_ec2_create_volume (struct Pallet_aws_client *c, const char *snapshot_id,
                                  const char *availability_zone, const char *volume_type,
                                  const char *client_token, const struct Pallet_aws_params *extra,
                                  json_t **result);
int Pallet_aws_ec2_delete_snapshot (struct Pallet_aws_client *c, const char *snapshot_id);
int Pallet_aws_ec2_delete_volume (struct Pallet_aws_client *c, const char *volume_id);
int Pallet_aws_ec2_create_tags (struct Pallet_aws_client *c, const char *const *resources,
                                size_t nres, const struct Pallet_aws_tag *tags, size_t ntags);
/* createVolumePermission Add (remove=0) or Remove of account user_id.
 * legacy=0: CreateVolumePermission.Add.1.UserId; legacy=1:
 * OperationType=add&UserId.1. */
int Pallet_aws_ec2_modify_snapshot_permission (struct Pallet_aws_client *c, const char *snapshot_id,
                                               const char *user_id, int remove, int legacy);

/* ---- STS ---- */
/* *result {"Account","Arn","UserId"}; caller json_decref's. */
int Pallet_aws_sts_get_caller_identity (struct Pallet_aws_client *c, json_t **result);

/* ---- KMS (JSON 1.1 protocol, X-Amz-Target TrentService.*) ---- */
/* DescribeKey: *metadata (if metadata) the KeyMetadata object as the
 * service sends it (KeyId, Arn, KeyState, Enabled, KeyUsage, KeySpec,
 * AWSAccountId ...); caller json_decref's.  key_id: a key id, key ARN,
 * alias name ("alias/x") or alias ARN.  A missing key fails with code
 * "NotFoundException" (status PALLET_E_NOT_FOUND). */
int Pallet_aws_kms_describe_key (struct Pallet_aws_client *c, const char *key_id,
                                 json_t **metadata);

/* ---- EBS direct APIs ---- */
/* cb gets each {"BlockIndex":n,"BlockToken":"..."}; *info (if info) the
 * first page's {"VolumeSize","BlockSize","ExpiryTime"} (numbers as JSON
 * numbers, as the service sends them).  starting_block_index < 0: none. */
int Pallet_aws_ebs_list_snapshot_blocks (struct Pallet_aws_client *c, const char *snapshot_id,
                                         int64_t starting_block_index, Pallet_aws_item_fn cb,
                                         void *opaque, json_t **info);
/* first_snapshot_id may be NULL (all written blocks of second).  cb gets
 * {"BlockIndex","FirstBlockToken"?,"SecondBlockToken"?}. */
int Pallet_aws_ebs_list_changed_blocks (struct Pallet_aws_client *c, const char *first_snapshot_id,
                                        const char *second_snapshot_id,
                                        int64_t starting_block_index, Pallet_aws_item_fn cb,
                                        void *opaque, json_t **info);
/* Reads one block into buf (bufsize >= the block size, 512 KiB).  The
 * SHA-256 x-amz-Checksum is verified; a mismatch is retried like a
 * transient error, then fails with code "ChecksumMismatch". */
int Pallet_aws_ebs_get_snapshot_block (struct Pallet_aws_client *c, const char *snapshot_id,
                                       int64_t block_index, const char *block_token, void *buf,
                                       size_t bufsize, size_t *len);

/* ---- Helpers ---- */
/* Random RFC 4122 v4 UUID into out[37]. */
void Pallet_aws_uuid (char out[37]);
/* json string/number at key as long long; def if missing or bad. */
long long Pallet_aws_json_int (const json_t *obj, const char *key, long long def);
const char *Pallet_aws_json_str (const json_t *obj, const char *key);

#endif /* PALLET_AWS_H */
