/* agent/a2a — see a2a.h. */
#include "agent/a2a.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>

#include "core/err.h"
#include "core/hex.h"
#include "crypto/eip712.h"

enum { INVALID_PARAMS = -32602 };

static int name_ok(const char *s) {
  size_t n = strlen(s);
  if (!n || n > 63) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return 0;
  }
  return 1;
}

int a2a_wei_parse(const json_t *v, uint64_t *out) {
  if (json_is_integer(v)) {
    if (json_integer_value(v) < 0) return ERR_FORMAT;
    *out = (uint64_t)json_integer_value(v);
    return 0;
  }
  const char *s = json_string_value(v);
  if (!s || !*s || json_string_length(v) > 20 || strlen(s) != json_string_length(v)) return ERR_FORMAT;
  for (const char *p = s; *p; p++)
    if (*p < '0' || *p > '9') return ERR_FORMAT;
  errno = 0;
  char *end;
  unsigned long long x = strtoull(s, &end, 10);
  if (*end || errno) return ERR_FORMAT;
  *out = x;
  return 0;
}

static int hex16(const json_t *v, uint8_t out[16]) {
  const char *s = json_string_value(v);
  if (!s || json_string_length(v) != 32) return ERR_FORMAT;
  return hex_parse(s, out, 16) ? ERR_FORMAT : 0;
}

void a2a_send_clear(a2a_send *s) {
  free(s->text);
  memset(s, 0, sizeof *s);
}

const char *a2a_send_parse(const json_t *p, a2a_send *out, int *code_out) {
  memset(out, 0, sizeof *out);
  *code_out = INVALID_PARAMS;
  const char *agent = json_string_value(json_object_get(p, "agent"));
  if (!agent || strlen(agent) != json_string_length(json_object_get(p, "agent")) || !name_ok(agent))
    return "\"agent\" must be an agent's name, [A-Za-z0-9_-]{1,63}";
  snprintf(out->agent, sizeof out->agent, "%s", agent);
  json_t *mw = json_object_get(p, "max_wei");
  if (mw && a2a_wei_parse(mw, &out->max_wei)) return "\"max_wei\" must be a wei amount (a decimal string)";
  json_t *ch = json_object_get(p, "channel");
  if (ch && !json_is_null(ch)) {
    const char *c = json_string_value(ch);
    if (!c || json_string_length(ch) != 64 || hex_parse(c, out->channel, 32)) return "\"channel\" must be 32 bytes hex";
    out->has_channel = 1;
  }
  json_t *sig = json_object_get(p, "channel_sig");
  if (sig && !json_is_null(sig)) {
    const char *c = json_string_value(sig);
    if (!c || json_string_length(sig) != 130 || hex_parse(c, out->channel_sig, 65))
      return "\"channel_sig\" must be a 65-byte signature in hex";
    out->has_sig = 1;
  }
  json_t *m = json_object_get(p, "message");
  if (!json_is_object(m)) return "\"message\" must be an A2A Message object";
  if (hex16(json_object_get(m, "messageId"), out->id)) return "\"message.messageId\" must be 16 random bytes as 32 hex digits";
  const char *role = json_string_value(json_object_get(m, "role"));
  if (!role || (strcmp(role, "user") && strcmp(role, "ROLE_USER"))) return "\"message.role\" must be \"user\"";
  json_t *parts = json_object_get(m, "parts");
  if (!json_is_array(parts) || !json_array_size(parts) || json_array_size(parts) > A2A_MAX_PARTS)
    return "\"message.parts\" must be a list of 1 to 16 parts";
  size_t total = 0, i;
  json_t *x;
  json_array_foreach(parts, i, x) {
    json_t *t = json_object_get(x, "text");
    const char *kind = json_string_value(json_object_get(x, "kind"));
    if (!json_is_object(x) || !json_is_string(t) || (kind && strcmp(kind, "text"))) {
      *code_out = A2A_E_CONTENT;
      return "only text parts are supported ({\"kind\": \"text\", \"text\": ...})";
    }
    size_t n = json_string_length(t);
    if (memchr(json_string_value(t), 0, n)) return "a text part holds a NUL byte";
    total += n + (i ? 1 : 0);
    if (total > A2A_MAX_TEXT) return "the message's text is over 64 KiB";
  }
  if (!total) return "the message's text is empty";
  out->text = malloc(total + 1);
  if (!out->text) {
    *code_out = -32603;
    return "out of memory";
  }
  size_t off = 0;
  json_array_foreach(parts, i, x) {
    json_t *t = json_object_get(x, "text");
    if (i) out->text[off++] = '\n';
    memcpy(out->text + off, json_string_value(t), json_string_length(t));
    off += json_string_length(t);
  }
  out->text[off] = 0;
  out->text_len = off;
  *code_out = 0;
  return NULL;
}

