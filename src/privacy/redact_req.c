/* privacy/redact_req — see redact_req.h. */
#include "privacy/redact_req.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/err.h"

/* Replaces the string v (a member or element of parent) by its redacted text. */
static int redact_string(redact_map *m, json_t *v, json_t **out) {
  buf b;
  buf_init(&b);
  int rc = redact_map_apply(m, json_string_value(v), json_string_length(v), &b);
  if (!rc) {
    *out = json_stringn(b.len ? (const char *)b.ptr : "", b.len);
    if (!*out) rc = ERR_FORMAT;
  }
  buf_deinit(&b);
  return rc;
}

static int redact_member(redact_map *m, json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key), *r;
  if (!json_is_string(v)) return 0;
  int rc = redact_string(m, v, &r);
  if (!rc && json_object_set_new(obj, key, r)) rc = ERR_NOMEM;
  return rc;
}

static int redact_message(redact_map *m, json_t *msg) {
  int rc = redact_member(m, msg, "content");
  json_t *content = json_object_get(msg, "content"), *part, *tc;
  size_t k;
  if (json_is_array(content)) json_array_foreach(content, k, part) if (!rc) rc = redact_member(m, part, "text");
  json_array_foreach(json_object_get(msg, "tool_calls"), k, tc) if (!rc) rc =
      redact_member(m, json_object_get(tc, "function"), "arguments");
  return rc;
}

int redact_req_apply(redact_map *m, local_req *lr) {
  int rc = 0;
  if (lr->prompt) {
    buf b;
    buf_init(&b);
    rc = redact_map_apply(m, lr->prompt, lr->prompt_len, &b);
    if (!rc) {
      char *p = malloc(b.len + 1);
      if (!p) rc = ERR_NOMEM;
      else {
        memcpy(p, b.len ? b.ptr : (const uint8_t *)"", b.len);
        p[b.len] = 0;
        sodium_memzero(lr->prompt, lr->prompt_len); /* the original does not linger */
        free(lr->prompt);
        lr->prompt = p;
        lr->prompt_len = b.len;
      }
    }
    buf_deinit(&b);
  }
  if (!rc && lr->messages) {
    json_t *copy = json_deep_copy(lr->messages), *msg;
    if (!copy) return ERR_NOMEM;
    size_t k;
    json_array_foreach(copy, k, msg) if (!rc) rc = redact_message(m, msg);
    if (rc) { json_decref(copy); return rc; }
    json_decref(lr->messages);
    lr->messages = copy;
  }
  return rc;
}
