/* cli/dht — `apiary dht get|put`: BEP 44 items on the Mainline DHT through the node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char usage[] =
    "usage: apiary dht [--home DIR] [--json] get TARGET [--salt S]\n"
    "       apiary dht [--home DIR] [--json] put VALUE [--salt S | --immutable]\n"
    "       apiary dht [--home DIR] [--json] peers INFOHASH\n"
    "       apiary dht [--home DIR] [--json] announce INFOHASH [--port P]\n\n"
    "get: TARGET is a node id or 64-hex Ed25519 key (a mutable item, with --salt), or a\n"
    "     40-hex SHA-1 target (an immutable item).\n"
    "put: stores VALUE (a string up to 900 bytes) as a mutable item signed by this node's\n"
    "     key under --salt (the salt 'apiary-node-v1' is the node's own record), or as an\n"
    "     immutable item whose target is SHA-1 of its bencoding.\n"
    "peers: BEP 5 get_peers for a 40-hex infohash; announce: announce_peer with P (default:\n"
    "     this node's link port).\n";

int cli_dht_main(int argc, char **argv) {
  cli_common c = {0};
  const char *salt = NULL;
  int immutable = 0;
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {"salt", required_argument, 0, 's'},
                                       {"immutable", no_argument, 0, 'i'}, {"port", required_argument, 0, 'p'},
                                       {0}};
  long port = 0;
  const char *pos[3];
  int npos = 0;
  optind = 1;
  while (optind < argc) {
    int opt = getopt_long(argc, argv, "+hvq", opts, NULL);
    if (opt == -1) {
      if (npos >= 3) return cli_usage_error("dht", "too many arguments");
      pos[npos++] = argv[optind++];
      continue;
    }
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    if (opt == 's') salt = optarg;
    else if (opt == 'i') immutable = 1;
    else if (opt == 'p') {
      char *end;
      port = strtol(optarg, &end, 10);
      if (*end || port < 1 || port > 65535) return cli_usage_error("dht", "--port wants 1..65535");
    }
    else return cli_bad_opt("dht", argv);
  }
  if (npos == 2 && (!strcmp(pos[0], "peers") || !strcmp(pos[0], "announce"))) {
    int peers = !strcmp(pos[0], "peers");
    json_t *res = NULL;
    json_t *params = json_pack("{s:s, s:i}", "info_hash", pos[1], "port", (int)port);
    int rc = cli_ctl_call(&c, peers ? "dht.peers" : "dht.announce", params, &res);
    if (rc) return rc;
    if (c.json) return cli_print_json(res);
    if (peers) {
      size_t i;
      json_t *p;
      json_array_foreach(json_object_get(res, "peers"), i, p) printf("%s\n", json_string_value(p));
      if (json_array_size(json_object_get(res, "peers")) == 0) printf("no peers found\n");
    } else {
      printf("announced on %lld nodes\n", (long long)json_integer_value(json_object_get(res, "stored")));
    }
    json_decref(res);
    return CLI_OK;
  }
  if (npos != 2 || (strcmp(pos[0], "get") && strcmp(pos[0], "put")))
    return cli_usage_error("dht", "expected get, put, peers or announce");
  if (immutable && salt) return cli_usage_error("dht", "--salt applies to mutable items only");
  int is_get = !strcmp(pos[0], "get");
  json_t *params = is_get ? json_pack("{s:s}", "target", pos[1]) : json_pack("{s:s, s:b}", "value", pos[1], "immutable", immutable);
  if (salt) json_object_set_new(params, "salt", json_string(salt));
  json_t *res = NULL;
  int rc = cli_ctl_call(&c, is_get ? "dht.get" : "dht.put", params, &res);
  if (rc) return rc;
  if (c.json) return cli_print_json(res);
  if (is_get) {
    if (!json_is_true(json_object_get(res, "found"))) {
      printf("not found\n");
      json_decref(res);
      return CLI_FAIL;
    }
    const char *v = json_string_value(json_object_get(res, "value"));
    printf("%s\n", v ? v : json_string_value(json_object_get(res, "raw_hex")));
  } else {
    printf("stored on %lld nodes\n", (long long)json_integer_value(json_object_get(res, "stored")));
  }
  json_decref(res);
  return CLI_OK;
}
