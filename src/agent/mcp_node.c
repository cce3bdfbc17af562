/* agent/mcp_node — what a node offers over MCP: generate through the market, the offers
 * it sees, its peers, its balance and receipts (tools), and its receipts and models
 * (resources). Each asks the running node through a control call (mcp_node_ops), so the
 * same registry serves /mcp inside the node and `apiary mcp` on stdio beside it. */
#include "agent/mcp_node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* Runs a control method; on success the tool's result is the node's answer as JSON text
 * (and structuredContent), else a tool error with the node's message. */
static int relay(mcp_call *c, const mcp_node_ops *ops, const char *method, json_t *params, json_t **r) {
  json_t *res = NULL;
  char err[512] = "";
  if (ops->call(ops->ud, method, params, 120000, &res, err, sizeof err)) {
    char m[640];
    snprintf(m, sizeof m, "the node could not answer %s: %s", method, err[0] ? err : "no answer");
    *r = mcp_text_result(m, 1);
    return 0;
  }
  char *text = json_dumps(res, JSON_COMPACT);
  *r = json_pack("{s:[o], s:o}", "content", mcp_text(text ? text : "{}"), "structuredContent", res);
  free(text);
  return 0;
}

static int t_generate(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  const mcp_node_ops *ops = ud;
  json_t *p = json_pack("{s:O, s:O}", "model", json_object_get(a, "model"), "prompt", json_object_get(a, "prompt"));
  json_t *mt = json_object_get(a, "max_tokens"), *temp = json_object_get(a, "temperature"),
         *seed = json_object_get(a, "seed"), *node = json_object_get(a, "node");
  json_int_t n = json_is_integer(mt) ? json_integer_value(mt) : 128;
  if (n < 1 || n > 8192) {
    *r = mcp_text_result("max_tokens must be 1..8192", 1);
    json_decref(p);
    return 0;
  }
  json_object_set_new(p, "max_tokens", json_integer(n));
  json_object_set_new(p, "temperature", json_real(json_is_number(temp) ? json_number_value(temp) : 0.8));
  if (json_is_integer(seed)) json_object_set(p, "seed", seed);
  if (json_is_string(node)) json_object_set(p, "node_id", node);
  mcp_progress(c, 0, 1, "generating");
  json_t *res = NULL;
  char err[512] = "";
  if (ops->call(ops->ud, "ask", p, 600000, &res, err, sizeof err)) {
    char m[640];
    snprintf(m, sizeof m, "generation failed: %s", err[0] ? err : "no answer");
    *r = mcp_text_result(m, 1);
    return 0;
  }
  mcp_progress(c, 1, 1, "done");
  const char *text = json_string_value(json_object_get(res, "text"));
  *r = json_pack("{s:[o], s:o}", "content", mcp_text(text ? text : ""), "structuredContent", res);
  return 0;
}

static int t_offers(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  return relay(c, ud, "market.offers", NULL, r);
}

static int t_peers(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  return relay(c, ud, "peers", NULL, r);
}

static int t_balance(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  return relay(c, ud, "pay.info", NULL, r);
}

static int role_of(const char *s) { return !s ? 0 : !strcmp(s, "client") ? 1 : !strcmp(s, "provider") ? 2 : -1; }

static int t_receipts(mcp_call *c, json_t *a, void *ud, json_t **r, char *e, size_t cap) {
  int role = role_of(json_string_value(json_object_get(a, "role")));
  if (role < 0) {
    *r = mcp_text_result("role must be \"client\" (what this node bought) or \"provider\" (what it sold)", 1);
    return 0;
  }
  return relay(c, ud, "market.receipts", json_pack("{s:i}", "role", role), r);
}

static int read_json(const mcp_node_ops *ops, const char *method, json_t *params, const char *uri, json_t **out,
                     char *e, size_t cap) {
  json_t *res = NULL;
  char err[512] = "";
  if (ops->call(ops->ud, method, params, 30000, &res, err, sizeof err)) {
    snprintf(e, cap, "the node could not answer %s: %s", method, err[0] ? err : "no answer");
    return MCP_INTERNAL;
  }
  char *text = json_dumps(res, JSON_COMPACT | JSON_INDENT(1));
  json_decref(res);
  *out = json_pack("[{s:s, s:s, s:s}]", "uri", uri, "mimeType", "application/json", "text", text ? text : "{}");
  free(text);
  return 0;
}

static int r_receipts(mcp_call *c, const char *uri, void *ud, json_t **out, char *e, size_t cap) {
  return read_json(ud, "market.receipts", json_pack("{s:i}", "role", 0), uri, out, e, cap);
}

static int r_offers(mcp_call *c, const char *uri, void *ud, json_t **out, char *e, size_t cap) {
  return read_json(ud, "market.offers", NULL, uri, out, e, cap);
}

int mcp_node_add(mcp_server *s, const mcp_node_ops *ops) {
  void *ud = (void *)ops;
  const mcp_tool tools[] = {
      {"generate", "Generate text", "Generates a completion of a prompt with a model on this node or bought from the "
       "network (the best provider offering that exact file, paid per token, with failover). Returns the text; the "
       "structured result says who answered and what it cost.",
       "{\"type\":\"object\",\"properties\":{"
       "\"model\":{\"type\":\"string\",\"description\":\"a model name, a name the network offers, or a sha256\"},"
       "\"prompt\":{\"type\":\"string\",\"description\":\"the text to continue\"},"
       "\"max_tokens\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":8192,\"description\":\"tokens to generate (128)\"},"
       "\"temperature\":{\"type\":\"number\",\"minimum\":0,\"maximum\":2,\"description\":\"0 is greedy (0.8)\"},"
       "\"seed\":{\"type\":\"integer\",\"minimum\":0},"
       "\"node\":{\"type\":\"string\",\"description\":\"buy from this node id only\"}},"
       "\"required\":[\"model\",\"prompt\"]}",
       t_generate, ud},
      {"offers", "Market offers", "Lists the models the network offers: node, model hash and name, price per token.",
       NULL, t_offers, ud},
      {"peers", "Peers", "Lists the peers this node is linked to.", NULL, t_peers, ud},
      {"balance", "Balance", "This node's wallet: address, balance, and its payment channels.", NULL, t_balance, ud},
      {"receipts", "Receipts", "Receipts of generations bought (client) or sold (provider), newest first.",
       "{\"type\":\"object\",\"properties\":{\"role\":{\"type\":\"string\",\"enum\":[\"client\",\"provider\"]}}}",
       t_receipts, ud},
  };
  const mcp_resource res[] = {
      {"apiary://receipts", "receipts", "Every receipt this node holds, bought and sold (JSON)", "application/json", 0,
       r_receipts, ud},
      {"apiary://offers", "offers", "The offers this node sees on the network (JSON)", "application/json", 0, r_offers,
       ud},
  };
  int rc = 0;
  for (size_t i = 0; !rc && i < sizeof tools / sizeof *tools; i++) rc = mcp_add_tool(s, &tools[i]);
  for (size_t i = 0; !rc && i < sizeof res / sizeof *res; i++) rc = mcp_add_resource(s, &res[i]);
  return rc;
}
