/* http/reqparse — the request fields of POST /v1/completions and /v1/chat/completions; see
 * reqparse.h. */
#include "http/reqparse.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/grammar.h"
#include "llm/jsonschema.h"
#include "llm/toolcall.h"
#include "privacy/policy.h"

static const char *fail(const char **code, const char *c, const char *msg) {
  *code = c;
  return msg;
}

static const char privacy_msg[] = "privacy must be \"allow\", \"redact\" or \"local-only\"";

const char *http_parse_sampling(json_t *body, local_req *lr, int default_max, const char **code) {
  json_t *v;
  lr->sp = sample_default_params();
  lr->sp.temp = 1.0f;
  lr->sp.top_k = 0;
  lr->sp.top_p = 1.0f;
  lr->sp.min_p = 0.0f;
  lr->sp.penalty_last_n = 64;
  uint64_t seed;
  randombytes_buf(&seed, sizeof seed);
  lr->sp.seed = seed;
  lr->max_tokens = default_max;
  lr->add_bos = -1;
  /* max_completion_tokens is the newer name (chat); with both, the smaller cap holds */
  static const char *const caps[] = {"max_tokens", "max_completion_tokens"};
  for (size_t i = 0; i < 2; i++) {
    if (!(v = json_object_get(body, caps[i])) || json_is_null(v)) continue;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > HTTP_MAX_TOKENS)
      return fail(code, i ? "invalid_max_completion_tokens" : "invalid_max_tokens",
                  i ? "max_completion_tokens must be an integer from 1 to 8192"
                    : "max_tokens must be an integer from 1 to 8192");
    if (!i || json_integer_value(v) < lr->max_tokens || !json_object_get(body, "max_tokens"))
      lr->max_tokens = (int)json_integer_value(v);
  }
  /* What this node cannot do yet is refused, never silently ignored. */
  static const struct { const char *field, *msg; } unsupported[] = {
      {"best_of", "'best_of' other than 1 is not supported by this node yet"},
      {"logit_bias", "'logit_bias' is not supported by this node yet"},
  };
  for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++) {
    v = json_object_get(body, unsupported[i].field);
    int unset = !v || json_is_null(v) || json_is_false(v) || (json_is_integer(v) && json_integer_value(v) == 0) ||
                (json_is_object(v) && json_object_size(v) == 0) ||
                (i == 0 && json_is_integer(v) && json_integer_value(v) == 1);
    if (!unset) return fail(code, "unsupported_parameter", unsupported[i].msg);
  }
  if ((v = json_object_get(body, "privacy")) && !json_is_null(v)) {
    int p = json_is_string(v) ? policy_parse(json_string_value(v), json_string_length(v)) : -1;
    if (p < 0) return fail(code, "invalid_privacy", privacy_msg);
    lr->privacy = p;
  }
  if ((v = json_object_get(body, "temperature")) && !json_is_null(v)) {
    if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 2)
      return fail(code, "invalid_temperature", "temperature must be a number from 0 to 2");
    lr->sp.temp = (float)json_number_value(v);
  }
  if ((v = json_object_get(body, "top_p")) && !json_is_null(v)) {
    if (!json_is_number(v) || (float)json_number_value(v) <= 0 || json_number_value(v) > 1)
      return fail(code, "invalid_top_p", "top_p must be a number in (0, 1]");
    lr->sp.top_p = (float)json_number_value(v);
  }
  if ((v = json_object_get(body, "presence_penalty")) && json_is_number(v)) lr->sp.presence_penalty = (float)json_number_value(v);
  if ((v = json_object_get(body, "frequency_penalty")) && json_is_number(v)) lr->sp.freq_penalty = (float)json_number_value(v);
  if ((v = json_object_get(body, "seed")) && json_is_integer(v)) lr->sp.seed = (uint64_t)json_integer_value(v);
  v = json_object_get(body, "stop");
  if (v && !json_is_null(v) && !json_is_string(v) && !json_is_array(v))
    return fail(code, "invalid_stop", "stop must be a string or an array of strings");
  if (json_is_array(v) && json_array_size(v) > LOCAL_MAX_STOP)
    return fail(code, "invalid_stop", "at most 4 stop strings");
  for (size_t i = 0; json_is_string(v) ? i < 1 : i < json_array_size(v); i++) {
    json_t *x = json_is_string(v) ? v : json_array_get(v, i);
    if (!json_is_string(x) || json_string_length(x) == 0 || json_string_length(x) > 255 ||
        memchr(json_string_value(x), 0, json_string_length(x)))
      return fail(code, "invalid_stop", "stop strings must be non-empty strings of at most 255 bytes");
    if (!(lr->stop[lr->n_stop] = strdup(json_string_value(x)))) return fail(code, "server_error", "out of memory");
    lr->n_stop++;
  }
  return NULL;
}

