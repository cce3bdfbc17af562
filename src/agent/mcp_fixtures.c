/* agent/mcp_fixtures — the fixtures the MCP conformance suite asks a server for.
 *
 * `@modelcontextprotocol/conformance` checks a server through tools, resources and prompts
 * with fixed names and answers (test_simple_text, test://static-text, test_simple_prompt,
 * …; the list is in shared/testdata/vectors/mcp/conformance-server-fixtures.json). A node
 * adds them only when its config says [mcp] conformance_fixtures = true, which the
 * conformance test sets; they never appear otherwise. They exercise every part of the
 * protocol engine (content kinds, logging, progress, sampling and elicitation requests to
 * the client, templates, subscriptions, completion), so they test apiary's MCP server, not
 * themselves. */
#include "agent/mcp_fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"

/* A 1x1 red PNG and a 16-sample silent 8 kHz WAV, made for these fixtures. */
#define PNG_B64 "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
#define WAV_B64 "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YRAAAAAAAAAAAAAAAAAAAAAAAAAA"

static void nap_ms(int ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static json_t *image(void) { return json_pack("{s:s, s:s, s:s}", "type", "image", "data", PNG_B64, "mimeType", "image/png"); }

static json_t *embedded(const char *uri, const char *mime, const char *text) {
  return json_pack("{s:s, s:{s:s, s:s, s:s}}", "type", "resource", "resource", "uri", uri, "mimeType", mime, "text", text);
}

static int t_simple(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  *r = mcp_text_result("This is a simple text response for testing.", 0);
  return 0;
}

static int t_image(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  *r = json_pack("{s:[o]}", "content", image());
  return 0;
}

static int t_audio(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  *r = json_pack("{s:[{s:s, s:s, s:s}]}", "content", "type", "audio", "data", WAV_B64, "mimeType", "audio/wav");
  return 0;
}

static int t_embedded(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  *r = json_pack("{s:[o]}", "content",
                 embedded("test://embedded-resource", "text/plain", "This is an embedded resource content."));
  return 0;
}

static int t_mixed(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  *r = json_pack("{s:[o, o, o]}", "content", mcp_text("Multiple content types test:"), image(),
                 embedded("test://mixed-content-resource", "application/json", "{\"test\":\"data\",\"value\":123}"));
  return 0;
}

static int t_logging(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  mcp_log(c, "info", "conformance", json_string("Tool execution started"));
  nap_ms(50);
  mcp_log(c, "info", "conformance", json_string("Tool processing data"));
  nap_ms(50);
  mcp_log(c, "info", "conformance", json_string("Tool execution completed"));
  *r = mcp_text_result("Tool with logging executed successfully", 0);
  return 0;
}

static int t_error(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  *r = mcp_text_result("This tool intentionally returns an error for testing", 1);
  return 0;
}

static int t_progress(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  mcp_progress(c, 0, 100, NULL);
  nap_ms(50);
  mcp_progress(c, 50, 100, NULL);
  nap_ms(50);
  mcp_progress(c, 100, 100, NULL);
  *r = mcp_text_result("Tool with progress executed successfully", 0);
  return 0;
}

/* Asks the client; a client error or silence becomes a tool error the caller can read. */
static int ask(mcp_call *c, const char *what, const char *method, json_t *params, json_t **res, json_t **r) {
  char err[300];
  if (!mcp_client_can(c, what)) {
    json_decref(params);
    char m[120];
    snprintf(m, sizeof m, "the client did not declare the %s capability", what);
    *r = mcp_text_result(m, 1);
    return 1;
  }
  if (mcp_ask(c, method, params, 60000, res, err, sizeof err)) {
    *r = mcp_text_result(err, 1);
    return 1;
  }
  return 0;
}

static int t_sampling(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  const char *prompt = json_string_value(json_object_get(a, "prompt"));
  json_t *res = NULL;
  json_t *p = json_pack("{s:[{s:s, s:{s:s, s:s}}], s:i}", "messages", "role", "user", "content", "type", "text", "text",
                        prompt, "maxTokens", 100);
  if (ask(c, "sampling", "sampling/createMessage", p, &res, r)) return 0;
  const char *text = json_string_value(json_object_get(json_object_get(res, "content"), "text"));
  char out[4096];
  snprintf(out, sizeof out, "LLM response: %s", text ? text : "(no text)");
  json_decref(res);
  *r = mcp_text_result(out, 0);
  return 0;
}

static int elicit(mcp_call *c, const char *message, const char *schema_json, json_t **r) {
  json_t *res = NULL;
  json_t *p = json_pack("{s:s, s:o}", "message", message, "requestedSchema", json_loads(schema_json, 0, NULL));
  if (ask(c, "elicitation", "elicitation/create", p, &res, r)) return 0;
  char *content = json_dumps(json_object_get(res, "content") ? json_object_get(res, "content") : json_null(),
                             JSON_COMPACT | JSON_ENCODE_ANY);
  const char *action = json_string_value(json_object_get(res, "action"));
  char out[4096];
  snprintf(out, sizeof out, "User response: action=%s, content=%s", action ? action : "?", content ? content : "null");
  free(content);
  json_decref(res);
  *r = mcp_text_result(out, 0);
  return 0;
}

static int t_elicitation(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  return elicit(c, json_string_value(json_object_get(a, "message")),
                "{\"type\":\"object\",\"properties\":{\"username\":{\"type\":\"string\",\"description\":\"User's response\"},"
                "\"email\":{\"type\":\"string\",\"description\":\"User's email address\"}},\"required\":[\"username\",\"email\"]}",
                r);
}

static int t_sep1034(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  return elicit(c, "Please review and update the form fields with defaults",
                "{\"type\":\"object\",\"properties\":{"
                "\"name\":{\"type\":\"string\",\"description\":\"User name\",\"default\":\"John Doe\"},"
                "\"age\":{\"type\":\"integer\",\"description\":\"User age\",\"default\":30},"
                "\"score\":{\"type\":\"number\",\"description\":\"User score\",\"default\":95.5},"
                "\"status\":{\"type\":\"string\",\"description\":\"User status\",\"enum\":[\"active\",\"inactive\",\"pending\"],\"default\":\"active\"},"
                "\"verified\":{\"type\":\"boolean\",\"description\":\"Verification status\",\"default\":true}}}",
                r);
}

static int t_sep1330(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  return elicit(c, "Please select options from the enum fields",
                "{\"type\":\"object\",\"properties\":{"
                "\"untitledSingle\":{\"type\":\"string\",\"description\":\"Select one option\",\"enum\":[\"option1\",\"option2\",\"option3\"]},"
                "\"titledSingle\":{\"type\":\"string\",\"description\":\"Select one option with titles\",\"oneOf\":["
                "{\"const\":\"value1\",\"title\":\"First Option\"},{\"const\":\"value2\",\"title\":\"Second Option\"},"
                "{\"const\":\"value3\",\"title\":\"Third Option\"}]},"
                "\"legacyEnum\":{\"type\":\"string\",\"description\":\"Select one option (legacy)\",\"enum\":[\"opt1\",\"opt2\",\"opt3\"],"
                "\"enumNames\":[\"Option One\",\"Option Two\",\"Option Three\"]},"
                "\"untitledMulti\":{\"type\":\"array\",\"description\":\"Select multiple options\",\"minItems\":1,\"maxItems\":3,"
                "\"items\":{\"type\":\"string\",\"enum\":[\"option1\",\"option2\",\"option3\"]}},"
                "\"titledMulti\":{\"type\":\"array\",\"description\":\"Select multiple options with titles\",\"minItems\":1,\"maxItems\":3,"
                "\"items\":{\"anyOf\":[{\"const\":\"value1\",\"title\":\"First Choice\"},{\"const\":\"value2\",\"title\":\"Second Choice\"},"
                "{\"const\":\"value3\",\"title\":\"Third Choice\"}]}}}}",
                r);
}

static int t_schema2020(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  *r = mcp_text_result("JSON Schema 2020-12 tool executed", 0);
  return 0;
}

static int r_static_text(mcp_call *c, const char *uri, void *ud, json_t **out, char *e, size_t cap) {
  *out = json_pack("[{s:s, s:s, s:s}]", "uri", uri, "mimeType", "text/plain", "text",
                   "This is the content of the static text resource.");
  return 0;
}

static int r_static_binary(mcp_call *c, const char *uri, void *ud, json_t **out, char *e, size_t cap) {
  *out = json_pack("[{s:s, s:s, s:s}]", "uri", uri, "mimeType", "image/png", "blob", PNG_B64);
  return 0;
}

static int r_watched(mcp_call *c, const char *uri, void *ud, json_t **out, char *e, size_t cap) {
  *out = json_pack("[{s:s, s:s, s:s}]", "uri", uri, "mimeType", "text/plain", "text", "Watched resource content");
  return 0;
}

static int r_template(mcp_call *c, const char *uri, void *ud, json_t **out, char *e, size_t cap) {
  const char *p = uri + strlen("test://template/"), *slash = strchr(p, '/');
  char id[128];
  snprintf(id, sizeof id, "%.*s", (int)(slash ? (size_t)(slash - p) : strlen(p)), p);
  json_t *body = json_pack("{s:s, s:b, s:s+}", "id", id, "templateTest", 1, "data", "Data for ID: ", id);
  char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(body);
  *out = json_pack("[{s:s, s:s, s:s}]", "uri", uri, "mimeType", "application/json", "text", text ? text : "{}");
  free(text);
  return 0;
}

static int p_simple(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  *r = json_pack("{s:[{s:s, s:o}]}", "messages", "role", "user", "content", mcp_text("This is a simple prompt for testing."));
  return 0;
}

static int p_args(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  char t[1024];
  snprintf(t, sizeof t, "Prompt with arguments: arg1='%s', arg2='%s'", json_string_value(json_object_get(a, "arg1")),
           json_string_value(json_object_get(a, "arg2")));
  *r = json_pack("{s:[{s:s, s:o}]}", "messages", "role", "user", "content", mcp_text(t));
  return 0;
}

static int p_embedded(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  const char *uri = json_string_value(json_object_get(a, "resourceUri"));
  *r = json_pack("{s:[{s:s, s:o}, {s:s, s:o}]}", "messages", "role", "user", "content",
                 embedded(uri, "text/plain", "Embedded resource content for testing."), "role", "user", "content",
                 mcp_text("Please process the embedded resource above."));
  return 0;
}

static int p_image(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  *r = json_pack("{s:[{s:s, s:o}, {s:s, s:o}]}", "messages", "role", "user", "content", image(), "role", "user",
                 "content", mcp_text("Please analyze the image above."));
  return 0;
}

int mcp_fixtures_add(mcp_server *s) {
  static const mcp_tool tools[] = {
      {"test_simple_text", NULL, "Returns simple text content", NULL, t_simple, NULL},
      {"test_image_content", NULL, "Returns an image (a 1x1 PNG)", NULL, t_image, NULL},
      {"test_audio_content", NULL, "Returns audio (a short WAV)", NULL, t_audio, NULL},
      {"test_embedded_resource", NULL, "Returns an embedded resource", NULL, t_embedded, NULL},
      {"test_multiple_content_types", NULL, "Returns text, an image and a resource", NULL, t_mixed, NULL},
      {"test_tool_with_logging", NULL, "Sends three log messages while it runs", NULL, t_logging, NULL},
      {"test_error_handling", NULL, "Always fails (isError)", NULL, t_error, NULL},
      {"test_tool_with_progress", NULL, "Reports progress 0, 50, 100 of 100", NULL, t_progress, NULL},
      {"test_sampling", NULL, "Asks the client's model (sampling/createMessage)",
       "{\"type\":\"object\",\"properties\":{\"prompt\":{\"type\":\"string\",\"description\":\"The prompt to send\"}},\"required\":[\"prompt\"]}",
       t_sampling, NULL},
      {"test_elicitation", NULL, "Asks the user for input (elicitation/create)",
       "{\"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\",\"description\":\"The message to show\"}},\"required\":[\"message\"]}",
       t_elicitation, NULL},
      {"test_elicitation_sep1034_defaults", NULL, "Elicitation with default values (SEP-1034)", NULL, t_sep1034, NULL},
      {"test_elicitation_sep1330_enums", NULL, "Elicitation with enum schemas (SEP-1330)", NULL, t_sep1330, NULL},
      {"json_schema_2020_12_tool", NULL, "A tool whose input schema uses JSON Schema 2020-12",
       "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"type\":\"object\",\"$defs\":{\"address\":{\"type\":"
       "\"object\",\"properties\":{\"street\":{\"type\":\"string\"},\"city\":{\"type\":\"string\"}}}},\"properties\":{\"name\":"
       "{\"type\":\"string\"},\"address\":{\"$ref\":\"#/$defs/address\"}},\"additionalProperties\":false}",
       t_schema2020, NULL},
  };
  static const mcp_resource res[] = {
      {"test://static-text", "Static text", "A static text resource", "text/plain", 0, r_static_text, NULL},
      {"test://static-binary", "Static binary", "A static binary resource (PNG)", "image/png", 0, r_static_binary, NULL},
      {"test://watched-resource", "Watched", "A resource to subscribe to", "text/plain", 0, r_watched, NULL},
      {"test://template/{id}/data", "Template", "Data for an id", "application/json", 1, r_template, NULL},
  };
  static const mcp_prompt prompts[] = {
      {"test_simple_prompt", "A simple prompt", NULL, p_simple, NULL},
      {"test_prompt_with_arguments", "A prompt with two arguments",
       "[{\"name\":\"arg1\",\"description\":\"First argument\",\"required\":true},"
       "{\"name\":\"arg2\",\"description\":\"Second argument\",\"required\":true}]",
       p_args, NULL},
      {"test_prompt_with_embedded_resource", "A prompt with an embedded resource",
       "[{\"name\":\"resourceUri\",\"description\":\"The resource to embed\",\"required\":true}]", p_embedded, NULL},
      {"test_prompt_with_image", "A prompt with an image", NULL, p_image, NULL},
  };
  int rc = 0;
  for (size_t i = 0; !rc && i < sizeof tools / sizeof *tools; i++) rc = mcp_add_tool(s, &tools[i]);
  for (size_t i = 0; !rc && i < sizeof res / sizeof *res; i++) rc = mcp_add_resource(s, &res[i]);
  for (size_t i = 0; !rc && i < sizeof prompts / sizeof *prompts; i++) rc = mcp_add_prompt(s, &prompts[i]);
  return rc;
}
