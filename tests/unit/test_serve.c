/* market/serve — the seller's engine driven by hand, every state and timeout without a
 * process: free and paid answers, the credit window (allowance = covered + credit), a
 * client that stops paying (stopped after pay_timeout, receipt "unpaid"), the final
 * payment (receipt "complete", slot freed) or its timeout, duplicate request ids,
 * max_concurrent, a client's stop, a closed link, a failed stream, shutdown, deadlines.
 * Prices are chosen so costs are plain to compute by hand: 1000 wei per 1k prompt tokens
 * (1 wei a token) and 2000 per 1k generated (2 wei a token). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "market/serve.h"

#define CREDIT 8
#define TIMEOUT 1000

static mkt_serve sv;
static const uint8_t ME[32] = {0xee};

static mkt_serve_req req(uint8_t id, int priced, uint64_t link) {
  mkt_serve_req r;
  memset(&r, 0, sizeof r);
  memset(r.request, id, 16);
  memset(r.client, 0xc1, 32);
  memset(r.model, 0x11, 32);
  r.link = link;
  r.max_concurrent = 2;
  if (priced) {
    r.has_channel = 1;
    memset(r.channel, 0xcc, 32);
    r.price_prompt = 1000;
    r.price_gen = 2000;
  }
  return r;
}

/* Reads the next action, which must be of kind. */
static mkt_serve_action next(mkt_serve_act kind) {
  mkt_serve_action a;
  if (!mkt_serve_poll(&sv, &a)) fail_msg("expected action %d, got none", kind);
  if (a.kind != kind) fail_msg("expected action %d, got %d", kind, a.kind);
  return a;
}

static void none(void) {
  mkt_serve_action a;
  if (mkt_serve_poll(&sv, &a)) fail_msg("unexpected action %d", a.kind);
}

static int admit(uint8_t id, int priced, uint64_t link) {
  mkt_serve_req r = req(id, priced, link);
  int slot;
  const char *why;
  assert_int_equal(mkt_serve_admit(&sv, &r, &slot, &why), 0);
  return slot;
}

static void test_free_answer(void **state) {
  (void)state;
  mkt_serve_init(&sv, ME, CREDIT, TIMEOUT);
  int s = admit(1, 0, 7);
  mkt_receipt r;
  mkt_serve_receipt(&sv, s, "partial", &r);
  assert_memory_equal(r.provider, ME, 32);
  assert_false(r.has_channel);
  mkt_serve_started(&sv, s, 100);
  assert_int_equal(next(MKT_SV_ALLOW).tokens, -1); /* free: no limit */
  none();
  mkt_serve_progress(&sv, s, 5, 3, 150);
  none();
  mkt_serve_job_end(&sv, s, LOCAL_LENGTH, 5, 4, NULL, 0, 200);
  mkt_serve_action a = next(MKT_SV_ANSWER);
  assert_int_equal(a.finish, LOCAL_LENGTH);
  assert_int_equal(a.pt, 5);
  assert_int_equal(a.gt, 4);
  assert_int_equal(a.cost, 0);
  a = next(MKT_SV_RECEIPT);
  assert_string_equal(a.receipt.status, "complete");
  assert_int_equal(a.receipt.gen_tokens, 4);
  next(MKT_SV_FREE);
  none();
  assert_int_equal(mkt_serve_active(&sv, NULL), 0);
  assert_int_equal(mkt_serve_next_deadline(&sv), UINT64_MAX);
}

