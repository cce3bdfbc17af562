/* cli/vault — `apiary vault ...`: the owner's encrypted secrets (privacy/vault), their
 * grants and audit log, and sharing an item with another node (privacy/share).
 *
 * Works on the node database directly (WAL: a running node may have it open too). The
 * passphrase comes from $APIARY_VAULT_PASSPHRASE, --passphrase-file F or a prompt; never
 * argv. Values come from --file F or stdin, never argv, and only `get` prints one (raw, to
 * stdout). Nothing secret is logged. Main thread only. */
#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"
#include "node/home.h"
#include "privacy/audit.h"
#include "privacy/grant.h"
#include "privacy/share.h"
#include "privacy/vault.h"

#define PASS_ENV "APIARY_VAULT_PASSPHRASE"

static const char usage[] =
    "usage: apiary vault [--home DIR] [--json] [--passphrase-file F] COMMAND ...\n\n"
    "  init                          create the vault (asks for a new passphrase)\n"
    "  put NAME [--file F] [--replace]  store a secret read from F or stdin\n"
    "  get NAME                      print a secret (raw bytes) to stdout\n"
    "  list                          names, sizes and origins (no values)\n"
    "  rm NAME                       delete a secret and revoke its grants\n"
    "  grant ITEM --to SUBJECT --purpose P --until T\n"
    "                                let SUBJECT (an agent name, a node id, or * for any\n"
    "                                local agent) use ITEM for P until T\n"
    "  revoke GRANT_ID               end a grant now\n"
    "  grants                        every grant, live or not\n"
    "  use ITEM --as SUBJECT --purpose P   check (and audit) a use, as an agent would\n"
    "  audit [--verify]              the audit log; --verify checks its hash chain\n"
    "  share ITEM --to NODE_ID --purpose P --until T [--out F] [--send]\n"
    "                                seal ITEM for another node (default out: ITEM.apve);\n"
    "                                --send: the running node delivers it over the link\n"
    "  import F [--as NAME]          open an envelope sealed for this node into the vault\n"
    "  import --inbox                import every envelope other nodes delivered\n\n"
    "T is unix seconds or +N with s, m, h or d (+30m, +7d). The passphrase comes from\n"
    "$" PASS_ENV ", --passphrase-file F (mode 600) or a prompt, never the command line.\n"
    "Items are sealed with XChaCha20-Poly1305 under an Argon2id key (docs/privacy.md).\n";

typedef struct opts {
  cli_common c;
  const char *pass_file, *file, *to, *purpose, *until, *out, *as;
  int verify, replace, send, inbox;
} opts;

enum { O_PASSF = 1, O_FILE, O_TO, O_PURPOSE, O_UNTIL, O_OUT, O_AS, O_VERIFY, O_REPLACE, O_SEND, O_INBOX };

static int parse_time(const char *s, int64_t now, int64_t *out) {
  if (!s || !*s) return -1;
  char *end;
  if (*s == '+') {
    long long n = strtoll(s + 1, &end, 10);
    long long mul = !*end || !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60 : !strcmp(end, "h") ? 3600
                                                 : !strcmp(end, "d") ? 86400 : 0;
    if (end == s + 1 || n <= 0 || !mul || n > 100LL * 365 * 86400 / mul) return -1;
    *out = now + n * mul;
    return 0;
  }
  long long v = strtoll(s, &end, 10);
  if (*end || v <= 0) return -1;
  *out = v;
  return 0;
}

static int open_store(opts *o, home_paths *p, store **s) {
  char err[512];
  if (cli_home_paths(&o->c, p)) return CLI_FAIL;
  if (fs_exists(p->identity) != 1) {
    log_error("no node at %s; run apiary init first", p->dir);
    return CLI_FAIL;
  }
  int rc = home_open_store(p, s, err, sizeof err);
  if (rc) {
    log_error("cannot open %s: %s", p->db, err);
    return CLI_FAIL;
  }
  return CLI_OK;
}

static int open_vault(opts *o, store *s, int create, vault **v) {
  int ex = vault_exists(s);
  if (ex < 0) { log_error("cannot read the vault: %s", store_errmsg(s)); return CLI_FAIL; }
  if (create && ex) { log_error("this node already has a vault"); return CLI_FAIL; }
  if (!create && !ex) { log_error("no vault yet; create it with apiary vault init"); return CLI_FAIL; }
  char *pass = cli_passphrase_new();
  size_t n = 0;
  if (!pass) return CLI_FAIL;
  int rc = cli_passphrase(PASS_ENV, o->pass_file, create ? "new vault passphrase: " : "vault passphrase: ", create,
                          pass, &n);
  if (rc) { cli_passphrase_free(pass); return rc; }
  rc = create ? vault_create(s, pass, n, 0, 0, time(NULL), v) : vault_open(s, pass, n, v);
  cli_passphrase_free(pass);
  if (rc == ERR_CRYPTO) { log_error("wrong vault passphrase"); return CLI_FAIL; }
  if (rc) { log_error("cannot open the vault: %s", err_str(rc)); return CLI_FAIL; }
  return CLI_OK;
}

