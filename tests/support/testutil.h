/* tests/support/testutil — helpers shared by the cmocka suites.
 *
 * Test data: tu_shared() finds the project's reference data folder (../shared next to the
 * repository, or $APIARY_SHARED). Tests that need it call TU_REQUIRE_SHARED(), which skips
 * with a message when it is absent: the project never requires it, CI always has it. */
#ifndef APIARY_TESTUTIL_H
#define APIARY_TESTUTIL_H

#include <jansson.h>
#include <stddef.h>

/* Path of the shared reference folder, or NULL when there is none. */
const char *tu_shared(void);
/* Writes tu_shared()/rel into out. Returns 0 or -1 when there is no shared folder. */
int tu_shared_path(char *out, size_t cap, const char *rel);
/* Loads a JSON file (asserts on failure). Caller owns the result (json_decref). */
json_t *tu_load_json(const char *path);
/* Creates a fresh temporary directory; writes its path into out. */
void tu_tmpdir(char *out, size_t cap);
/* Removes a directory tree (used on tu_tmpdir results only). */
void tu_rm_rf(const char *path);
/* Path of the apiary binary under test (APIARY_BIN, set by tests/run). */
const char *tu_apiary_bin(void);
/* Runs the shell command, captures stdout into out (cap bytes, NUL-terminated) and stderr
 * into err (may be NULL). Returns the exit status (0-255), or -1 if it did not exit. */
int tu_run(const char *cmd, char *out, size_t cap, char *err, size_t err_cap);
/* Runs the apiary binary under test with the printf-style arguments (shell words, quote
 * them yourself), like tu_run; on a nonzero exit prints the command and its stderr (seen
 * only when the suite fails). Suites wrap it as
 *   #define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__) */
int tu_apiary(char *out, size_t cap, char *err, size_t err_cap, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The same with " --json" appended; returns the parsed stdout (caller owns it), or NULL
 * when the command failed or printed no JSON. */
json_t *tu_apiary_json(char *out, size_t cap, char *err, size_t err_cap, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Starts argv[0] with argv (NULL-terminated), stdout to /dev/null, stderr appended to
 * log_path (may be NULL). Returns the pid. */
#include <sys/types.h>
pid_t tu_spawn(const char *const argv[], const char *log_path);
/* Waits up to timeout_ms for pid; returns its exit status, 128+signal, or -1 on timeout
 * (the process is then killed). */
int tu_wait_exit(pid_t pid, int timeout_ms);
/* A block of span consecutive loopback ports (span <= 100), every one free for TCP and UDP
 * when checked, below the kernel's ephemeral range (32768+), so outgoing connections never
 * take them. tests/run runs suites side by side in lanes (APIARY_TEST_LANE of
 * APIARY_TEST_LANES); each lane draws from its own share of 20000-32700, so two suites
 * running at once never pick the same block. Returns the first port, or -1. */
int tu_port_block(int span);
/* Runs a shell command quietly; returns its exit status. */
/* Imports a hex secret as home's wallet through `wallet import --file` (never argv). */
int tu_wallet_import(const char *home, const char *hex_key);
int tu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define TU_REQUIRE_SHARED()                                                                 \
  do {                                                                                      \
    if (!tu_shared()) {                                                                     \
      print_message("shared/ test data not found (set APIARY_SHARED); skipping\n");         \
      skip();                                                                               \
    }                                                                                       \
  } while (0)

#endif
