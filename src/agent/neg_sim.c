/* agent/neg_sim — in-process self-play (see neg_sim.h). */
#include "agent/neg_sim.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"

int neg_sim_run(const neg_scenario *s, const neg_sim_cfg *cfg, neg_sim_result *out) {
  memset(out, 0, sizeof *out);
  neg_engine *e[2] = {NULL, NULL};
  int rc = 0;
  /* Simulated node identities, so confidential issues travel sealed as on the network. */
  ident id[2];
  neg_seal_keys keys[2];
  uint8_t xpk[2][32];
  for (int k = 0; k < 2; k++) {
    uint8_t seed[32] = {(uint8_t)(k + 1), 's', 'i', 'm'};
    if (ident_from_seed(seed, &id[k]) || neg_seal_keys_from_ident(&id[k], &keys[k]) || neg_seal_peer_key(id[k].pk, xpk[k])) {
      rc = ERR_CRYPTO;
      goto done;
    }
  }
  for (int k = 0; k < 2; k++) {
    neg_engine_cfg ec = {.dom = &s->dom, .mandate = &s->side[k], .strategy = cfg->strategy[k],
                         .seed = cfg->seed * 2 + (uint64_t)k, .opener = k == 0, .keys = &keys[k], .peer_xpk = xpk[1 - k],
                         .propose_cb = cfg->propose_cb[k], .propose_ud = cfg->propose_ud[k]};
    for (int b = 0; b < NEG_SESSION_BYTES; b++) ec.session[b] = (uint8_t)(cfg->seed >> (8 * (b % 8)));
    if ((rc = neg_engine_new(&ec, &e[k]))) goto done;
  }
  uint64_t now = 1700000000000ull;
  neg_action a;
  if ((rc = neg_engine_start(e[0], now, &a))) goto done;
  int from = 0;
  while (a.send) {
    neg_msg m = a.msg;
    out->rounds = m.round + 1;
    if (cfg->sent_cb) cfg->sent_cb(cfg->sent_ud, from, &m, now);
    if (cfg->wire) {
      json_t *j = neg_engine_encode(e[from], &m);
      char err[160];
      rc = j ? neg_engine_decode(e[1 - from], j, &m, err, sizeof err) : ERR_NOMEM;
      json_decref(j);
      if (rc) goto done;
    }
    if (a.done && neg_engine_outcome(e[from])->status == NEG_NO_DEAL)
      snprintf(out->reason, sizeof out->reason, "%s: %s", s->side_name[from], neg_engine_outcome(e[from])->reason);
    now += 10;
    from = 1 - from;
    if ((rc = neg_engine_on_message(e[from], &m, now, &a))) goto done;
  }
  const neg_outcome *o0 = neg_engine_outcome(e[0]), *o1 = neg_engine_outcome(e[1]);
  if (o0->status == NEG_AGREED && o1->status == NEG_AGREED && !memcmp(&o0->bid, &o1->bid, sizeof o0->bid)) {
    out->agreed = 1;
    out->bid = o0->bid;
    out->u[0] = o0->utility;
    out->u[1] = o1->utility;
  } else if (!out->reason[0])
    snprintf(out->reason, sizeof out->reason, "%s", o0->reason[0] ? o0->reason : o1->reason);
done:
  for (int k = 0; k < 2; k++) {
    ident_wipe(&id[k]);
    neg_seal_keys_wipe(&keys[k]);
    if (e[k]) out->refusals[k] = neg_engine_refusals(e[k]);
    neg_engine_free(e[k]);
  }
  return rc;
}
