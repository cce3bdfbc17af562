/* core/err — project error codes and their names.
 *
 * Convention (STYLE.md rule 4): functions return int; 0 is success, a positive value is a
 * count, a negative value is an error. Negative values in (-4096, 0) are raw -errno codes
 * passed through from the OS; project codes below live under -10000 so they never collide.
 * err_str() names both kinds. Thread-safe. */
#ifndef APIARY_CORE_ERR_H
#define APIARY_CORE_ERR_H

enum {
  ERR_INVAL = -10001,     /* bad argument or value */
  ERR_NOMEM = -10002,     /* allocation failed */
  ERR_EXISTS = -10003,    /* refusing to overwrite something that exists */
  ERR_NOTFOUND = -10004,  /* a file, key or record is missing */
  ERR_FORMAT = -10005,    /* malformed input (file, frame, message) */
  ERR_TOOBIG = -10006,    /* input over a hard size cap */
  ERR_CRYPTO = -10007,    /* key invalid or crypto library failure */
  ERR_STORE = -10008,     /* SQLite error */
  ERR_SCHEMA = -10009,    /* database schema newer than this binary */
  ERR_CONFIG = -10010,    /* config file error (details in the config error buffer) */
  ERR_PERM = -10011,      /* file permissions unsafe */
  ERR_UNSUPPORTED = -10012, /* feature or type not supported */
  ERR_CANCELED = -10013,  /* operation canceled */
  ERR_RANGE = -10014,     /* value out of range */
  ERR_CHAIN = -10015,     /* the chain is unreachable or answered with an error */
  ERR_REVERTED = -10016,  /* a chain transaction or call reverted */
  ERR_UNKNOWN_CHANNEL = -10017, /* payment channel not known (locally or on chain) */
  ERR_WRONG_CHAIN = -10018,     /* voucher for another chain id or escrow contract */
  ERR_BAD_SIGNATURE = -10019,   /* voucher signature malformed */
  ERR_WRONG_SIGNER = -10020,    /* voucher signed by a key that is not the channel's signer */
  ERR_REPLAY = -10021,          /* voucher amount equal to the last accepted one */
  ERR_DECREASE = -10022,        /* voucher amount below the last accepted one */
  ERR_OVERSPEND = -10023,       /* voucher amount above the channel's deposit */
  ERR_EXPIRED = -10024,         /* channel expired, closed or too close to expiry */
  ERR_BUSY = -10025,            /* one is already in progress: try again after it */
  ERR_LOCKED = -10026,          /* an encrypted key file and no (or a wrong) passphrase */
};

#include <stdarg.h>
#include <stddef.h>

/* Returns a static string naming rc (a project code or -errno). Never NULL. */
const char *err_str(int rc);

/* Writes a message into a caller's error buffer (err may be NULL or cap 0: then nothing
 * is written) and returns rc, for `return err_set(err, cap, ERR_FORMAT, "bad %s", x);`. */
int err_set(char *err, size_t cap, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int err_vset(char *err, size_t cap, int rc, const char *fmt, va_list ap);

#endif