const char *http_parse_privacy(json_t *body, const char *header, int token_level, const char **code) {
  int level = token_level > 0 ? token_level : POLICY_UNSET;
  json_t *v = json_object_get(body, "privacy");
  if (v && !json_is_null(v)) {
    int p = json_is_string(v) ? policy_parse(json_string_value(v), json_string_length(v)) : -1;
    if (p < 0) return fail(code, "invalid_privacy", privacy_msg);
    level = policy_strictest((policy_level)level, (policy_level)p);
  }
  if (header) {
    size_t l = strnlen(header, 33);
    int p = l <= 32 ? policy_parse(header, l) : -1;
    if (p < 0) return fail(code, "invalid_privacy", "the X-Apiary-Privacy header must be allow, redact or local-only");
    level = policy_strictest((policy_level)level, (policy_level)p);
  }
  if (level != POLICY_UNSET && json_object_set_new(body, "privacy", json_string(policy_name((policy_level)level))))
    return fail(code, "server_error", "out of memory");
  return NULL;
}

const char *http_parse_messages(json_t *body, local_req *lr, const char **code) {
  static __thread char why[320];
  int rc = toolcall_check_messages(json_object_get(body, "messages"), LOCAL_MAX_MESSAGES, LOCAL_MAX_PROMPT,
                                   &lr->messages, why, sizeof why);
  if (rc == ERR_NOMEM) return fail(code, "server_error", "out of memory");
  if (rc) return fail(code, rc == ERR_UNSUPPORTED ? "unsupported_content" : "invalid_messages", why);
  return NULL;
}

const char *http_parse_constraints(json_t *body, local_req *lr, int chat, const char **code) {
  static __thread char why[600];
  char e[512] = "";
  json_t *tools = json_object_get(body, "tools"), *rf = json_object_get(body, "response_format");
  json_t *gr = json_object_get(body, "grammar");
  if (tools && !json_is_null(tools)) {
    if (!chat) return fail(code, "unsupported_parameter", "tools are for /v1/chat/completions");
    int rc = toolcall_check_tools(tools, e, sizeof e);
    if (rc) {
      snprintf(why, sizeof why, "%s", e);
      return fail(code, rc == ERR_UNSUPPORTED ? "unsupported_schema" : "invalid_tools", why);
    }
    if (!(lr->tools = json_deep_copy(tools))) return fail(code, "server_error", "out of memory");
  }
  if (toolcall_check_choice(json_object_get(body, "tool_choice"), lr->tools, lr->tool_choice, sizeof lr->tool_choice,
                            e, sizeof e)) {
    snprintf(why, sizeof why, "%s", e);
    return fail(code, "invalid_tool_choice", why);
  }
  json_t *par = json_object_get(body, "parallel_tool_calls");
  lr->parallel_tools = !json_is_false(par);
  const char *type = json_string_value(json_object_get(rf, "type"));
  if (rf && !json_is_null(rf) && !type)
    return fail(code, "invalid_response_format", "response_format must be {\"type\": \"text\" | \"json_object\" | \"json_schema\"}");
  if (gr && !json_is_null(gr) && type && strcmp(type, "text"))
    return fail(code, "invalid_request", "give either grammar or response_format, not both");
  char *gbnf = NULL;
  if (type && !strcmp(type, "json_object")) {
    json_t *obj = json_pack("{s:s}", "type", "object");
    int rc = jsonschema_to_gbnf_ex(obj, "root", JSONSCHEMA_COMPACT, &gbnf, e, sizeof e);
    json_decref(obj);
    if (rc) return fail(code, "server_error", "cannot build the JSON grammar");
  } else if (type && !strcmp(type, "json_schema")) {
    json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
    if (!json_is_object(schema) && !json_is_boolean(schema))
      return fail(code, "invalid_response_format", "response_format.json_schema.schema must be a JSON Schema");
    int rc = jsonschema_to_gbnf_ex(schema, "root", JSONSCHEMA_COMPACT, &gbnf, e, sizeof e);
    if (rc) {
      snprintf(why, sizeof why, "response_format.json_schema.schema: %s", e);
      return fail(code, rc == ERR_UNSUPPORTED ? "unsupported_schema" : "invalid_response_format", why);
    }
  } else if (type && strcmp(type, "text")) {
    return fail(code, "invalid_response_format", "response_format.type must be text, json_object or json_schema");
  } else if (gr && !json_is_null(gr)) {
    if (!json_is_string(gr) || json_string_length(gr) == 0 || json_string_length(gr) > LOCAL_MAX_GRAMMAR)
      return fail(code, "invalid_grammar", "grammar must be GBNF text of at most 256 KiB");
    if (!(gbnf = strndup(json_string_value(gr), json_string_length(gr)))) return fail(code, "server_error", "out of memory");
  }
  if (gbnf) {
    grammar *g = NULL;
    int rc = grammar_parse(gbnf, strlen(gbnf), "root", &g, e, sizeof e);
    grammar_free(g);
    if (rc) {
      free(gbnf);
      snprintf(why, sizeof why, "bad grammar: %s", e);
      return fail(code, "invalid_grammar", why);
    }
    lr->grammar = gbnf;
  }
  return NULL;
}