static void test_credit_window_and_final_payment(void **state) {
  (void)state;
  mkt_serve_init(&sv, ME, CREDIT, TIMEOUT);
  int s = admit(2, 1, 7);
  mkt_serve_started(&sv, s, 1000);
  assert_int_equal(next(MKT_SV_ALLOW).tokens, CREDIT); /* nothing paid: the credit window */
  mkt_serve_progress(&sv, s, 10, 0, 1010); /* the prompt (10 tokens = 10 wei) is on credit */
  none();
  uint8_t rq[16], ch[32];
  memset(rq, 2, 16);
  memset(ch, 0xcc, 32);
  /* 10 wei for the prompt + 2 per token: 30 wei covers 10 tokens */
  assert_int_equal(mkt_serve_paid(&sv, rq, ch, 30, 1100), s);
  assert_int_equal(next(MKT_SV_ALLOW).tokens, 10 + CREDIT);
  none();
  /* a payment on another channel, or for an unknown request, is not this slot's */
  uint8_t other[32];
  memset(other, 0xdd, 32);
  assert_int_equal(mkt_serve_paid(&sv, rq, other, 5, 1100), -1);
  uint8_t unknown[16] = {9};
  assert_int_equal(mkt_serve_paid(&sv, unknown, ch, 5, 1100), -1);
  /* the job reaches its allowance and waits */
  mkt_serve_progress(&sv, s, 10, 10 + CREDIT, 1200);
  assert_int_equal(mkt_serve_next_deadline(&sv), 1200 + TIMEOUT + 1);
  mkt_serve_tick(&sv, 1200 + TIMEOUT); /* not yet */
  none();
  mkt_serve_tick(&sv, 1200 + TIMEOUT + 1);
  mkt_serve_action a = next(MKT_SV_ERROR);
  assert_int_equal(a.code, MKT_E_UNPAID);
  next(MKT_SV_CANCEL_JOB);
  a = next(MKT_SV_RECEIPT);
  assert_string_equal(a.receipt.status, "unpaid");
  assert_int_equal(a.receipt.gen_tokens, 10 + CREDIT);
  none(); /* paid 30 of 46 wei: the slot waits for the rest */
  assert_int_equal(mkt_serve_active(&sv, NULL), 0);
  /* the rest arrives: complete, freed */
  assert_int_equal(mkt_serve_paid(&sv, rq, ch, 16, 2500), s);
  a = next(MKT_SV_RECEIPT);
  assert_string_equal(a.receipt.status, "complete");
  next(MKT_SV_FREE);
  none();
}

static void test_answer_then_payment_timeout(void **state) {
  (void)state;
  mkt_serve_init(&sv, ME, CREDIT, TIMEOUT);
  int s = admit(3, 1, 7);
  mkt_serve_started(&sv, s, 0);
  next(MKT_SV_ALLOW);
  mkt_serve_job_end(&sv, s, LOCAL_STOP, 10, 5, NULL, 0, 500);
  mkt_serve_action a = next(MKT_SV_ANSWER);
  assert_int_equal(a.cost, 20); /* 10 + 5 * 2 */
  assert_int_equal(a.price_gen, 2000);
  a = next(MKT_SV_RECEIPT);
  assert_string_equal(a.receipt.status, "unpaid");
  none();
  assert_int_equal(mkt_serve_next_deadline(&sv), 500 + TIMEOUT + 1);
  mkt_serve_tick(&sv, 500 + TIMEOUT + 1); /* the final payment never came */
  a = next(MKT_SV_FREE);
  assert_non_null(strstr(a.message, "0 of 20 wei"));
  uint8_t rq[16];
  memset(rq, 3, 16);
  assert_memory_equal(a.receipt.request, rq, 16);
  none();
}

static void test_admission(void **state) {
  (void)state;
  mkt_serve_init(&sv, ME, CREDIT, TIMEOUT);
  int s1 = admit(4, 0, 7);
  mkt_serve_req r = req(4, 0, 7);
  int slot;
  const char *why;
  assert_int_equal(mkt_serve_admit(&sv, &r, &slot, &why), RPC_INVALID_PARAMS); /* id in use */
  admit(5, 0, 7);
  r = req(6, 0, 7);
  assert_int_equal(mkt_serve_admit(&sv, &r, &slot, &why), RPC_BUSY); /* max_concurrent 2 */
  assert_non_null(strstr(why, "busy"));
  r.max_concurrent = 3;
  memset(r.model, 0x22, 32); /* another model has its own slots */
  assert_int_equal(mkt_serve_admit(&sv, &r, &slot, &why), 0);
  mkt_serve_abort(&sv, slot); /* the glue could not record it: gone, nothing emitted */
  none();
  assert_int_equal(mkt_serve_active(&sv, NULL), 2);
  /* once a request ended, its id may be used again (a retry) */
  mkt_serve_started(&sv, s1, 0);
  next(MKT_SV_ALLOW);
  mkt_serve_job_end(&sv, s1, LOCAL_STOP, 1, 1, NULL, 0, 10);
  while (mkt_serve_poll(&sv, &(mkt_serve_action){0})) {}
  r = req(4, 0, 7);
  assert_int_equal(mkt_serve_admit(&sv, &r, &slot, &why), 0);
}