/* Reads a value from file or stdin into a sodium_malloc'd buffer. */
static int read_value(const char *file, uint8_t **out, size_t *len) {
  FILE *f = file ? fopen(file, "rb") : stdin;
  if (!f) { log_error("cannot open %s", file); return CLI_FAIL; }
  uint8_t *b = sodium_malloc(VAULT_VALUE_MAX + 1);
  size_t n = b ? fread(b, 1, VAULT_VALUE_MAX + 1, f) : 0;
  if (file) fclose(f);
  if (!b) return CLI_FAIL;
  if (n > VAULT_VALUE_MAX) {
    sodium_free(b);
    log_error("the value is over %d bytes", VAULT_VALUE_MAX);
    return CLI_FAIL;
  }
  *out = b;
  *len = n;
  return CLI_OK;
}

static int fail_rc(const char *what, const char *name, int rc) {
  const char *why = rc == ERR_NOTFOUND ? "not found" : rc == ERR_EXISTS ? "exists (pass --replace to overwrite)"
                  : rc == ERR_PERM ? "is a shared item: it is used only under the grant it came with"
                  : rc == ERR_EXPIRED ? "expired or revoked" : rc == ERR_INVAL ? "bad name or argument"
                  : err_str(rc);
  log_error("%s %s: %s", what, name, why);
  return CLI_FAIL;
}

