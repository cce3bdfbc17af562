/* http/embparse — the request fields of POST /v1/embeddings (OpenAI's names; untrusted:
 * any client holding a token sends them). No I/O; the handler is http/embeddings.
 *
 * http_parse_embeddings fills lr's embedding fields (lr starts zeroed) from the parsed
 * body and returns NULL, or a message for the client with *code set to an OpenAI-style
 * error code (both static strings). lr may own memory either way: local_req_clear.
 *
 *   input            a non-empty string; an array of 1..LOCAL_MAX_EMBED_INPUTS non-empty
 *                    strings; an array of token ids (integers 0..INT32_MAX); or an array
 *                    of such arrays (each non-empty). Strings hold no NUL bytes; at most
 *                    LOCAL_MAX_PROMPT bytes of text and HTTP_EMBED_MAX_IDS ids in all.
 *   encoding_format  "float" (default) or "base64" (*base64_out = 1)
 *   dimensions       a positive integer (lr->embed_dims; the worker refuses any size but
 *                    the model's own) or null
 *   user             a string (informational, unused) or null
 * The model is the caller's (resolved like the chat routes). Other fields are ignored, as
 * on the completion routes. */
#ifndef APIARY_HTTP_EMBPARSE_H
#define APIARY_HTTP_EMBPARSE_H

#include <jansson.h>

#include "llm/local.h"

#define HTTP_EMBED_MAX_IDS (1 << 18) /* token ids in one request, over all inputs */

const char *http_parse_embeddings(json_t *body, local_req *lr, int *base64_out, const char **code);

#endif
