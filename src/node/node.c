/* node/node — daemon lifecycle; see node.h. */
#include "node/node.h"

#include "http/openai.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"
#include "node/gensvc.h"
#include "node/mktsvc.h"
#include "node/asksvc.h"
#include <sodium.h>
#include "p2p/peers.h"
#include "p2p/bencode.h"
#include "p2p/dht.h"
#include "core/hex.h"

#include "core/version.h"
#include "privacy/policy.h"

static void m_status(ctl_req *req, json_t *params, void *ud) {
  node *n = ud;
  (void)params;
  uint64_t up = (uv_now(&n->loop) - n->started_ms) / 1000;
  json_t *r = json_pack("{s:s, s:s, s:i, s:I, s:s, s:i}", "node_id", n->node_id, "version", APIARY_VERSION, "pid",
                        (int)getpid(), "uptime_s", (json_int_t)up, "home", n->paths.dir, "listen_port",
                        n->ctx.listen_port);
  svc_status_all(n->svcs, n->n_svcs, n->states, r); /* each service adds its part */
  ctl_reply_ok(req, r);
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void m_peers(ctl_req *req, json_t *params, void *ud) {
  node *n = ud;
  (void)params;
  enum { MAX = 1024 };
  static peer_info list[MAX];
  int64_t now = wall_ms();
  int k = peers_list(n->db, now, list, MAX);
  if (k < 0) {
    ctl_reply_err(req, CTL_INTERNAL, "cannot read the peer book: %s", store_errmsg(n->db));
    return;
  }
  json_t *arr = json_array();
  for (int i = 0; i < k; i++) {
    char id[IDENT_ID_BUF];
    ident_id_encode(list[i].pk, id);
    json_t *addrs = json_array();
    for (int j = 0; j < list[i].n_addrs; j++) json_array_append_new(addrs, json_string(list[i].addrs[j]));
    json_array_append_new(arr, json_pack("{s:s, s:s?, s:o, s:s, s:I, s:i, s:s}", "id", id, "addr",
                                         list[i].n_addrs ? list[i].addrs[0] : NULL, "addrs", addrs, "state",
                                         peers_state_name(list[i].state), "last_seen",
                                         (json_int_t)(list[i].last_seen_ms / 1000), "failures", list[i].failures,
                                         "source", list[i].source));
  }
  ctl_reply_ok(req, json_pack("{s:o}", "peers", arr));
}

/* ---- control: ping ---- */
typedef struct ping_ctx {
  ctl_req *req;
  node *n;
  uint64_t start;
  char id[IDENT_ID_BUF];
} ping_ctx;

static void on_ping_reply(void *ud, const rpc_reply *reply) {
  ping_ctx *p = ud;
  if (reply->kind == RPC_REPLY_RESULT)
    ctl_reply_ok(p->req, json_pack("{s:s, s:f}", "node_id", p->id, "rtt_ms",
                                   (double)(uv_hrtime() - p->start) / 1e6));
  else
    ctl_reply_err(p->req, CTL_FAILED, "no answer from %s: %s", p->id, reply->message ? reply->message : "error");
  free(p);
}

static int parse_node_param(json_t *params, const char *key, uint8_t pk[32]) {
  const char *s = json_string_value(json_object_get(params, key));
  return s ? ident_id_decode(s, strlen(s), pk) : ERR_INVAL;
}

static void m_ping(ctl_req *req, json_t *params, void *ud) {
  node *n = ud;
  uint8_t pk[32];
  int rc = parse_node_param(params, "node_id", pk);
  if (rc) {
    ctl_reply_err(req, CTL_INVALID_PARAMS, rc == ERR_CRYPTO ? "node id checksum is wrong (a typo?)" : "need a node id");
    return;
  }
  ping_ctx *p = calloc(1, sizeof *p);
  if (!p) { ctl_reply_err(req, CTL_INTERNAL, "out of memory"); return; }
  p->req = req;
  p->n = n;
  p->start = uv_hrtime();
  ident_id_encode(pk, p->id);
  rc = netsvc_call(n->ctx.net, pk, "ping", NULL, 10000, on_ping_reply, p);
  if (rc) {
    ctl_reply_err(req, CTL_FAILED, rc == ERR_INVAL ? "that is this node" : "cannot ping: %s", err_str(rc));
    free(p);
  }
}

/* ---- control: dht get/put ---- */
static json_t *item_json(const dht_event *ev) {
  if (!ev->has_item) return json_pack("{s:b}", "found", 0);
  ben_node nodes[8];
  json_t *j = json_pack("{s:b, s:b}", "found", 1, "mutable", ev->item.is_mutable);
  int nn = ben_decode(ev->item.v, ev->item.v_len, nodes, 8, 0);
  if (nn > 0 && nodes[0].type == BEN_STR) json_object_set_new(j, "value", json_stringn((const char *)nodes[0].str, nodes[0].len));
  char *hex = malloc(2 * ev->item.v_len + 1);
  if (hex) {
    hex_encode(ev->item.v, ev->item.v_len, hex);
    json_object_set_new(j, "raw_hex", json_string(hex));
    free(hex);
  }
  if (ev->item.is_mutable) json_object_set_new(j, "seq", json_integer(ev->item.seq));
  return j;
}

static void on_dht_done(void *ud, const dht_event *ev) {
  ctl_req *req = ud;
  if (ev->op == DHT_OP_GET_PEERS) {
    json_t *arr = json_array();
    for (size_t i = 0; i < ev->n_peers; i++) {
      if (ev->peers[i].ss_family != AF_INET) continue;
      char ip[INET_ADDRSTRLEN], a[64];
      const struct sockaddr_in *sa = (const struct sockaddr_in *)&ev->peers[i];
      uv_ip4_name(sa, ip, sizeof ip);
      snprintf(a, sizeof a, "%s:%u", ip, ntohs(sa->sin_port));
      json_array_append_new(arr, json_string(a));
    }
    ctl_reply_ok(req, json_pack("{s:o, s:i}", "peers", arr, "hops", ev->hops));
  } else if (ev->op == DHT_OP_GET) {
    json_t *j = item_json(ev);
    json_object_set_new(j, "hops", json_integer(ev->hops));
    ctl_reply_ok(req, j);
  } else {
    ctl_reply_ok(req, json_pack("{s:i, s:i}", "stored", ev->stored, "hops", ev->hops));
  }
}

static void m_dht_get(ctl_req *req, json_t *params, void *ud) {
  node *n = ud;
  const char *target = json_string_value(json_object_get(params, "target"));
  const char *salt = json_string_value(json_object_get(params, "salt"));
  uint8_t pk[32], t[20];
  int rc;
  if (target && strlen(target) == 40 && hex_decode(target, 40, t, 20) == 0) {
    rc = netsvc_dht_get_immutable(n->ctx.net, t, on_dht_done, req);
  } else if (target && (ident_id_decode(target, strlen(target), pk) == 0 ||
                        (strlen(target) == 64 && hex_decode(target, 64, pk, 32) == 0))) {
    rc = netsvc_dht_get_mutable(n->ctx.net, pk, salt, on_dht_done, req);
  } else {
    ctl_reply_err(req, CTL_INVALID_PARAMS, "target must be a node id or 64-hex public key (mutable) or a 40-hex target (immutable)");
    return;
  }
  if (rc) ctl_reply_err(req, CTL_FAILED, "%s", rc == ERR_UNSUPPORTED ? "the DHT is off on this node" : err_str(rc));
}

static int parse_infohash(json_t *params, uint8_t ih[20]) {
  const char *s = json_string_value(json_object_get(params, "info_hash"));
  return (s && strlen(s) == 40 && hex_decode(s, 40, ih, 20) == 0) ? 0 : ERR_INVAL;
}

static void m_dht_peers(ctl_req *req, json_t *params, void *ud) {
  node *n = ud;
  uint8_t ih[20];
  if (parse_infohash(params, ih)) { ctl_reply_err(req, CTL_INVALID_PARAMS, "info_hash must be 40 hex digits"); return; }
  int rc = netsvc_dht_get_peers(n->ctx.net, ih, on_dht_done, req);
  if (rc) ctl_reply_err(req, CTL_FAILED, "%s", rc == ERR_UNSUPPORTED ? "the DHT is off on this node" : err_str(rc));
}

static void m_dht_announce(ctl_req *req, json_t *params, void *ud) {
  node *n = ud;
  uint8_t ih[20];
  if (parse_infohash(params, ih)) { ctl_reply_err(req, CTL_INVALID_PARAMS, "info_hash must be 40 hex digits"); return; }
  json_int_t port = json_integer_value(json_object_get(params, "port"));
  if (port < 0 || port > 65535) { ctl_reply_err(req, CTL_INVALID_PARAMS, "port must be 0..65535"); return; }
  int rc = netsvc_dht_announce(n->ctx.net, ih, (uint16_t)port, on_dht_done, req);
  if (rc) ctl_reply_err(req, CTL_FAILED, "%s", rc == ERR_UNSUPPORTED ? "the DHT is off on this node" : err_str(rc));
}

static void m_dht_put(ctl_req *req, json_t *params, void *ud) {
  node *n = ud;
  const char *value = json_string_value(json_object_get(params, "value"));
  const char *salt = json_string_value(json_object_get(params, "salt"));
  int immutable = json_is_true(json_object_get(params, "immutable"));
  if (!value) { ctl_reply_err(req, CTL_INVALID_PARAMS, "need a value"); return; }
  size_t vl = strlen(value);
  if (vl > 900) { ctl_reply_err(req, CTL_INVALID_PARAMS, "value too long: a DHT item holds at most 1000 bytes"); return; }
  uint8_t v[1000];
  int hl = snprintf((char *)v, sizeof v, "%zu:", vl);
  memcpy(v + hl, value, vl);
  int rc;
  uint8_t target[20];
  if (immutable) {
    rc = netsvc_dht_put_immutable(n->ctx.net, v, (size_t)hl + vl, target, on_dht_done, req);
    if (!rc) {
      char hex[41];
      hex_encode(target, 20, hex);
      log_info("immutable item target %s", hex);
    }
  } else {
    rc = netsvc_dht_put_mutable(n->ctx.net, salt, v, (size_t)hl + vl, on_dht_done, req);
  }
  if (rc) ctl_reply_err(req, CTL_FAILED, "%s", rc == ERR_UNSUPPORTED ? "the DHT is off on this node"
                                             : rc == ERR_INVAL ? "that salt is reserved for the node record" : err_str(rc));
}

static void m_token_create(ctl_req *req, json_t *params, void *ud) {
  node *n = ud;
  const char *label = json_string_value(json_object_get(params, "label"));
  json_t *pv = json_object_get(params, "privacy");
  int privacy = !pv ? 0 : json_is_string(pv) ? policy_parse(json_string_value(pv), json_string_length(pv)) : -1;
  if (privacy < 0) { ctl_reply_err(req, CTL_INVALID_PARAMS, "privacy must be allow, redact or local-only"); return; }
  char tok[AUTH_TOKEN_BUF];
  int64_t id;
  int rc = auth_create_privacy(n->db, label, privacy, tok, &id);
  if (rc) { ctl_reply_err(req, CTL_FAILED, "cannot create a token: %s", err_str(rc)); return; }
  if (n->auth) auth_load(n->auth, n->db); /* the API may be off */
  ctl_reply_ok(req, json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id, "token", tok, "label", label ? label : "",
                              "privacy", policy_name((policy_level)privacy)));
  sodium_memzero(tok, sizeof tok);
}

