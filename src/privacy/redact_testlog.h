/* privacy/redact_testlog — TEST ONLY: a provider's record of the prompts it received.
 *
 * When the environment variable APIARY_TEST_RECEIVED_PROMPTS names a file (it is unset,
 * and this does nothing, in any real deployment), a provider appends one JSON line per
 * `generate` request it receives from another node: {"prompt": ..., "messages": ...}, as
 * they arrived. tests/net/test_privacy_net.c uses it to check that a `redact` request
 * reached the provider with placeholders only, and that a refused `local-only` request
 * reached it not at all. It writes other people's prompts to disk: never set it on a node
 * that serves anyone but a test. Any thread (appends are one write each). */
#ifndef APIARY_PRIVACY_REDACT_TESTLOG_H
#define APIARY_PRIVACY_REDACT_TESTLOG_H

#include <jansson.h>

#define REDACT_TESTLOG_ENV "APIARY_TEST_RECEIVED_PROMPTS"

/* Borrows params (a peer's `generate` params). */
void redact_testlog_received(const json_t *params);

#endif