static int cmd_share(opts *o, const home_paths *p, vault *v, const char *item) {
  uint8_t to[IDENT_PK_BYTES];
  int64_t now = time(NULL), until;
  if (!o->to || ident_id_decode(o->to, strlen(o->to), to)) return cli_usage_error("vault", "share needs --to NODE_ID (a valid node id)");
  if (!o->purpose || parse_time(o->until, now, &until) || until <= now)
    return cli_usage_error("vault", "share needs --purpose P and a future --until T");
  ident me;
  if (cli_unlock_keys(p, NULL)) return CLI_FAIL;
  int rc = ident_load(p->identity, &me);
  if (rc) { log_error("cannot load %s: %s", p->identity, err_str(rc)); return CLI_FAIL; }
  uint8_t *val = NULL;
  size_t len = 0;
  buf env;
  buf_init(&env);
  rc = vault_get(v, item, now, &val, &len);
  if (rc) { ident_wipe(&me); return fail_rc("share", item, rc); }
  rc = share_seal(&me, to, item, o->purpose, until, now, val, len, &env);
  vault_value_free(val, len);
  ident_wipe(&me);
  char out[HOME_PATH_MAX + 16];
  snprintf(out, sizeof out, "%s", o->out ? o->out : item);
  if (!o->out) strncat(out, ".apve", sizeof out - strlen(out) - 1);
  if (!rc) rc = fs_write_atomic(out, env.ptr, env.len, 0600, 0);
  if (rc) { buf_deinit(&env); return fail_rc("share", item, rc); }
  vault_audit(v, now, "share", item, o->to, o->purpose, "ok: sealed");
  if (o->send) {
    size_t bl = sodium_base64_ENCODED_LEN(env.len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(bl);
    if (!b64) { buf_deinit(&env); return CLI_FAIL; }
    sodium_bin2base64(b64, bl, env.ptr, env.len, sodium_base64_VARIANT_ORIGINAL);
    json_t *res = NULL;
    rc = cli_ctl_call(&o->c, "vault.send", json_pack("{s:s, s:s}", "to", o->to, "env", b64), &res);
    free(b64);
    json_decref(res);
    if (rc) { buf_deinit(&env); log_error("the envelope is in %s; hand it over another way", out); return CLI_FAIL; }
    vault_audit(v, time(NULL), "share", item, o->to, o->purpose, "ok: delivered over the link");
  }
  buf_deinit(&env);
  if (o->c.json)
    return cli_print_json(json_pack("{s:s, s:s, s:I, s:b}", "file", out, "to", o->to, "expires", (json_int_t)until,
                                    "delivered", o->send));
  printf("%s (for %s until %lld)%s\n", out, o->to, (long long)until, o->send ? ", delivered" : "");
  return CLI_OK;
}

static int import_one(opts *o, const home_paths *p, vault *v, const char *file, json_t *json_out) {
  buf b;
  buf_init(&b);
  int rc = fs_read_file(file, SHARE_ENVELOPE_MAX, &b);
  if (rc) { buf_deinit(&b); log_error("cannot read %s: %s", file, err_str(rc)); return CLI_FAIL; }
  ident me;
  if (cli_unlock_keys(p, NULL)) { buf_deinit(&b); return CLI_FAIL; }
  if ((rc = ident_load(p->identity, &me))) {
    buf_deinit(&b);
    log_error("cannot load %s: %s", p->identity, err_str(rc));
    return CLI_FAIL;
  }
  share_item it;
  int64_t now = time(NULL);
  rc = share_open(&me, b.ptr, b.len, now, &it);
  ident_wipe(&me);
  buf_deinit(&b);
  if (rc) {
    log_error("cannot import %s: %s", file, rc == ERR_PERM ? "it is sealed for another node"
                                            : rc == ERR_EXPIRED ? "it has expired"
                                            : rc == ERR_CRYPTO ? "it does not open or its signature is bad"
                                            : err_str(rc));
    return CLI_FAIL;
  }
  char from[IDENT_ID_BUF];
  ident_id_encode(it.sender, from);
  char name[VAULT_NAME_MAX + 1];
  snprintf(name, sizeof name, "%s", o->as ? o->as : it.name);
  rc = vault_put_shared(v, name, it.value, it.value_len, from, it.purpose, it.expires, now);
  int64_t exp = it.expires;
  char purpose[GRANT_TEXT_MAX + 1];
  snprintf(purpose, sizeof purpose, "%s", it.purpose);
  share_item_deinit(&it);
  if (rc == ERR_EXISTS) {
    log_error("import: an item named %s exists; import under another name with --as NAME", name);
    return CLI_FAIL;
  }
  if (rc) return fail_rc("import", name, rc);
  if (json_out)
    json_array_append_new(json_out, json_pack("{s:s, s:s, s:s, s:I}", "name", name, "from", from, "purpose", purpose,
                                              "expires", (json_int_t)exp));
  else
    printf("%s from %s: usable for %s until %lld\n", name, from, purpose, (long long)exp);
  return CLI_OK;
}

/* One envelope file, or (--inbox) every one the node received; imported ones are removed
 * from the inbox. */
static int cmd_import(opts *o, const home_paths *p, vault *v, const char *file) {
  json_t *a = o->c.json ? json_array() : NULL;
  int rc = CLI_OK;
  if (file) {
    rc = import_one(o, p, v, file, a);
  } else {
    char dir[HOME_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/vault-inbox", p->dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
      size_t l = strlen(e->d_name);
      if (e->d_name[0] == '.' || l < 6 || strcmp(e->d_name + l - 5, ".apve")) continue;
      char f[HOME_PATH_MAX + 300];
      snprintf(f, sizeof f, "%s/%s", dir, e->d_name);
      if (import_one(o, p, v, f, a) == CLI_OK) { unlink(f); n++; }
      else rc = CLI_FAIL;
    }
    if (d) closedir(d);
    if (!a && n == 0 && rc == CLI_OK) printf("the inbox is empty\n");
  }
  if (a) {
    int prc = cli_print_json(a);
    return rc ? rc : prc;
  }
  return rc;
}

static int run(opts *o, const char *sub, int nargs, char **args) {
  home_paths p;
  store *s = NULL;
  vault *v = NULL;
  int rc = CLI_FAIL;
  int64_t now = time(NULL);
#define NEED(n, msg)                                                    \
  do {                                                                  \
    if (nargs != (n)) { rc = cli_usage_error("vault", msg); goto done; } \
  } while (0)
  if (open_store(o, &p, &s)) return CLI_FAIL;
  if (!strcmp(sub, "grants")) {
    NEED(0, "grants takes no argument");
    json_t *a;
    if (grant_list(s, now, &a)) { log_error("cannot list grants: %s", store_errmsg(s)); goto done; }
    if (o->c.json) { rc = cli_print_json(a); goto done; }
    size_t i;
    json_t *g;
    json_array_foreach(a, i, g)
      printf("%-4lld %-20s %-30s %-16s until %lld%s\n", (long long)json_integer_value(json_object_get(g, "id")),
             json_string_value(json_object_get(g, "item")), json_string_value(json_object_get(g, "subject")),
             json_string_value(json_object_get(g, "purpose")), (long long)json_integer_value(json_object_get(g, "expires")),
             json_integer_value(json_object_get(g, "revoked")) ? " (revoked)" : json_is_true(json_object_get(g, "live")) ? "" : " (expired)");
    json_decref(a);
    rc = CLI_OK;
    goto done;
  }
  if (!strcmp(sub, "audit") && !o->verify) {
    NEED(0, "audit takes no argument");
    json_t *a;
    if (vault_audit_list(s, &a)) { log_error("cannot read the audit log: %s", store_errmsg(s)); goto done; }
    if (o->c.json) { rc = cli_print_json(a); goto done; }
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e)
      printf("%-5lld %lld %-7s %-20s %-30s %-16s %s\n", (long long)json_integer_value(json_object_get(e, "seq")),
             (long long)json_integer_value(json_object_get(e, "time")), json_string_value(json_object_get(e, "action")),
             json_string_value(json_object_get(e, "item")), json_string_value(json_object_get(e, "subject")),
             json_string_value(json_object_get(e, "purpose")), json_string_value(json_object_get(e, "outcome")));
    json_decref(a);
    rc = CLI_OK;
    goto done;
  }
  int create = !strcmp(sub, "init");
  static const char *const known[] = {"init", "put", "get", "list", "rm", "grant", "revoke", "use", "audit", "share", "import"};
  int ok = 0;
  for (size_t i = 0; i < sizeof known / sizeof *known; i++) ok |= !strcmp(sub, known[i]);
  if (!ok) { rc = cli_usage_error("vault", "unknown command %s", sub); goto done; }
  if (create) NEED(0, "init takes no argument");
  if (open_vault(o, s, create, &v)) goto done;
  if (create) {
    if (o->c.json) rc = cli_print_json(json_pack("{s:b}", "created", 1));
    else { printf("vault created in %s\n", p.db); rc = CLI_OK; }
  } else if (!strcmp(sub, "put")) {
    NEED(1, "put takes NAME (the value comes from --file F or stdin)");
    uint8_t *val;
    size_t len;
    if (read_value(o->file, &val, &len)) goto done;
    int r = vault_put(v, args[0], val, len, o->replace, now);
    vault_value_free(val, len);
    if (r) { rc = fail_rc("put", args[0], r); goto done; }
    if (o->c.json) rc = cli_print_json(json_pack("{s:s, s:I}", "name", args[0], "size", (json_int_t)len));
    else { printf("stored %s (%zu bytes)\n", args[0], len); rc = CLI_OK; }
  } else if (!strcmp(sub, "get")) {
    NEED(1, "get takes NAME");
    uint8_t *val;
    size_t len;
    int r = vault_get(v, args[0], now, &val, &len);
    if (r) { rc = fail_rc("get", args[0], r); goto done; }
    rc = fwrite(val, 1, len, stdout) == len && fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
    vault_value_free(val, len);
  } else if (!strcmp(sub, "list")) {
    NEED(0, "list takes no argument");
    json_t *a;
    if (vault_list(v, &a)) { log_error("cannot list: %s", store_errmsg(s)); goto done; }
    if (o->c.json) { rc = cli_print_json(a); goto done; }
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) {
      const char *origin = json_string_value(json_object_get(e, "origin"));
      printf("%-24s %6lld bytes%s%s\n", json_string_value(json_object_get(e, "name")),
             (long long)json_integer_value(json_object_get(e, "size")), *origin ? "  shared by " : "", origin);
    }
    json_decref(a);
    rc = CLI_OK;
  } else if (!strcmp(sub, "rm")) {
    NEED(1, "rm takes NAME");
    int r = vault_rm(v, args[0], now);
    if (r) { rc = fail_rc("rm", args[0], r); goto done; }
    if (o->c.json) rc = cli_print_json(json_pack("{s:s}", "removed", args[0]));
    else { printf("removed %s\n", args[0]); rc = CLI_OK; }
  } else if (!strcmp(sub, "grant")) {
    NEED(1, "grant takes ITEM --to SUBJECT --purpose P --until T");
    int64_t until, id;
    if (!o->to || !o->purpose || parse_time(o->until, now, &until) || until <= now) {
      rc = cli_usage_error("vault", "grant needs --to SUBJECT, --purpose P and a future --until T");
      goto done;
    }
    int r = vault_grant(v, args[0], o->to, o->purpose, until, now, &id);
    if (r) { rc = fail_rc("grant", args[0], r); goto done; }
    if (o->c.json) rc = cli_print_json(json_pack("{s:I, s:I}", "id", (json_int_t)id, "expires", (json_int_t)until));
    else { printf("grant %lld: %s may use %s for %s until %lld\n", (long long)id, o->to, args[0], o->purpose, (long long)until); rc = CLI_OK; }
  } else if (!strcmp(sub, "revoke")) {
    NEED(1, "revoke takes GRANT_ID");
    long id;
    if (cli_parse_long(args[0], 1, 0x7fffffffL, &id)) { rc = cli_usage_error("vault", "bad grant id %s", args[0]); goto done; }
    int r = vault_revoke(v, id, now);
    if (r) { rc = fail_rc("revoke grant", args[0], r); goto done; }
    if (o->c.json) rc = cli_print_json(json_pack("{s:I}", "revoked", (json_int_t)id));
    else { printf("revoked grant %ld\n", id); rc = CLI_OK; }
  } else if (!strcmp(sub, "use")) {
    NEED(1, "use takes ITEM --as SUBJECT --purpose P");
    if (!o->as || !o->purpose) { rc = cli_usage_error("vault", "use needs --as SUBJECT and --purpose P"); goto done; }
    int r = vault_use(v, args[0], o->as, o->purpose, now, NULL, NULL);
    if (o->c.json) { rc = cli_print_json(json_pack("{s:b}", "allowed", r == 0)); if (r) rc = CLI_FAIL; goto done; }
    if (r == ERR_NOTFOUND) { log_error("use %s: denied (no grant for %s and %s, or no such item)", args[0], o->as, o->purpose); goto done; }
    if (r) { rc = fail_rc("use", args[0], r); goto done; }
    printf("allowed\n");
    rc = CLI_OK;
  } else if (!strcmp(sub, "audit")) {
    NEED(0, "audit takes no argument");
    int64_t n, bad;
    char err[256] = "";
    int r = vault_audit_verify(v, &n, &bad, err, sizeof err);
    if (o->c.json) {
      rc = cli_print_json(r ? json_pack("{s:b, s:I, s:s}", "ok", 0, "bad_entry", (json_int_t)bad, "error", err)
                            : json_pack("{s:b, s:I}", "ok", 1, "entries", (json_int_t)n));
      if (r) rc = CLI_FAIL;
      goto done;
    }
    if (r) { log_error("the audit log is broken: %s", r == ERR_CRYPTO ? err : err_str(r)); goto done; }
    printf("audit log intact: %lld entries\n", (long long)n);
    rc = CLI_OK;
  } else if (!strcmp(sub, "share")) {
    NEED(1, "share takes ITEM --to NODE_ID --purpose P --until T");
    rc = cmd_share(o, &p, v, args[0]);
  } else if (!strcmp(sub, "import")) {
    if (o->inbox) NEED(0, "import --inbox takes no file");
    else NEED(1, "import takes an envelope file (or --inbox)");
    rc = cmd_import(o, &p, v, o->inbox ? NULL : args[0]);
  }