const char *http_parse_n(json_t *body, int *n, const char **code) {
  json_t *v = json_object_get(body, "n");
  *n = 1;
  if (!v || json_is_null(v)) return NULL;
  if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > HTTP_MAX_N)
    return fail(code, "invalid_n", "n must be an integer from 1 to 8");
  *n = (int)json_integer_value(v);
  return NULL;
}

int http_prompt_count(json_t *body) {
  json_t *p = json_object_get(body, "prompt");
  return json_is_array(p) ? (int)json_array_size(p) : 1;
}

const char *http_parse_prompt_at(json_t *body, int i, local_req *lr, const char **code) {
  json_t *arr = json_object_get(body, "prompt");
  if (!json_is_array(arr)) return http_parse_prompt(body, lr, code);
  if (json_array_size(arr) < 1 || json_array_size(arr) > HTTP_MAX_PROMPTS)
    return fail(code, "invalid_prompt", "a prompt array holds 1 to 8 strings");
  json_t *p = json_array_get(arr, (size_t)i);
  if (!json_is_string(p) || json_string_length(p) == 0 || json_string_length(p) > LOCAL_MAX_PROMPT)
    return fail(code, "invalid_prompt", "each prompt must be a non-empty string (at most 1 MiB; token arrays are not supported)");
  if (memchr(json_string_value(p), 0, json_string_length(p))) return fail(code, "invalid_prompt", "NUL byte in prompt");
  lr->prompt = strndup(json_string_value(p), json_string_length(p));
  if (!lr->prompt) return fail(code, "server_error", "out of memory");
  lr->prompt_len = json_string_length(p);
  return NULL;
}

const char *http_parse_prompt(json_t *body, local_req *lr, const char **code) {
  json_t *p = json_object_get(body, "prompt");
  if (json_is_array(p) && json_array_size(p) == 1) p = json_array_get(p, 0);
  if (!json_is_string(p) || json_string_length(p) == 0 || json_string_length(p) > LOCAL_MAX_PROMPT)
    return fail(code, "invalid_prompt", "'prompt' must be a non-empty string (at most 1 MiB)");
  if (memchr(json_string_value(p), 0, json_string_length(p)))
    return fail(code, "invalid_prompt", "NUL byte in prompt");
  lr->prompt = strndup(json_string_value(p), json_string_length(p));
  if (!lr->prompt) return fail(code, "server_error", "out of memory");
  lr->prompt_len = json_string_length(p);
  return NULL;
}

const char *http_parse_logprobs(json_t *body, local_req *lr, int chat, int *echo, const char **code) {
  json_t *lp = json_object_get(body, "logprobs"), *top = json_object_get(body, "top_logprobs");
  json_t *ec = json_object_get(body, "echo");
  int lp_on = 0, k = 0;
  *echo = 0;
  if (chat) {
    if (lp && !json_is_null(lp) && !json_is_boolean(lp))
      return fail(code, "invalid_logprobs", "logprobs must be true or false (/v1/completions takes a number)");
    lp_on = json_is_true(lp);
    if (top && !json_is_null(top)) {
      if (!json_is_integer(top) || json_integer_value(top) < 0 || json_integer_value(top) > LOGPROB_MAX_TOP)
        return fail(code, "invalid_top_logprobs", "top_logprobs must be an integer from 0 to 20");
      k = (int)json_integer_value(top);
      if (k && !lp_on) return fail(code, "invalid_top_logprobs", "top_logprobs needs logprobs: true");
    }
    if (ec && !json_is_null(ec) && !json_is_false(ec))
      return fail(code, "unsupported_parameter", "echo is a /v1/completions field");
  } else {
    if (lp && !json_is_null(lp) && !json_is_false(lp)) {
      if (!json_is_integer(lp) || json_integer_value(lp) < 0 || json_integer_value(lp) > HTTP_MAX_LOGPROBS)
        return fail(code, "invalid_logprobs", "logprobs must be an integer from 0 to 5 on /v1/completions");
      lp_on = 1;
      k = (int)json_integer_value(lp);
    }
    if (top && !json_is_null(top))
      return fail(code, "unsupported_parameter",
                  "top_logprobs is a /v1/chat/completions field; /v1/completions takes logprobs: 0 to 5");
    if (ec && !json_is_null(ec) && !json_is_boolean(ec)) return fail(code, "invalid_echo", "echo must be true or false");
    *echo = json_is_true(ec);
  }
  lr->logprobs = lp_on;
  lr->top_logprobs = k;
  lr->echo_logprobs = lp_on && *echo;
  return NULL;
}