json_t *a2a_send_params(const char *agent, const uint8_t id[16], const char *text, uint64_t max_wei,
                        const uint8_t *channel, const uint8_t *channel_sig) {
  char hex[33], wei[24];
  hex_encode(id, 16, hex);
  snprintf(wei, sizeof wei, "%llu", (unsigned long long)max_wei);
  json_t *p = json_pack("{s:s, s:{s:s, s:s, s:[{s:s, s:s}]}, s:s}", "agent", agent, "message", "messageId", hex, "role",
                        "user", "parts", "kind", "text", "text", text, "max_wei", wei);
  if (p && channel) {
    char ch[65];
    hex_encode(channel, 32, ch);
    json_object_set_new(p, "channel", json_string(ch));
  }
  if (p && channel_sig) {
    char sg[131];
    hex_encode(channel_sig, 65, sg);
    json_object_set_new(p, "channel_sig", json_string(sg));
  }
  return p;
}

#define CHANNEL_TAG "apiary:a2a:channel:v1"

void a2a_channel_digest(const uint8_t channel[32], const uint8_t caller[32], const uint8_t provider[32],
                        uint8_t out[32]) {
  uint8_t msg[sizeof CHANNEL_TAG - 1 + 96];
  memcpy(msg, CHANNEL_TAG, sizeof CHANNEL_TAG - 1);
  memcpy(msg + sizeof CHANNEL_TAG - 1, channel, 32);
  memcpy(msg + sizeof CHANNEL_TAG - 1 + 32, caller, 32);
  memcpy(msg + sizeof CHANNEL_TAG - 1 + 64, provider, 32);
  eth_personal_digest(msg, sizeof msg, out);
}

int a2a_channel_proof_check(const uint8_t client[20], const uint8_t signer[20], const uint8_t channel[32],
                            const uint8_t caller[32], const uint8_t provider[32], const uint8_t sig[65]) {
  uint8_t d[32], who[20];
  a2a_channel_digest(channel, caller, provider, d);
  if (eip712_recover(d, sig, who)) return ERR_CRYPTO;
  return sodium_memcmp(who, client, 20) && sodium_memcmp(who, signer, 20) ? ERR_WRONG_SIGNER : 0;
}

int a2a_id_parse(const json_t *params, uint8_t id_out[16]) { return hex16(json_object_get(params, "id"), id_out); }

static const char *const map[][2] = {{"queued", "submitted"}, {"running", "working"}, {"waiting", "input-required"},
                                     {"done", "completed"},   {"failed", "failed"},   {"canceled", "canceled"}};

const char *a2a_state(const char *s) {
  for (size_t i = 0; s && i < sizeof map / sizeof *map; i++)
    if (!strcmp(map[i][0], s)) return map[i][1];
  return "unknown";
}

int a2a_state_terminal(const char *s) {
  return !strcmp(s, "completed") || !strcmp(s, "failed") || !strcmp(s, "canceled") || !strcmp(s, "rejected");
}

static json_t *text_parts(const char *text) { return json_pack("[{s:s, s:s}]", "kind", "text", "text", text); }