done:
  vault_close(v);
  store_close(s);
  return rc;
#undef NEED
}

int cli_vault_main(int argc, char **argv) {
  opts o = {0};
  static const struct option lopts[] = {CLI_COMMON_LONGOPTS,
                                        {"passphrase-file", required_argument, 0, O_PASSF},
                                        {"file", required_argument, 0, O_FILE},
                                        {"to", required_argument, 0, O_TO},
                                        {"purpose", required_argument, 0, O_PURPOSE},
                                        {"until", required_argument, 0, O_UNTIL},
                                        {"out", required_argument, 0, O_OUT},
                                        {"as", required_argument, 0, O_AS},
                                        {"verify", no_argument, 0, O_VERIFY},
                                        {"replace", no_argument, 0, O_REPLACE},
                                        {"send", no_argument, 0, O_SEND},
                                        {"inbox", no_argument, 0, O_INBOX},
                                        {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", lopts, NULL)) != -1) {
    switch (opt) {
    case O_PASSF: o.pass_file = optarg; continue;
    case O_FILE: o.file = optarg; continue;
    case O_TO: o.to = optarg; continue;
    case O_PURPOSE: o.purpose = optarg; continue;
    case O_UNTIL: o.until = optarg; continue;
    case O_OUT: o.out = optarg; continue;
    case O_AS: o.as = optarg; continue;
    case O_VERIFY: o.verify = 1; continue;
    case O_REPLACE: o.replace = 1; continue;
    case O_SEND: o.send = 1; continue;
    case O_INBOX: o.inbox = 1; continue;
    default: break;
    }
    int r = cli_common_opt(opt, optarg, &o.c, usage);
    if (r < 0) return CLI_OK;
    if (r == 0) return cli_bad_opt("vault", argv);
  }
  if (optind >= argc) return cli_usage_error("vault", "expected a command (init, put, get, list, ...)");
  return run(&o, argv[optind], argc - optind - 1, argv + optind + 1);
}
