/* http/logprobs — OpenAI's logprobs shapes; see logprobs.h. */
#include "http/logprobs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/err.h"

static json_t *empty(int chat) {
  if (chat) return json_array();
  return json_pack("{s:[], s:[], s:[], s:[]}", "tokens", "token_logprobs", "top_logprobs", "text_offset");
}

void http_lp_init(http_lp *l, int on, int chat, long offset, int strip_space) {
  *l = (http_lp){.on = on, .chat = chat, .offset = offset, .strip_space = strip_space};
  if (on) l->acc = empty(chat);
}

void http_lp_deinit(http_lp *l) {
  json_decref(l->acc);
  l->acc = NULL;
}

/* Whether p[0..n) is valid UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
static int utf8_valid(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n;) {
    uint8_t c = p[i];
    size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!k || i + k > n) return 0;
    uint32_t cp = k == 1 ? c : k == 2 ? c & 0x1Fu : k == 3 ? c & 0x0Fu : c & 0x07u;
    for (size_t j = 1; j < k; j++) {
      if ((p[i + j] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | (p[i + j] & 0x3Fu);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += k;
  }
  return 1;
}

/* The token's text for JSON: its bytes, or "bytes:\xNN..." when they are not valid UTF-8. */
static json_t *token_text(const uint8_t *p, uint32_t n) {
  if (utf8_valid(p, n)) return json_stringn((const char *)p, n);
  buf b;
  buf_init(&b);
  buf_append_str(&b, "bytes:");
  for (uint32_t i = 0; i < n; i++) buf_printf(&b, "\\x%02x", p[i]);
  json_t *s = json_stringn(b.ptr ? (const char *)b.ptr : "", b.len);
  buf_deinit(&b);
  return s;
}

static json_t *byte_list(const uint8_t *p, uint32_t n) {
  json_t *a = json_array();
  for (uint32_t i = 0; i < n; i++) json_array_append_new(a, json_integer(p[i]));
  return a;
}

static json_t *num_or_null(float v) { return isnan(v) ? json_null() : json_real((double)v); }

/* {token, logprob, bytes} of t. */
static json_t *chat_tok(const logprob_tok *t, const uint8_t *b) {
  return json_pack("{s:o, s:o, s:o}", "token", token_text(b + t->off, t->len), "logprob", num_or_null(t->logprob),
                   "bytes", byte_list(b + t->off, t->len));
}

static void add_rec(http_lp *l, const logprob_rec *r, const uint8_t *b) {
  if (l->chat) {
    json_t *e = chat_tok(&r->tok, b), *tops = json_array();
    for (int i = 0; i < r->n_top; i++) json_array_append_new(tops, chat_tok(&r->top[i], b));
    json_object_set_new(e, "top_logprobs", tops);
    json_array_append_new(l->acc, e);
    return;
  }
  if (!l->seen && r->prompt && l->strip_space && r->tok.len && b[r->tok.off] == ' ') l->offset--;
  json_array_append_new(json_object_get(l->acc, "tokens"), token_text(b + r->tok.off, r->tok.len));
  json_array_append_new(json_object_get(l->acc, "token_logprobs"), num_or_null(r->tok.logprob));
  json_t *tops = json_object();
  for (int i = 0; i < r->n_top; i++) {
    json_t *k = token_text(b + r->top[i].off, r->top[i].len);
    if (json_string_value(k) && !json_object_get(tops, json_string_value(k))) /* equal pieces: the likelier */
      json_object_set_new(tops, json_string_value(k), json_real((double)r->top[i].logprob));
    json_decref(k);
  }
  json_array_append_new(json_object_get(l->acc, "top_logprobs"), isnan(r->tok.logprob) ? (json_decref(tops), json_null()) : tops);
  json_array_append_new(json_object_get(l->acc, "text_offset"), json_integer(l->offset > 0 ? l->offset : 0));
  l->offset += (long)r->tok.len;
}

int http_lp_drain(http_lp *l, gen_stream *src) {
  if (!l->on) return 0;
  logprob_rec recs[16];
  buf b;
  buf_init(&b);
  int n, rc = 0;
  while ((n = gen_read_logprobs(src, recs, 16, &b)) > 0) {
    for (int i = 0; i < n; i++) {
      add_rec(l, &recs[i], b.ptr ? b.ptr : (const uint8_t *)"");
      l->seen++;
    }
    buf_reset(&b);
  }
  if (n < 0) rc = n;
  buf_deinit(&b);
  return rc;
}

int http_lp_pending(const http_lp *l) {
  if (!l->on) return 0;
  return (int)json_array_size(l->chat ? l->acc : json_object_get(l->acc, "tokens"));
}

json_t *http_lp_take(http_lp *l) {
  if (!l->on) return json_null();
  json_t *v = l->acc;
  l->acc = empty(l->chat);
  if (l->chat) return json_pack("{s:o, s:n}", "content", v, "refusal");
  return v;
}