static void m_token_list(ctl_req *req, json_t *params, void *ud) {
  node *n = ud;
  (void)params;
  static auth_token_info list[AUTH_MAX_TOKENS];
  int k = auth_list(n->db, list, AUTH_MAX_TOKENS);
  if (k < 0) { ctl_reply_err(req, CTL_INTERNAL, "cannot list tokens"); return; }
  json_t *arr = json_array();
  for (int i = 0; i < k; i++)
    json_array_append_new(arr, json_pack("{s:I, s:s, s:I, s:b, s:s}", "id", (json_int_t)list[i].id, "label",
                                         list[i].label, "created", (json_int_t)list[i].created_s, "revoked",
                                         list[i].revoked, "privacy", policy_name((policy_level)list[i].privacy)));
  ctl_reply_ok(req, json_pack("{s:o}", "tokens", arr));
}

static void m_token_revoke(ctl_req *req, json_t *params, void *ud) {
  node *n = ud;
  json_t *id = json_object_get(params, "id");
  if (!json_is_integer(id)) { ctl_reply_err(req, CTL_INVALID_PARAMS, "need an integer id"); return; }
  int rc = auth_revoke(n->db, json_integer_value(id));
  if (rc) { ctl_reply_err(req, CTL_FAILED, "cannot revoke token %lld: %s", (long long)json_integer_value(id), err_str(rc)); return; }
  if (n->auth) auth_load(n->auth, n->db); /* the API may be off */
  ctl_reply_ok(req, json_pack("{s:b}", "revoked", 1));
}

