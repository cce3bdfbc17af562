/* libFuzzer harness: delegation messages from untrusted peers (agent/a2a). The input is
 * parsed as JSON and given to every parser a node runs on a peer's bytes: message/send
 * params (provider), tasks/get and cancel ids, the Task answer and the agents list
 * (caller). What a2a_send_parse accepts must respect the caps (text at most A2A_MAX_TEXT,
 * no NUL, a valid name) and survive its writer: the params the caller side builds from it
 * parse back to the same task. A parsed Task's text stays under A2A_MAX_RESULT; parsed
 * agents survive their writer. The same bytes as bencode: the "a" list of a node's DHT
 * record (a2a_agents_from_ben), whose agents survive their writer too. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/a2a.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* The bytes as a DHT record's agents list: what parses writes back and parses the same. */
static void record_agents(const uint8_t *data, size_t size) {
  static ben_node nodes[512];
  a2a_agent_offer ag[A2A_MAX_AGENTS], ag2[A2A_MAX_AGENTS];
  size_t n, m;
  if (ben_decode(data, size, nodes, 512, 0) <= 0 || a2a_agents_from_ben(&nodes[0], ag, A2A_MAX_AGENTS, &n)) return;
  static uint8_t out[8192];
  ben_w w;
  ben_w_init(&w, out, sizeof out);
  a2a_agents_to_ben(&w, ag, n);
  int len = ben_w_finish(&w);
  if (len < 0 || ben_decode(out, (size_t)len, nodes, 512, 0) <= 0 ||
      a2a_agents_from_ben(&nodes[0], ag2, A2A_MAX_AGENTS, &m) || m != n)
    abort();
  for (size_t i = 0; i < n; i++)
    if (strcmp(ag[i].name, ag2[i].name) || ag[i].price_wei != ag2[i].price_wei || ag[i].n_skills != ag2[i].n_skills ||
        ag[i].price_1k != ag2[i].price_1k)
      abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  record_agents(data, size);
  json_error_t je;
  json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  if (!j) return 0;
  a2a_send s, s2;
  int code;
  if (!a2a_send_parse(j, &s, &code)) {
    if (code || !s.text || s.text_len > A2A_MAX_TEXT || strlen(s.text) != s.text_len || !s.agent[0]) abort();
    json_t *back = a2a_send_params(s.agent, s.id, s.text, s.max_wei, s.has_channel ? s.channel : NULL,
                                   s.has_sig ? s.channel_sig : NULL);
    if (a2a_send_parse(back, &s2, &code) || strcmp(s.agent, s2.agent) || memcmp(s.id, s2.id, 16) ||
        strcmp(s.text, s2.text) || s.max_wei != s2.max_wei || s.has_channel != s2.has_channel ||
        s.has_sig != s2.has_sig || (s.has_sig && memcmp(s.channel_sig, s2.channel_sig, 65)))
      abort();
    a2a_send_clear(&s2);
    json_decref(back);
  } else if (code != -32602 && code != A2A_E_CONTENT) abort();
  a2a_send_clear(&s);
  uint8_t id[16];
  a2a_id_parse(j, id);
  a2a_task_view v;
  if (!a2a_task_parse(j, &v)) {
    if (v.text && strlen(v.text) > A2A_MAX_RESULT) abort();
    if (strcmp(a2a_state(NULL), "unknown")) abort();
    a2a_task_view_clear(&v);
  }
  a2a_agent_offer ag[A2A_MAX_AGENTS], ag2[A2A_MAX_AGENTS];
  size_t n, m;
  if (!a2a_agents_from_json(json_is_object(j) ? json_object_get(j, "agents") : j, ag, A2A_MAX_AGENTS, &n)) {
    json_t *back = a2a_agents_to_json(ag, n);
    if (a2a_agents_from_json(back, ag2, A2A_MAX_AGENTS, &m) || m != n) abort();
    for (size_t i = 0; i < n; i++)
      if (strcmp(ag[i].name, ag2[i].name) || strcmp(ag[i].description, ag2[i].description) ||
          ag[i].price_wei != ag2[i].price_wei || ag[i].n_skills != ag2[i].n_skills || ag[i].price_1k != ag2[i].price_1k)
        abort();
    json_decref(back);
  }
  json_decref(j);
  return 0;
}