json_t *a2a_task_json(const a2a_task_info *t) {
  char hex[33], wei[24];
  hex_encode(t->id, 16, hex);
  snprintf(wei, sizeof wei, "%llu", (unsigned long long)t->price_wei);
  json_t *status = json_pack("{s:s}", "state", t->state);
  if (t->error)
    json_object_set_new(status, "message", json_pack("{s:s, s:o}", "role", "agent", "parts", text_parts(t->error)));
  json_t *j = json_pack("{s:s, s:s, s:o, s:{s:s, s:s, s:I, s:b}}", "kind", "task", "id", hex, "status", status,
                        "metadata", "agent", t->agent, "price_wei", wei, "tokens", (json_int_t)t->tokens, "payment_due",
                        t->payment_due);
  if (j && t->text)
    json_object_set_new(j, "artifacts", json_pack("[{s:s, s:o}]", "artifactId", "result", "parts", text_parts(t->text)));
  return j;
}

void a2a_task_view_clear(a2a_task_view *v) {
  free(v->text);
  free(v->error);
  memset(v, 0, sizeof *v);
}

/* The text parts of an untrusted parts list, joined; ERR_FORMAT over the cap. */
static int join_parts(const json_t *parts, char **out) {
  if (!json_is_array(parts) || json_array_size(parts) > 64) return ERR_FORMAT;
  size_t total = 0, i;
  json_t *x;
  json_array_foreach(parts, i, x) {
    json_t *t = json_object_get(x, "text");
    if (!json_is_string(t)) continue;
    total += json_string_length(t) + 1;
    if (total > A2A_MAX_RESULT) return ERR_FORMAT;
  }
  char *s = malloc(total + 1), *p = s;
  if (!s) return ERR_NOMEM;
  json_array_foreach(parts, i, x) {
    json_t *t = json_object_get(x, "text");
    if (!json_is_string(t)) continue;
    if (p != s) *p++ = '\n';
    memcpy(p, json_string_value(t), json_string_length(t));
    p += json_string_length(t);
  }
  *p = 0;
  *out = s;
  return 0;
}

int a2a_task_parse(const json_t *t, a2a_task_view *out) {
  memset(out, 0, sizeof *out);
  const char *state = json_string_value(json_object_get(json_object_get(t, "status"), "state"));
  int known = 0;
  for (size_t i = 0; state && i < sizeof map / sizeof *map; i++) known |= !strcmp(map[i][1], state);
  if (!json_is_object(t) || !known) return ERR_FORMAT;
  snprintf(out->state, sizeof out->state, "%s", state);
  json_t *md = json_object_get(t, "metadata");
  if (json_object_get(md, "price_wei") && a2a_wei_parse(json_object_get(md, "price_wei"), &out->price_wei))
    return ERR_FORMAT;
  out->tokens = json_is_integer(json_object_get(md, "tokens")) ? (int64_t)json_integer_value(json_object_get(md, "tokens")) : 0;
  out->payment_due = json_is_true(json_object_get(md, "payment_due"));
  json_t *arts = json_object_get(t, "artifacts");
  int rc = 0;
  if (json_is_array(arts) && json_array_size(arts)) {
    if (json_array_size(arts) > 16) rc = ERR_FORMAT;
    /* one artifact is what apiary sends; the first one's parts are the result */
    else rc = join_parts(json_object_get(json_array_get(arts, 0), "parts"), &out->text);
  }
  json_t *msg = json_object_get(json_object_get(t, "status"), "message");
  if (!rc && msg) rc = join_parts(json_object_get(msg, "parts"), &out->error);
  if (rc) a2a_task_view_clear(out);
  return rc ? ERR_FORMAT : 0;
}

int a2a_skill_ok(const char *s) { return strlen(s) < A2A_SKILL_MAX && name_ok(s); }

int a2a_offer_matches(const a2a_agent_offer *o, const char *want) {
  if (!strcmp(o->name, want)) return 1;
  for (size_t i = 0; i < o->n_skills; i++)
    if (!strcmp(o->skills[i], want)) return 1;
  return 0;
}

uint64_t a2a_cost(uint64_t price_wei, uint64_t price_1k, int64_t tokens, uint64_t max_wei) {
  __extension__ unsigned __int128 c = (unsigned __int128)(tokens > 0 ? (uint64_t)tokens : 0) * price_1k;
  c = (c + 999) / 1000 + price_wei;
  return c > max_wei ? max_wei : (uint64_t)c;
}

