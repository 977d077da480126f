/* SPDX-License-Identifier: Apache-2.0 */
/* EC2/STS XML -> jansson, streamed with xmlTextReader.
 *
 * The Query protocol's shapes (botocore "ec2" and "query" protocols): a
 * structure is an element with named children, a list is an element whose
 * children are all <item> (EC2) or <member> (STS), a scalar is text.
 * Items at item_path are built one at a time, handed to the callback and
 * freed, so memory stays bounded by one item whatever the page size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/xmlreader.h>
#include "aws-internal.h"

#define MAX_DEPTH 64
#define MAX_PATH  1024

struct conv {
  xmlTextReaderPtr r;
  const char *item_path;
  size_t item_path_len;
  Pallet_aws_item_fn cb;
  void *opaque;
  char path[MAX_PATH];
  size_t pathlen;
  int depth;
  int stopped;
  char *err;
  size_t errlen;
};

static void
conv_error (struct conv *cv, const char *msg)
{
  if (cv->err && cv->errlen && !cv->err[0])
    snprintf (cv->err, cv->errlen, "%s", msg);
}

static void
reader_error (void *arg, xmlErrorPtr e)
{
  struct conv *cv = arg;
  if (e && e->message) {
    char m[256];
    snprintf (m, sizeof m, "malformed XML at line %d: %s", e->line, e->message);
    size_t l = strlen (m);
    while (l > 0 && (m[l - 1] == '\n' || m[l - 1] == ' '))
      m[--l] = '\0';
    conv_error (cv, m);
  }
}

/* The reader pulls the document in small chunks through this, so libxml2
 * never holds a copy of the whole body (xmlReaderForMemory copies it). */
struct mem_src {
  const char *p;
  size_t left;
};

static int
mem_read (void *ctx, char *out, int len)
{
  struct mem_src *m = ctx;
  size_t n = m->left < (size_t) len ? m->left : (size_t) len;
  memcpy (out, m->p, n);
  m->p += n;
  m->left -= n;
  return (int) n;
}

static int
mem_close (void *ctx)
{
  (void) ctx;
  return 0;
}

static bool
ends_with (const char *s, const char *suffix)
{
  size_t a = strlen (s), b = strlen (suffix);
  return a >= b && strcmp (s + a - b, suffix) == 0;
}

static bool
is_list_item (const char *name)
{
  return strcmp (name, "item") == 0 || strcmp (name, "member") == 0;
}

/* Is the current path an ancestor "item" of item_path (a repeated element
 * that only serves as context, like reservationSet/item)? */
static bool
is_context_item (struct conv *cv, const char *name)
{
  return cv->item_path && is_list_item (name) && cv->pathlen < cv->item_path_len
         && strncmp (cv->item_path, cv->path, cv->pathlen) == 0
         && cv->item_path[cv->pathlen] == '/';
}

static bool
at_item_path (struct conv *cv)
{
  return cv->item_path && cv->pathlen == cv->item_path_len
         && memcmp (cv->path, cv->item_path, cv->pathlen) == 0;
}

static bool
push (struct conv *cv, const char *name, size_t *saved)
{
  size_t l = strlen (name);
  *saved = cv->pathlen;
  if (cv->pathlen + l + 2 >= MAX_PATH || cv->depth >= MAX_DEPTH) {
    conv_error (cv, "XML nested too deeply");
    return false;
  }
  if (cv->pathlen)
    cv->path[cv->pathlen++] = '/';
  memcpy (cv->path + cv->pathlen, name, l + 1);
  cv->pathlen += l;
  cv->depth++;
  return true;
}

static void
pop (struct conv *cv, size_t saved)
{
  cv->pathlen = saved;
  cv->path[saved] = '\0';
  cv->depth--;
}

/* Converts the element the reader is on (its name is name).  parent is
 * the container being built one level up (context for items).  Returns a
 * new reference or NULL on error. */
