/* market/genreq — the text and sampling fields of a peer's `generate` request; see genreq.h. */
#include "market/genreq.h"

#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "llm/toolcall.h"

const char *mkt_genreq_parse(json_t *p, local_req *lr) {
  json_t *v;
  const char *prompt = json_string_value(json_object_get(p, "prompt"));
  json_t *msgs = json_object_get(p, "messages");
  lr->add_bos = -1;
  lr->sp = sample_default_params();
  lr->sp.temp = 0.8f;
  if (json_is_array(msgs) && json_array_size(msgs) > 0) {
    static __thread char why[320];
    int rc = toolcall_check_messages(msgs, LOCAL_MAX_MESSAGES, LOCAL_MAX_PROMPT, &lr->messages, why, sizeof why);
    if (rc) return why;
  } else {
    if (!prompt || !*prompt || strlen(prompt) > LOCAL_MAX_PROMPT) return "need a non-empty prompt or messages";
    lr->prompt = strdup(prompt);
    lr->prompt_len = strlen(prompt);
    if (!lr->prompt) return "out of memory";
  }
  if ((v = json_object_get(p, "temperature")) && json_is_number(v)) {
    double t = json_number_value(v);
    if (t < 0 || t > 2) return "temperature must be in [0, 2]";
    lr->sp.temp = (float)t;
  }
  if ((v = json_object_get(p, "top_p")) && json_is_number(v)) {
    double t = json_number_value(v);
    if ((float)t <= 0 || t > 1) return "top_p must be in (0, 1]"; /* (a tiny positive double is a 0 float) */
    lr->sp.top_p = (float)t;
  }
  if ((v = json_object_get(p, "top_k")) && json_is_integer(v) && json_integer_value(v) >= 0)
    lr->sp.top_k = (int)json_integer_value(v);
  if ((v = json_object_get(p, "min_p")) && json_is_number(v)) {
    double t = json_number_value(v);
    if (!(t >= 0 && t <= 1)) return "min_p must be in [0, 1]";
    lr->sp.min_p = (float)t;
  }
  if ((v = json_object_get(p, "repeat_penalty")) && json_is_number(v)) {
    double t = json_number_value(v);
    if (!(t > 0 && t <= 10)) return "repeat_penalty must be in (0, 10]";
    lr->sp.repeat_penalty = (float)t;
  }
  if ((v = json_object_get(p, "penalty_last_n")) && json_is_integer(v)) {
    if (json_integer_value(v) < 0 || json_integer_value(v) > SAMPLE_MAX_LAST_N) return "penalty_last_n must be 0..8192";
    lr->sp.penalty_last_n = (int)json_integer_value(v);
  }
  if ((v = json_object_get(p, "presence_penalty")) && json_is_number(v)) lr->sp.presence_penalty = (float)json_number_value(v);
  if ((v = json_object_get(p, "frequency_penalty")) && json_is_number(v)) lr->sp.freq_penalty = (float)json_number_value(v);
  if ((v = json_object_get(p, "seed")) && json_is_integer(v)) lr->sp.seed = (uint64_t)json_integer_value(v);
  lr->max_tokens = 128;
  if ((v = json_object_get(p, "max_tokens"))) {
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 8192) return "max_tokens must be 1..8192";
    lr->max_tokens = (int)json_integer_value(v);
  }
  v = json_object_get(p, "stop");
  if (json_is_array(v)) {
    if (json_array_size(v) > LOCAL_MAX_STOP) return "at most 4 stop strings";
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      if (!json_is_string(x) || !json_string_length(x) || json_string_length(x) > 255 ||
          memchr(json_string_value(x), 0, json_string_length(x)))
        return "bad stop string";
      if (!(lr->stop[lr->n_stop] = strdup(json_string_value(x)))) return "out of memory";
      lr->n_stop++;
    }
  }
  if ((v = json_object_get(p, "tools")) && !json_is_null(v)) {
    static __thread char why[320];
    if (toolcall_check_tools(v, why, sizeof why)) return why;
    if (!(lr->tools = json_deep_copy(v))) return "out of memory";
  }
  if ((v = json_object_get(p, "tool_choice")) && !json_is_null(v)) {
    const char *c = json_string_value(v);
    int ok = c && (!strcmp(c, "auto") || !strcmp(c, "none") || (!strcmp(c, "required") && lr->tools));
    size_t i;
    json_t *t;
    json_array_foreach(lr->tools, i, t) if (c && !strcmp(c, json_string_value(json_object_get(json_object_get(t, "function"), "name")))) ok = 1;
    if (!ok || strlen(c) >= sizeof lr->tool_choice) return "tool_choice must be auto, none, required or an offered function's name";
    snprintf(lr->tool_choice, sizeof lr->tool_choice, "%s", c);
  }
  lr->parallel_tools = !json_is_false(json_object_get(p, "parallel_tool_calls"));
  if ((v = json_object_get(p, "grammar")) && !json_is_null(v)) {
    if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > LOCAL_MAX_GRAMMAR ||
        memchr(json_string_value(v), 0, json_string_length(v)))
      return "grammar must be GBNF text of at most 256 KiB";
    if (!(lr->grammar = strdup(json_string_value(v)))) return "out of memory";
  }
  v = json_object_get(p, "cont");
  if (json_is_array(v) && json_array_size(v) > 0) {
    if (json_array_size(v) > LOCAL_MAX_CONT) return "continuation too long";
    lr->cont_ids = malloc(json_array_size(v) * sizeof *lr->cont_ids);
    if (!lr->cont_ids) return "out of memory";
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX)
        return "continuation ids must be token ids";
      lr->cont_ids[lr->n_cont++] = (int32_t)json_integer_value(x);
    }
    /* Text of those ids the client already has; absent (older clients): all of it. */
    v = json_object_get(p, "cont_bytes");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) return "cont_bytes must be a byte count";
    lr->cont_bytes = v ? (size_t)json_integer_value(v) : SIZE_MAX;
  }
  /* logprobs: the chunks carry each token's record with this many alternatives (lpwire) */
  if ((v = json_object_get(p, "logprobs")) && !json_is_null(v)) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > LOGPROB_MAX_TOP)
      return "logprobs must be 0..20 alternatives";
    if (lr->n_cont) return "logprobs cannot continue another provider's answer";
    lr->logprobs = 1;
    lr->top_logprobs = (int)json_integer_value(v);
  }
  return NULL;
}
