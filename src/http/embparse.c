/* http/embparse — the request fields of POST /v1/embeddings; see embparse.h. */
#include "http/embparse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *fail(const char **code, const char *c, const char *msg) {
  *code = c;
  return msg;
}

/* A JSON array of token ids: 1 or more, each 0..INT32_MAX. */
static int is_id_array(const json_t *a) {
  if (!json_is_array(a) || json_array_size(a) == 0) return 0;
  size_t i;
  json_t *v;
  json_array_foreach(a, i, v) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) return 0;
  }
  return 1;
}

/* Fills in from item (a string or an id array), counting bytes and ids into the totals. */
static const char *take_input(const json_t *item, local_embed_in *in, size_t *bytes, size_t *n_ids,
                              const char **code) {
  if (json_is_string(item)) {
    size_t len = json_string_length(item);
    const char *s = json_string_value(item);
    if (len == 0) return fail(code, "invalid_input", "'input' must not hold empty strings");
    if (strlen(s) != len) return fail(code, "invalid_input", "'input' strings must not hold NUL characters");
    if ((*bytes += len) > LOCAL_MAX_PROMPT) return fail(code, "invalid_input", "'input' holds more than 1 MiB of text");
    if (!(in->text = malloc(len + 1))) return fail(code, "server_error", "out of memory");
    memcpy(in->text, s, len + 1);
    in->text_len = len;
    return NULL;
  }
  if (!is_id_array(item))
    return fail(code, "invalid_input",
                "'input' must be a non-empty string, an array of them, or (an array of) non-empty arrays of token ids");
  size_t n = json_array_size(item);
  if ((*n_ids += n) > HTTP_EMBED_MAX_IDS) return fail(code, "invalid_input", "'input' holds more than 262144 token ids");
  if (!(in->ids = malloc(n * sizeof *in->ids))) return fail(code, "server_error", "out of memory");
  for (size_t i = 0; i < n; i++) in->ids[i] = (int32_t)json_integer_value(json_array_get(item, i));
  in->n_ids = (int)n;
  return NULL;
}

const char *http_parse_embeddings(json_t *body, local_req *lr, int *base64_out, const char **code) {
  *base64_out = 0;
  json_t *v = json_object_get(body, "encoding_format");
  if (v && !json_is_null(v)) {
    const char *f = json_string_value(v);
    if (!f || (strcmp(f, "float") && strcmp(f, "base64")))
      return fail(code, "invalid_encoding_format", "'encoding_format' must be \"float\" or \"base64\"");
    *base64_out = !strcmp(f, "base64");
  }
  if ((v = json_object_get(body, "dimensions")) && !json_is_null(v)) {
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > INT32_MAX)
      return fail(code, "invalid_dimensions", "'dimensions' must be a positive integer");
    lr->embed_dims = (int)json_integer_value(v);
  }
  if ((v = json_object_get(body, "user")) && !json_is_null(v) && !json_is_string(v))
    return fail(code, "invalid_user", "'user' must be a string");

  json_t *input = json_object_get(body, "input");
  if (!input || json_is_null(input)) return fail(code, "invalid_input", "'input' is required");
  /* one input (a string or one id array), or an array of inputs */
  int many = json_is_array(input) && !is_id_array(input);
  size_t n = many ? json_array_size(input) : 1;
  if (many && n == 0) return fail(code, "invalid_input", "'input' must not be an empty array");
  if (n > LOCAL_MAX_EMBED_INPUTS) return fail(code, "invalid_input", "'input' holds more than 2048 items");
  if (!(lr->embed = calloc(n, sizeof *lr->embed))) return fail(code, "server_error", "out of memory");
  lr->n_embed = (int)n;
  size_t bytes = 0, n_ids = 0;
  for (size_t i = 0; i < n; i++) {
    const char *why = take_input(many ? json_array_get(input, i) : input, &lr->embed[i], &bytes, &n_ids, code);
    if (why) return why;
  }
  return NULL;
}