static json_t *
element (struct conv *cv, const char *name, json_t *parent)
{
  (void) parent;
  if (xmlTextReaderIsEmptyElement (cv->r))
    return ends_with (name, "Set") ? json_array () : json_string ("");

  int depth = xmlTextReaderDepth (cv->r);
  json_t *container = NULL;
  struct Pallet_aws_buf text = { 0 };
  int rc;

  Pallet_aws_buf_add (&text, "", 0);
  while ((rc = xmlTextReaderRead (cv->r)) == 1) {
    int type = xmlTextReaderNodeType (cv->r);
    if (type == XML_READER_TYPE_END_ELEMENT && xmlTextReaderDepth (cv->r) == depth)
      break;
    if (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_CDATA
        || type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE || type == XML_READER_TYPE_WHITESPACE) {
      const xmlChar *v = xmlTextReaderConstValue (cv->r);
      if (v && !container)
        Pallet_aws_buf_puts (&text, (const char *) v);
      continue;
    }
    if (type != XML_READER_TYPE_ELEMENT)
      continue;

    const char *child_name = (const char *) xmlTextReaderConstLocalName (cv->r);
    if (!child_name)
      goto fail;
    if (!container) {
      container = is_list_item (child_name) ? json_array () : json_object ();
      if (!container)
        goto fail;
    }
    size_t saved;
    if (!push (cv, child_name, &saved))
      goto fail;
    if (at_item_path (cv)) {
      /* Stream it: build, hand over, free. */
      const char *item_path = cv->item_path;
      cv->item_path = NULL;
      json_t *item = element (cv, child_name, container);
      cv->item_path = item_path;
      pop (cv, saved);
      if (!item)
        goto fail;
      int stop = cv->cb ? cv->cb (cv->opaque, item, parent) : 0;
      json_decref (item);
      if (stop) {
        cv->stopped = 1;
        conv_error (cv, "stopped by the item callback");
        goto fail;
      }
      continue;
    }
    bool context_only = is_context_item (cv, child_name);
    json_t *child = element (cv, child_name, container);
    pop (cv, saved);
    if (!child)
      goto fail;
    if (context_only)
      json_decref (child);
    else if (json_is_array (container))
      json_array_append_new (container, child);
    else if (json_object_get (container, child_name))
      json_decref (child); /* a repeated element: the first one wins */
    else
      json_object_set_new (container, child_name, child);
  }
  if (rc != 1) {
    conv_error (cv, rc == 0 ? "XML document ends early" : "malformed XML");
    goto fail;
  }
  if (container) {
    Pallet_aws_buf_free (&text);
    return container;
  }
  if (text.oom)
    goto fail;
  json_t *s;
  bool blank = strspn (text.data, " \t\r\n") == text.len;
  if (blank && ends_with (name, "Set"))
    s = json_array ();
  else
    s = json_stringn (text.data, text.len);
  if (!s)
    conv_error (cv, "XML text is not valid UTF-8");
  Pallet_aws_buf_free (&text);
  return s;

fail:
  if (!cv->err || !cv->err[0])
    conv_error (cv, "out of memory converting XML");
  json_decref (container);
  Pallet_aws_buf_free (&text);
  return NULL;
}

int
Pallet_aws_xml_convert (const char *buf, size_t len, const char *item_path, Pallet_aws_item_fn cb,
                        void *opaque, json_t **rest, char *root_name, char *err, size_t errlen,
                        int *cb_stopped)
{
  struct conv cv = {
    .item_path = item_path,
    .item_path_len = item_path ? strlen (item_path) : 0,
    .cb = cb,
    .opaque = opaque,
    .err = err,
    .errlen = errlen,
  };
  json_t *root = NULL;
  int ret = -1;

  if (err && errlen)
    err[0] = '\0';
  if (rest)
    *rest = NULL;
  if (cb_stopped)
    *cb_stopped = 0;
  if (len > INT32_MAX) {
    conv_error (&cv, "XML document too large");
    return -1;
  }
  /* No network, no entity expansion (the default), no DTD loading. */
  struct mem_src src = { buf, len };
  cv.r = xmlReaderForIO (mem_read, mem_close, &src, NULL, NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  if (!cv.r) {
    conv_error (&cv, "cannot create the XML reader");
    return -1;
  }
  xmlTextReaderSetStructuredErrorHandler (cv.r, reader_error, &cv);
  int rc;
  while ((rc = xmlTextReaderRead (cv.r)) == 1)
    if (xmlTextReaderNodeType (cv.r) == XML_READER_TYPE_ELEMENT)
      break;
  if (rc != 1) {
    conv_error (&cv, "no XML root element in the response");
    goto out;
  }
  const char *rn = (const char *) xmlTextReaderConstLocalName (cv.r);
  if (root_name)
    snprintf (root_name, 64, "%s", rn ? rn : "");
  root = element (&cv, rn ? rn : "", NULL);
  if (!root)
    goto out;
  if (!json_is_object (root)) {
    json_decref (root);
    root = json_object ();
  }
  /* Trailing garbage after the root is an error too. */
  while ((rc = xmlTextReaderRead (cv.r)) == 1)
    ;
  if (rc < 0) {
    conv_error (&cv, "malformed XML after the root element");
    goto out;
  }
  if (rest) {
    *rest = root;
    root = NULL;
  }
  ret = 0;
out:
  if (cb_stopped)
    *cb_stopped = cv.stopped;
  json_decref (root);
  xmlFreeTextReader (cv.r);
  return ret;
}

static char *
dup_str (const json_t *v)
{
  const char *s = json_string_value (v);
  return s ? strdup (s) : NULL;
}

int
Pallet_aws_xml_error (const char *buf, size_t len, char **code, char **message, char **request_id)
{
  json_t *rest = NULL;
  char root[64];
  char err[128];
  *code = *message = *request_id = NULL;
  if (Pallet_aws_xml_convert (buf, len, NULL, NULL, NULL, &rest, root, err, sizeof err, NULL) < 0)
    return -1;
  json_t *e = NULL, *rid = NULL;
  if (strcmp (root, "Response") == 0) { /* EC2 */
    e = json_object_get (json_object_get (rest, "Errors"), "Error");
    rid = json_object_get (rest, "RequestID");
    if (!rid)
      rid = json_object_get (rest, "RequestId");
  }
  else if (strcmp (root, "ErrorResponse") == 0) { /* STS, query protocol */
    e = json_object_get (rest, "Error");
    rid = json_object_get (rest, "RequestId");
  }
  else if (strcmp (root, "Error") == 0) { /* S3-style */
    e = rest;
    rid = json_object_get (rest, "RequestId");
  }
  if (!json_object_get (e, "Code")) {
    json_decref (rest);
    return -1;
  }
  *code = dup_str (json_object_get (e, "Code"));
  *message = dup_str (json_object_get (e, "Message"));
  *request_id = dup_str (rid);
  json_decref (rest);
  return 0;
}
