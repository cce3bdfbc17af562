/* agent/a2a — the wire format of delegation between owners' agents, A2A-style JSON-RPC
 * over the Noise link (docs/protocol.md, "Agent methods"). No I/O: params in, checked
 * structs out; structs in, JSON out. Both sides use it: the provider parses what a peer
 * sends (untrusted: every size and count is capped; tests/fuzz/fuzz_a2a), the caller
 * builds requests and parses the provider's answers (untrusted too).
 *
 *   a2a.message/send  {agent, message: {messageId, role: "user", parts: [{kind: "text",
 *                     text}]}, max_wei, channel?, channel_sig?}
 *                     channel_sig: the caller's wallet signs that the channel is its own
 *                     (a2a_channel_digest); a provider takes a paid task only with a
 *                     channel whose client or signer is the address it recovers
 *   a2a.tasks/get     {id}
 *   a2a.tasks/cancel  {id}
 *   answers           Task {id, status: {state, message?}, artifacts?: [{artifactId,
 *                     parts: [{kind: "text", text}]}], metadata: {agent, price_wei, tokens,
 *                     payment_due}}
 *
 * A task's id is the 16-byte messageId its caller chose (32 hex digits); a second send of
 * the same id by the same caller is the same task, so a send whose answer was lost can be
 * sent again. Any thread; returned JSON and strings are owned by the caller. */
#ifndef APIARY_AGENT_A2A_H
#define APIARY_AGENT_A2A_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define A2A_MAX_TEXT 65536       /* the task's input text, all parts together */
#define A2A_MAX_PARTS 16
#define A2A_MAX_RESULT (512 * 1024) /* an artifact's text a caller accepts */
#define A2A_MAX_DESC 1024        /* an agent's description for sale */

/* Errors on the wire (apiary's range; the A2A name each stands for in the comment). */
enum {
  A2A_E_NO_AGENT = -32040,      /* no such agent for sale here (A2A: UnsupportedOperation) */
  A2A_E_PRICE = -32041,         /* price above the caller's max_wei; data {price_wei} */
  A2A_E_NOT_FOUND = -32042,     /* TaskNotFound (only the caller's own tasks exist for it) */
  A2A_E_NOT_CANCELABLE = -32043,/* TaskNotCancelable: it has already ended */
  A2A_E_CONTENT = -32045,       /* ContentTypeNotSupported: a part that is not text */
  A2A_E_PAYMENT = -32046,       /* a paid agent needs a channel the provider knows */
  A2A_E_STORE = -32047,         /* the provider cannot record the task (takes no work) */
};

/* A checked a2a.message/send. */
typedef struct a2a_send {
  char agent[64];               /* [A-Za-z0-9_-]{1,63} */
  uint8_t id[16];               /* message.messageId: the task's id */
  char *text;                   /* owned: the text parts joined by "\n" (NUL-terminated) */
  size_t text_len;
  uint64_t max_wei;             /* what the caller agrees to pay at most */
  uint8_t channel[32];          /* the caller's channel to the provider (has_channel) */
  int has_channel;
  uint8_t channel_sig[65];      /* the caller's proof that channel is its own (has_sig) */
  int has_sig;
} a2a_send;

/* Parses untrusted params. NULL when good; else the reason, with *code_out the JSON-RPC
 * error code (RPC invalid params, or A2A_E_CONTENT). */
const char *a2a_send_parse(const json_t *params, a2a_send *out, int *code_out);
void a2a_send_clear(a2a_send *s);
/* The caller's side: params for a2a.message/send (owned). channel and channel_sig (65
 * bytes) may be NULL. */
json_t *a2a_send_params(const char *agent, const uint8_t id[16], const char *text, uint64_t max_wei,
                        const uint8_t *channel, const uint8_t *channel_sig);

/* What a caller signs (personal_sign, crypto/eip712) to show that the channel it pays a
 * task with is its own: eth_personal_digest("apiary:a2a:channel:v1" || channel (32) ||
 * caller node key (32) || provider node key (32)). Bound to both nodes, so a proof seen
 * by one provider is no use to another caller or at another provider. */
void a2a_channel_digest(const uint8_t channel[32], const uint8_t caller[32], const uint8_t provider[32],
                        uint8_t out[32]);
/* The provider's check: sig recovers to the channel's client or signer (20-byte
 * addresses from the chain). 0, ERR_WRONG_SIGNER or ERR_CRYPTO (not a signature). */
int a2a_channel_proof_check(const uint8_t client[20], const uint8_t signer[20], const uint8_t channel[32],
                            const uint8_t caller[32], const uint8_t provider[32], const uint8_t sig[65]);