json_t *a2a_agents_to_json(const a2a_agent_offer *a, size_t n) {
  json_t *l = json_array();
  for (size_t i = 0; l && i < n; i++) {
    char wei[24];
    snprintf(wei, sizeof wei, "%llu", (unsigned long long)a[i].price_wei);
    json_t *sk = json_array();
    for (size_t k = 0; k < a[i].n_skills; k++) json_array_append_new(sk, json_string(a[i].skills[k]));
    json_t *e = json_pack("{s:s, s:s, s:s, s:o}", "name", a[i].name, "description", a[i].description, "price_wei", wei,
                          "skills", sk);
    if (e && a[i].price_1k) {
      snprintf(wei, sizeof wei, "%llu", (unsigned long long)a[i].price_1k);
      json_object_set_new(e, "price_per_1k", json_string(wei));
    }
    json_array_append_new(l, e);
  }
  return l;
}

/* Adds the valid skills of an untrusted list (JSON strings) to o. */
static void skills_from_json(const json_t *l, a2a_agent_offer *o) {
  size_t i;
  json_t *x;
  if (!json_is_array(l)) return;
  json_array_foreach(l, i, x) {
    if (o->n_skills >= A2A_MAX_SKILLS) break;
    const char *s = json_string_value(x);
    if (s && strlen(s) == json_string_length(x) && a2a_skill_ok(s))
      snprintf(o->skills[o->n_skills++], A2A_SKILL_MAX, "%s", s);
  }
}

int a2a_agents_from_json(const json_t *list, a2a_agent_offer *out, size_t cap, size_t *n_out) {
  *n_out = 0;
  if (!json_is_array(list)) return ERR_FORMAT;
  size_t i, n = 0;
  json_t *x;
  json_array_foreach(list, i, x) {
    if (n >= cap) break;
    json_t *name = json_object_get(x, "name"), *d = json_object_get(x, "description");
    a2a_agent_offer o;
    memset(&o, 0, sizeof o);
    if (!json_is_string(name) || strlen(json_string_value(name)) != json_string_length(name) ||
        !name_ok(json_string_value(name)) || a2a_wei_parse(json_object_get(x, "price_wei"), &o.price_wei))
      continue;
    if (d && (!json_is_string(d) || json_string_length(d) > A2A_MAX_DESC ||
              strlen(json_string_value(d)) != json_string_length(d)))
      continue;
    snprintf(o.name, sizeof o.name, "%s", json_string_value(name));
    snprintf(o.description, sizeof o.description, "%s", d ? json_string_value(d) : "");
    json_t *t = json_object_get(x, "price_per_1k");
    if (t && a2a_wei_parse(t, &o.price_1k)) continue;
    skills_from_json(json_object_get(x, "skills"), &o);
    out[n++] = o;
  }
  *n_out = n;
  return 0;
}

void a2a_agents_to_ben(ben_w *w, const a2a_agent_offer *a, size_t n) {
  ben_w_list(w);
  for (size_t i = 0; i < n && i < A2A_MAX_AGENTS; i++) {
    if (a[i].price_wei > INT64_MAX || a[i].price_1k > INT64_MAX) continue;
    ben_w_dict(w);
    ben_w_key(w, "n");
    ben_w_cstr(w, a[i].name);
    ben_w_key(w, "p");
    ben_w_int(w, (int64_t)a[i].price_wei);
    ben_w_key(w, "s");
    ben_w_list(w);
    for (size_t k = 0; k < a[i].n_skills; k++) ben_w_cstr(w, a[i].skills[k]);
    ben_w_end(w);
    if (a[i].price_1k && a[i].price_1k <= INT64_MAX) {
      ben_w_key(w, "t");
      ben_w_int(w, (int64_t)a[i].price_1k);
    }
    ben_w_end(w);
  }
  ben_w_end(w);
}

/* A bencoded string as a C string when it is a valid name of at most cap-1 bytes. */
static int ben_name(const ben_node *s, char *out, size_t cap) {
  if (!s || s->type != BEN_STR || !s->len || s->len >= cap) return -1;
  memcpy(out, s->str, s->len);
  out[s->len] = 0;
  return strlen(out) == s->len && name_ok(out) ? 0 : -1;
}

