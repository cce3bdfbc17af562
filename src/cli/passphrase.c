/* cli/passphrase — reading the owner's passphrase: from a file (--passphrase-file F, which
 * must be private like a key file), else from an environment variable, else a prompt on
 * the terminal with echo off. Never from argv (it would show in `ps` and shell history).
 * The text lands in a caller's buffer (sodium_malloc'd by cli_passphrase_new) and is wiped
 * by cli_passphrase_free. cli_unlock_keys hands the key files' passphrase to crypto/keyfile
 * when identity.key or wallet.key is encrypted at rest. Main thread only. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"
#include "crypto/ident.h"
#include "crypto/keyfile.h"
#include "crypto/wallet.h"
#include "node/home.h"

static int prompt_tty(const char *prompt, char *out, size_t cap) {
  FILE *tty = fopen("/dev/tty", "r+");
  if (!tty) return ERR_NOTFOUND;
  struct termios old, quiet;
  int fd = fileno(tty), have = tcgetattr(fd, &old) == 0;
  if (have) {
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  fputs(prompt, tty);
  fflush(tty);
  int rc = fgets(out, (int)cap, tty) ? 0 : ERR_CANCELED;
  if (have) tcsetattr(fd, TCSAFLUSH, &old);
  fclose(tty);
  return rc;
}

static size_t trim(char *s) {
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
  return n;
}

char *cli_passphrase_new(void) {
  if (sodium_init() < 0) return NULL;
  char *p = sodium_malloc(CLI_PASS_CAP);
  if (p) memset(p, 0, CLI_PASS_CAP);
  return p;
}

void cli_passphrase_free(char *p) {
  if (p) sodium_free(p);
}

int cli_passphrase(const char *env, const char *file, const char *prompt, int confirm, char *out, size_t *len_out) {
  if (file) {
    int rc = fs_check_private(file);
    if (rc == ERR_PERM) {
      log_error("%s is readable by others; chmod 600 it", file);
      return CLI_FAIL;
    }
    buf b;
    buf_init(&b);
    rc = fs_read_file(file, CLI_PASS_CAP - 1, &b);
    if (!rc && b.len) memcpy(out, b.ptr, b.len);
    if (!rc) out[b.len] = 0;
    if (b.ptr) sodium_memzero(b.ptr, b.cap);
    buf_deinit(&b);
    if (rc) {
      log_error("cannot read the passphrase from %s: %s", file, err_str(rc));
      return CLI_FAIL;
    }
    /* The first line: a file written with `echo` ends in a newline. */
    char *nl = strchr(out, '\n');
    if (nl) *nl = 0;
    *len_out = trim(out);
  } else if (env && getenv(env)) {
    const char *e = getenv(env);
    if (strlen(e) >= CLI_PASS_CAP) {
      log_error("$%s is too long (at most %d bytes)", env, CLI_PASS_CAP - 1);
      return CLI_FAIL;
    }
    snprintf(out, CLI_PASS_CAP, "%s", e);
    *len_out = strlen(out);
  } else {
    if (prompt_tty(prompt, out, CLI_PASS_CAP)) {
      log_error("no passphrase: set $%s, pass --passphrase-file F, or run on a terminal", env ? env : "APIARY_PASSPHRASE");
      return CLI_FAIL;
    }
    *len_out = trim(out);
    if (confirm) {
      char *again = cli_passphrase_new();
      if (!again) return CLI_FAIL;
      int rc = prompt_tty("again: ", again, CLI_PASS_CAP);
      trim(again);
      int same = !rc && !strcmp(again, out);
      cli_passphrase_free(again);
      if (!same) {
        log_error("the passphrases differ");
        return CLI_FAIL;
      }
    }
  }
  if (*len_out == 0) {
    log_error("the passphrase is empty");
    return CLI_FAIL;
  }
  return CLI_OK;
}

int cli_unlock_keys(const home_paths *p, const char *pass_file) {
  int ei = keyfile_is_encrypted(p->identity), ew = keyfile_is_encrypted(p->wallet);
  if (ei != 1 && ew != 1) return CLI_OK; /* plain keys (or none): nothing to unlock */
  char *pass = cli_passphrase_new();
  size_t n = 0;
  if (!pass) return CLI_FAIL;
  int rc = cli_passphrase(KEYS_PASS_ENV, pass_file, "key passphrase: ", 0, pass, &n);
  if (!rc && keyfile_unlock(pass, n)) rc = CLI_FAIL;
  cli_passphrase_free(pass);
  if (rc) return rc;
  /* Check it now, so a wrong passphrase is one clear message. */
  uint8_t sk[32];
  int lr = keyfile_load(ei == 1 ? p->identity : p->wallet, ei == 1 ? IDENT_FILE_KIND : WALLET_FILE_KIND, sk, sizeof sk);
  sodium_memzero(sk, sizeof sk);
  if (lr == ERR_LOCKED) {
    keyfile_lock();
    log_error("wrong key passphrase for %s", ei == 1 ? p->identity : p->wallet);
    return CLI_FAIL;
  }
  return CLI_OK;
}