/* {id} of tasks/get and tasks/cancel. 0 or ERR_FORMAT. */
int a2a_id_parse(const json_t *params, uint8_t id_out[16]);

/* An agent task's state (agent_store: queued|running|waiting|done|failed|canceled) as
 * A2A's: submitted|working|input-required|completed|failed|canceled ("unknown" else). */
const char *a2a_state(const char *agent_state);
int a2a_state_terminal(const char *a2a_state);

/* The provider's Task answer. text: the artifact (NULL: none, e.g. not paid yet); error:
 * the failure's reason (NULL: none). */
typedef struct a2a_task_info {
  uint8_t id[16];
  const char *agent;
  const char *state;            /* A2A state */
  const char *text, *error;
  uint64_t price_wei;
  int64_t tokens;
  int payment_due;              /* completed, the result waits for the price to be paid */
} a2a_task_info;
json_t *a2a_task_json(const a2a_task_info *t);

/* The caller's view of an untrusted Task answer. */
typedef struct a2a_task_view {
  char state[20];
  char *text;                   /* owned; the artifacts' text parts (NULL: none) */
  char *error;                  /* owned; status.message's text (NULL: none) */
  uint64_t price_wei;
  int64_t tokens;
  int payment_due;
} a2a_task_view;
/* 0 or ERR_FORMAT (not a Task, a state we do not know, over the caps). */
int a2a_task_parse(const json_t *task, a2a_task_view *out);
void a2a_task_view_clear(a2a_task_view *v);

/* An agent for sale, as peers list them (a2a.agents, market.offers "agents", the card,
 * the "a" key of the node's DHT record). */
#define A2A_MAX_AGENTS 16
#define A2A_MAX_SKILLS 4          /* skills (capabilities) per agent */
#define A2A_SKILL_MAX 32          /* a skill: [A-Za-z0-9_-]{1,31} */
typedef struct a2a_agent_offer {
  char name[64];
  char description[A2A_MAX_DESC + 1];
  uint64_t price_wei;             /* per task */
  uint64_t price_1k;              /* and per 1,000 tokens the task uses (0: none) */
  char skills[A2A_MAX_SKILLS][A2A_SKILL_MAX];
  size_t n_skills;
} a2a_agent_offer;
/* Is s a valid skill (or agent name up to 31 bytes)? */
int a2a_skill_ok(const char *s);
/* Does o sell what want names: its agent name, or one of its skills? */
int a2a_offer_matches(const a2a_agent_offer *o, const char *want);
/* What a task costs: price_wei + ceil(tokens * price_1k / 1000), never above max_wei (the
 * caller's budget caps a per-token price); saturates instead of overflowing. */
uint64_t a2a_cost(uint64_t price_wei, uint64_t price_1k, int64_t tokens, uint64_t max_wei);
/* [{name, description, price_wei, price_per_1k?, skills}] (owned). */
json_t *a2a_agents_to_json(const a2a_agent_offer *a, size_t n);
/* Untrusted list; entries that do not parse are skipped (bad skills too), at most cap
 * kept. 0 with *n_out, or ERR_FORMAT when it is not a list. */
int a2a_agents_from_json(const json_t *list, a2a_agent_offer *out, size_t cap, size_t *n_out);
/* The compact form in the node's signed DHT record (key "a"; no descriptions):
 *   l d 1:n <name> 1:p i<price_wei>e 1:s l <skill>... e [1:t i<price_per_1k>e] e ... e
 * Agents priced above INT64_MAX are left out. Errors stick in w->err. */
#include "p2p/bencode.h"
void a2a_agents_to_ben(ben_w *w, const a2a_agent_offer *a, size_t n);
/* A decoded record's "a" list (untrusted); bad entries skipped, at most cap kept. 0 or
 * ERR_FORMAT (not a list). */
int a2a_agents_from_ben(const ben_node *list, a2a_agent_offer *out, size_t cap, size_t *n_out);

/* The node's A2A agent card (GET /.well-known/agent-card.json): one skill per agent for
 * sale, its price in skill.metadata.apiary {price_wei, per: "task", price_per_1k?}. url is
 * "apiary:NODE_ID": tasks go over the node's Noise link, not HTTP. Owned. */
json_t *a2a_card_json(const char *node_name, const char *node_id, const char *version, const a2a_agent_offer *a,
                      size_t n);

/* What a paid task's receipts (market/receipt) name as their model: sha256("agent:" name). */
void a2a_agent_model(const char *agent, uint8_t out[32]);

/* A wei amount: a decimal string (at most 20 digits) or a non-negative integer. */
int a2a_wei_parse(const json_t *v, uint64_t *out);

#endif