int a2a_agents_from_ben(const ben_node *list, a2a_agent_offer *out, size_t cap, size_t *n_out) {
  *n_out = 0;
  if (!list || list->type != BEN_LIST) return ERR_FORMAT;
  size_t n = 0;
  const ben_node *e = list + 1;
  for (size_t i = 0; i < list->count && n < cap; i++, e = ben_next(e)) {
    a2a_agent_offer o;
    memset(&o, 0, sizeof o);
    int64_t p;
    if (e->type != BEN_DICT || ben_name(ben_dict_get(e, "n"), o.name, sizeof o.name) || !ben_dict_int(e, "p", &p) ||
        p < 0)
      continue;
    o.price_wei = (uint64_t)p;
    int64_t t = 0;
    if (ben_dict_get(e, "t") && (!ben_dict_int(e, "t", &t) || t < 0)) continue;
    o.price_1k = (uint64_t)t;
    const ben_node *sk = ben_dict_get(e, "s");
    if (sk && sk->type == BEN_LIST) {
      const ben_node *x = sk + 1;
      for (size_t k = 0; k < sk->count && o.n_skills < A2A_MAX_SKILLS; k++, x = ben_next(x))
        if (!ben_name(x, o.skills[o.n_skills], A2A_SKILL_MAX)) o.n_skills++;
    }
    out[n++] = o;
  }
  *n_out = n;
  return 0;
}

json_t *a2a_card_json(const char *node_name, const char *node_id, const char *version, const a2a_agent_offer *a,
                      size_t n) {
  char url[160], name[200], desc[400];
  snprintf(url, sizeof url, "apiary:%s", node_id);
  if (node_name && *node_name) snprintf(name, sizeof name, "%s", node_name);
  else snprintf(name, sizeof name, "apiary node %.12s", node_id);
  snprintf(desc, sizeof desc,
           "Agents for sale on apiary node %s. Tasks travel over the apiary link (Noise, JSON-RPC methods "
           "a2a.message/send, a2a.tasks/get, a2a.tasks/cancel) and are paid per task through apiary payment channels.",
           node_id);
  json_t *skills = json_array();
  for (size_t i = 0; i < n; i++) {
    char wei[24];
    snprintf(wei, sizeof wei, "%llu", (unsigned long long)a[i].price_wei);
    json_t *tags = json_pack("[s]", "apiary"), *meta = json_pack("{s:s, s:s}", "price_wei", wei, "per", "task");
    if (a[i].price_1k) {
      char t[24];
      snprintf(t, sizeof t, "%llu", (unsigned long long)a[i].price_1k);
      json_object_set_new(meta, "price_per_1k", json_string(t));
    }
    for (size_t k = 0; k < a[i].n_skills; k++) json_array_append_new(tags, json_string(a[i].skills[k]));
    json_array_append_new(skills, json_pack("{s:s, s:s, s:s, s:o, s:[s], s:[s], s:{s:o}}", "id", a[i].name, "name",
                                            a[i].name, "description", a[i].description, "tags", tags, "inputModes",
                                            "text/plain", "outputModes", "text/plain", "metadata", "apiary", meta));
  }
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:s}], s:{s:b, s:b, s:b, s:[{s:s, s:s, s:b}]},"
                   " s:[s], s:[s], s:o}",
                   "name", name, "description", desc, "url", url, "version", version, "protocolVersion", "0.3.0",
                   "preferredTransport", "JSONRPC", "supportedInterfaces", "url", url, "protocolBinding", "JSONRPC",
                   "protocolVersion", "0.3", "capabilities", "streaming", 0, "pushNotifications", 0,
                   "extendedAgentCard", 0, "extensions", "uri", "urn:apiary:a2a:price:v1", "description",
                   "skill.metadata.apiary.price_wei: wei per task, plus price_per_1k wei per 1,000 tokens the task uses when given (capped by the caller's max_wei), paid through an apiary channel", "required", 0,
                   "defaultInputModes", "text/plain", "defaultOutputModes", "text/plain", "skills", skills);
}

void a2a_agent_model(const char *agent, uint8_t out[32]) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, (const unsigned char *)"agent:", 6);
  crypto_hash_sha256_update(&st, (const unsigned char *)agent, strlen(agent));
  crypto_hash_sha256_final(&st, out);
}
