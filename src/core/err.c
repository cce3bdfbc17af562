/* core/err — names for project error codes and -errno values. */
#include "core/err.h"

#include <stdio.h>

#include <string.h>

const char *err_str(int rc) {
  switch (rc) {
  case 0: return "ok";
  case ERR_INVAL: return "invalid argument";
  case ERR_NOMEM: return "out of memory";
  case ERR_EXISTS: return "already exists";
  case ERR_NOTFOUND: return "not found";
  case ERR_FORMAT: return "malformed input";
  case ERR_TOOBIG: return "input too large";
  case ERR_CRYPTO: return "cryptographic failure";
  case ERR_STORE: return "database error";
  case ERR_SCHEMA: return "database schema is newer than this program";
  case ERR_CONFIG: return "config error";
  case ERR_PERM: return "unsafe file permissions";
  case ERR_UNSUPPORTED: return "not supported";
  case ERR_CANCELED: return "canceled";
  case ERR_RANGE: return "value out of range";
  case ERR_CHAIN: return "chain unreachable or failed";
  case ERR_REVERTED: return "chain call reverted";
  case ERR_UNKNOWN_CHANNEL: return "unknown payment channel";
  case ERR_WRONG_CHAIN: return "voucher for another chain or escrow contract";
  case ERR_BAD_SIGNATURE: return "malformed voucher signature";
  case ERR_WRONG_SIGNER: return "voucher not signed by the channel's signer";
  case ERR_REPLAY: return "voucher already accepted (replay)";
  case ERR_DECREASE: return "voucher amount below the last accepted one";
  case ERR_OVERSPEND: return "voucher amount exceeds the channel deposit";
  case ERR_EXPIRED: return "channel expired, closed or about to expire";
  case ERR_BUSY: return "busy: one is already in progress";
  case ERR_LOCKED: return "locked: the key file is encrypted and the passphrase is missing or wrong";
  default: break;
  }
  if (rc < 0 && rc > -4096) return strerror(-rc); /* glibc: thread-safe static strings */
  return "unknown error";
}

int err_vset(char *err, size_t cap, int rc, const char *fmt, va_list ap) {
  if (err && cap) vsnprintf(err, cap, fmt, ap);
  return rc;
}

int err_set(char *err, size_t cap, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  err_vset(err, cap, rc, fmt, ap);
  va_end(ap);
  return rc;
}