static void test_stop_link_failure_shutdown(void **state) {
  (void)state;
  mkt_serve_init(&sv, ME, CREDIT, TIMEOUT);
  int a1 = admit(7, 0, 1), a2 = admit(8, 1, 2);
  mkt_serve_started(&sv, a1, 0);
  mkt_serve_started(&sv, a2, 0);
  next(MKT_SV_ALLOW);
  next(MKT_SV_ALLOW);
  /* stop: only the request's own client */
  uint8_t rq[16], stranger[32], client[32];
  memset(rq, 7, 16);
  memset(stranger, 0x99, 32);
  memset(client, 0xc1, 32);
  assert_int_equal(mkt_serve_stop(&sv, rq, stranger, 5), 0);
  none();
  assert_int_equal(mkt_serve_stop(&sv, rq, client, 5), 1);
  mkt_serve_action a = next(MKT_SV_ERROR);
  assert_int_equal(a.code, RPC_REQUEST_CANCELLED);
  next(MKT_SV_CANCEL_JOB);
  assert_string_equal(next(MKT_SV_RECEIPT).receipt.status, "complete"); /* free and nothing owed */
  next(MKT_SV_FREE);
  none();
  /* the link of the paid one closes: no answer can go out, the job stops */
  mkt_serve_progress(&sv, a2, 4, 2, 10);
  mkt_serve_link_closed(&sv, 2, 20);
  next(MKT_SV_CANCEL_JOB);
  assert_string_equal(next(MKT_SV_RECEIPT).receipt.status, "partial");
  none(); /* owed 8 wei, paid 0: waits for a payment (a resent voucher may still come) */
  mkt_serve_link_closed(&sv, 2, 30); /* its link is gone for good: forgotten */
  next(MKT_SV_FREE);
  none();
  /* a stream that cannot be written */
  int a3 = admit(9, 0, 3);
  mkt_serve_started(&sv, a3, 0);
  next(MKT_SV_ALLOW);
  mkt_serve_stream_failed(&sv, a3, 40);
  next(MKT_SV_CANCEL_JOB);
  next(MKT_SV_RECEIPT);
  next(MKT_SV_FREE);
  none();
  /* shutdown: what runs is recorded as partial */
  int a4 = admit(10, 1, 4);
  mkt_serve_started(&sv, a4, 0);
  next(MKT_SV_ALLOW);
  mkt_serve_shutdown(&sv);
  assert_string_equal(next(MKT_SV_RECEIPT).receipt.status, "partial");
  next(MKT_SV_CANCEL_JOB);
  next(MKT_SV_FREE);
  none();
  assert_int_equal(mkt_serve_active(&sv, NULL), 0);
}

static void test_job_error(void **state) {
  (void)state;
  mkt_serve_init(&sv, ME, CREDIT, TIMEOUT);
  int s = admit(11, 0, 1);
  mkt_serve_started(&sv, s, 0);
  next(MKT_SV_ALLOW);
  mkt_serve_job_end(&sv, s, LOCAL_ERROR, 3, 0, "the model file is unreadable", LOCAL_E_INTERNAL, 5);
  mkt_serve_action a = next(MKT_SV_ERROR);
  assert_int_equal(a.code, RPC_INTERNAL_ERROR);
  assert_null(a.data_code);
  assert_string_equal(a.message, "the model file is unreadable");
  next(MKT_SV_RECEIPT);
  next(MKT_SV_FREE);
  none();
  /* a prompt past the context is the request's fault: invalid params, with OpenAI's code */
  s = admit(12, 0, 1);
  mkt_serve_started(&sv, s, 0);
  next(MKT_SV_ALLOW);
  mkt_serve_job_end(&sv, s, LOCAL_ERROR, 5000, 0, "the prompt has 5000 tokens", LOCAL_E_CONTEXT, 6);
  a = next(MKT_SV_ERROR);
  assert_int_equal(a.code, RPC_INVALID_PARAMS);
  assert_string_equal(a.data_code, "context_length_exceeded");
  next(MKT_SV_RECEIPT);
  next(MKT_SV_FREE);
  none();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_free_answer),
      cmocka_unit_test(test_credit_window_and_final_payment),
      cmocka_unit_test(test_answer_then_payment_timeout),
      cmocka_unit_test(test_admission),
      cmocka_unit_test(test_stop_link_failure_shutdown),
      cmocka_unit_test(test_job_error),
  };
  return cmocka_run_group_tests_name("serve", tests, NULL, NULL);
}