static void m_stop(ctl_req *req, json_t *params, void *ud) {
  (void)params;
  ctl_reply_ok(req, json_pack("{s:b}", "stopping", 1));
  node_shutdown(ud);
}

static void on_signal(uv_signal_t *s, int signum) {
  node *n = s->data;
  log_info("received %s; shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
  node_shutdown(n);
}

void node_shutdown(node *n) {
  if (n->stopping) return;
  n->stopping = 1;
  svc_stop_all(n->svcs, n->n_svcs, &n->ctx, n->states, n->stopped); /* in reverse order */
  ctl_server_stop(n->ctl);
  n->ctl = NULL;
  n->ctx.ctl = NULL;
  uv_close((uv_handle_t *)&n->sigint, NULL);
  uv_close((uv_handle_t *)&n->sigterm, NULL);
}

static int take_lock(node *n, char *err, size_t cap) {
  char path[HOME_PATH_MAX + 16];
  fs_join(path, sizeof path, n->paths.dir, "node.lock");
  n->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (n->lock_fd < 0) {
    snprintf(err, cap, "cannot open %s: %s", path, strerror(errno));
    return -errno;
  }
  if (flock(n->lock_fd, LOCK_EX | LOCK_NB) < 0) {
    char pid[32] = "";
    ssize_t r = pread(n->lock_fd, pid, sizeof pid - 1, 0);
    if (r > 0) pid[r] = 0;
    pid[strcspn(pid, "\n")] = 0;
    snprintf(err, cap, "another node is already running on %s (pid %s); stop it first (kill %s)", n->paths.dir,
             pid[0] ? pid : "?", pid[0] ? pid : "PID");
    close(n->lock_fd);
    n->lock_fd = -1;
    return ERR_EXISTS;
  }
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  if (ftruncate(n->lock_fd, 0) == 0 && pwrite(n->lock_fd, pid, (size_t)len, 0) != len)
    log_warn("could not record the pid in %s", path);
  return 0;
}

static int load_home(node *n, const node_opts *o, char *err, size_t cap) {
  int rc = home_paths_init(&n->paths, o->home);
  if (rc) { snprintf(err, cap, "bad home path %s", o->home); return rc; }
  if ((rc = ident_load(n->paths.identity, &n->id))) {
    if (rc == -ENOENT)
      snprintf(err, cap, "no node identity in %s; run 'apiary init --home %s' first", n->paths.dir, n->paths.dir);
    else if (rc == ERR_PERM)
      snprintf(err, cap, "%s is readable by other users; fix it with: chmod 600 %s", n->paths.identity,
               n->paths.identity);
    else if (rc == ERR_LOCKED)
      snprintf(err, cap, "%s is encrypted: give its passphrase ($APIARY_PASSPHRASE or --passphrase-file F)",
               n->paths.identity);
    else
      snprintf(err, cap, "cannot load %s: %s", n->paths.identity, err_str(rc));
    return rc;
  }
  ident_id_encode(n->id.pk, n->node_id);
  if ((rc = home_load_config(&n->paths, &n->cfg, err, cap))) return rc;
  log_level lvl;
  if (log_parse_level(config_str(n->cfg, "log", "level"), &lvl) == 0 && log_get_level() == LOG_INFO)
    log_set_level(lvl);
  if ((rc = take_lock(n, err, cap))) return rc;
  return home_open_store(&n->paths, &n->db, err, cap);
}

int node_run(const node_opts *o, char *err, size_t cap) {
  node n;
  memset(&n, 0, sizeof n);
  n.opts = o;
  n.lock_fd = -1;
  int rc = uv_loop_init(&n.loop);
  if (rc) { snprintf(err, cap, "cannot start the event loop: %s", uv_strerror(rc)); return rc; }
  /* Signal handles exist from the start so every exit path can close them. */
  uv_signal_init(&n.loop, &n.sigint);
  uv_signal_init(&n.loop, &n.sigterm);
  n.sigint.data = n.sigterm.data = &n;
  char sock[HOME_PATH_MAX + 16] = "";
  if ((rc = load_home(&n, o, err, cap))) goto done;
  n.started_ms = uv_now(&n.loop);


  fs_join(sock, sizeof sock, n.paths.dir, CONTROL_SOCKET_NAME);
  if ((rc = ctl_server_start(&n.loop, sock, &n.ctl))) {
    snprintf(err, cap, "cannot open the control socket %s: %s", sock,
             rc == ERR_EXISTS ? "a node is already listening there" : err_str(rc));
    sock[0] = 0; /* not ours: do not remove it */
    goto done;
  }
  ctl_server_add(n.ctl, "status", m_status, &n);
  ctl_server_add(n.ctl, "stop", m_stop, &n);
  ctl_server_add(n.ctl, "peers", m_peers, &n);
  ctl_server_add(n.ctl, "token.create", m_token_create, &n);
  ctl_server_add(n.ctl, "token.list", m_token_list, &n);
  ctl_server_add(n.ctl, "token.revoke", m_token_revoke, &n);
  ctl_server_add(n.ctl, "ping", m_ping, &n);
  ctl_server_add(n.ctl, "dht.get", m_dht_get, &n);
  ctl_server_add(n.ctl, "dht.put", m_dht_put, &n);
  ctl_server_add(n.ctl, "dht.peers", m_dht_peers, &n);
  ctl_server_add(n.ctl, "dht.announce", m_dht_announce, &n);
  if (config_bool(n.cfg, "http", "enabled")) {
    if ((rc = auth_new(&n.auth)) || (rc = auth_load(n.auth, n.db))) {
      snprintf(err, cap, "cannot load API tokens: %s", err_str(rc));
      goto done;
    }
  }
  http_routes_init(&n.routes);
  n.ctx = (node_ctx){.loop = &n.loop, .node = &n, .paths = &n.paths, .cfg = n.cfg, .db = n.db, .id = &n.id,
                     .node_id = n.node_id, .ctl = n.ctl, .routes = &n.routes};
  n.svcs = svc_table(&n.n_svcs);
  if (n.n_svcs > NODE_MAX_SERVICES) { snprintf(err, cap, "too many services"); rc = ERR_TOOBIG; goto done; }
  if ((rc = svc_start_all(n.svcs, n.n_svcs, &n.ctx, n.states, err, cap))) goto done;
  svc_ports_notice(&n.ctx, log_get_level() <= LOG_DEBUG);

  uv_signal_start(&n.sigint, on_signal, SIGINT);
  uv_signal_start(&n.sigterm, on_signal, SIGTERM);
  signal(SIGPIPE, SIG_IGN);

  log_info("node %s running (home %s, control %s)", n.node_id, n.paths.dir, sock);
  printf("ready %s\n", n.node_id);
  fflush(stdout);
  uv_run(&n.loop, UV_RUN_DEFAULT);
  log_info("node %s stopped", n.node_id);
  rc = 0;
done:
  node_shutdown(&n);                  /* idempotent: closes whatever was opened */
  uv_run(&n.loop, UV_RUN_DEFAULT);    /* let close callbacks run */
  if (sock[0]) unlink(sock);
  if (uv_loop_close(&n.loop) == UV_EBUSY) log_warn("event loop closed with handles still open");
  store_close(n.db);
  config_free(n.cfg);
  ident_wipe(&n.id);
  if (n.lock_fd >= 0) close(n.lock_fd);
  auth_free(n.auth);
  svc_release_all(n.svcs, n.n_svcs, n.states); /* the HTTP threads that could call them are gone */
  return rc;
}
