/* libFuzzer harness: POST /v1/embeddings bodies from untrusted bytes through
 * http/embparse. Whatever it accepts must respect the limits the worker relies on: 1 to
 * LOCAL_MAX_EMBED_INPUTS inputs, each non-empty text without NUL bytes (length equal to
 * its bytes) or a non-empty array of non-negative token ids, at most LOCAL_MAX_PROMPT
 * bytes of text and HTTP_EMBED_MAX_IDS ids in all, dimensions >= 0; every refusal names
 * an error code. Accepted or not, local_req_clear frees everything (ASan/LSan check it). */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/embparse.h"

static void limits(const local_req *lr) {
  if (lr->n_embed < 1 || lr->n_embed > LOCAL_MAX_EMBED_INPUTS || !lr->embed) abort();
  if (lr->embed_dims < 0) abort();
  size_t bytes = 0, ids = 0;
  for (int i = 0; i < lr->n_embed; i++) {
    const local_embed_in *in = &lr->embed[i];
    if (in->text) {
      if (!in->text_len || strlen(in->text) != in->text_len || in->ids) abort();
      bytes += in->text_len;
    } else {
      if (in->n_ids < 1 || !in->ids) abort();
      for (int k = 0; k < in->n_ids; k++)
        if (in->ids[k] < 0) abort();
      ids += (size_t)in->n_ids;
    }
  }
  if (bytes > LOCAL_MAX_PROMPT || ids > HTTP_EMBED_MAX_IDS) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > (4u << 20)) return 0; /* HTTP_MAX_BODY */
  json_error_t je;
  json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
  if (json_is_object(body)) {
    local_req lr;
    memset(&lr, 0, sizeof lr);
    int base64 = -1;
    const char *code = NULL, *why = http_parse_embeddings(body, &lr, &base64, &code);
    if (why && !code) abort();
    if (base64 != 0 && base64 != 1) abort();
    if (!why) limits(&lr);
    local_req_clear(&lr);
  }
  json_decref(body);
  return 0;
}
