/* cli/registry — `apiary registry model add|list|show`: models in the Registry contract,
 * keyed by the sha256 of their GGUF file. Transactions come from the node's wallet; the
 * contract is [chain] registry of the config (set by `apiary chain deploy|use`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/governance.h"
#include "chain/registry.h"
#include "cli/cli.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "llm/mstore.h"

static const char usage[] =
    "usage: apiary registry [--home DIR] [--json] model add FILE [--name N] [--license L] [--source URI]\n"
    "       apiary registry [--home DIR] [--json] model list\n"
    "       apiary registry [--home DIR] [--json] model show SHA256\n"
    "       apiary registry [--home DIR] node register [--hint TEXT]\n\n"
    "add   lists FILE's sha256 with its metadata (name defaults to the file name without .gguf);\n"
    "      the node's wallet becomes its publisher.\n"
    "list  every listed model: sha256, name, license, source, publisher, verified.\n"
    "node register  binds this node's Ed25519 key to the wallet (one vote in 'apiary gov');\n"
    "      both the wallet (EIP-712) and the node key (the endpoint hint) sign it.\n"
    "Only Governance can mark a model verified ('apiary gov' is not there yet).\n";

static json_t *model_json(const registry_model *m) {
  char h[65], pub[WALLET_ADDR_BUF];
  hex_encode(m->hash, 32, h);
  wallet_addr_eip55(m->publisher, pub);
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:I}", "sha256", h, "name", m->name, "license", m->license,
                   "source", m->source_uri, "publisher", pub, "verified", m->verified, "registered_at",
                   (json_int_t)m->registered_at);
}

static void print_model(json_t *o) {
  printf("%s  %s  license %s  publisher %s%s%s%s\n", json_string_value(json_object_get(o, "sha256")),
         json_string_value(json_object_get(o, "name")), json_string_value(json_object_get(o, "license")),
         json_string_value(json_object_get(o, "publisher")),
         json_is_true(json_object_get(o, "verified")) ? "  verified" : "",
         *json_string_value(json_object_get(o, "source")) ? "  " : "", json_string_value(json_object_get(o, "source")));
}

static int open_registry(const cli_common *c, cli_chain *cc, uint8_t reg[20]) {
  if (cli_chain_open(c, NULL, 0, cc)) return CLI_FAIL;
  const char *r = config_str(cc->cfg, "chain", "registry");
  if (!r[0] || wallet_addr_parse(r, strlen(r), reg)) {
    log_error("no registry configured; run 'apiary chain deploy' or 'apiary chain use ... --registry ADDR'");
    cli_chain_close(cc);
    return CLI_FAIL;
  }
  return CLI_OK;
}

int cli_registry_main(int argc, char **argv) {
  cli_common c = {0};
  const char *name = NULL, *license = "", *source = "", *hint = "";
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {"name", required_argument, 0, 'n'},
                                       {"license", required_argument, 0, 'l'},
                                       {"source", required_argument, 0, 's'},
                                       {"hint", required_argument, 0, 'H'}, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    if (opt == 'n') { name = optarg; continue; }
    if (opt == 'l') { license = optarg; continue; }
    if (opt == 's') { source = optarg; continue; }
    if (opt == 'H') { hint = optarg; continue; }
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r == 0) return cli_bad_opt("registry", argv);
  }
  cli_chain cc;
  uint8_t reg[20];
  if (argc - optind == 2 && !strcmp(argv[optind], "node") && !strcmp(argv[optind + 1], "register")) {
    ident id;
    if (open_registry(&c, &cc, reg)) return CLI_FAIL;
    int rc = ident_load(cc.paths.identity, &id);
    if (rc) { log_error("cannot load %s: %s", cc.paths.identity, err_str(rc)); cli_chain_close(&cc); return CLI_FAIL; }
    uint64_t chain_id;
    rc = ethrpc_chain_id(cc.rpc, &chain_id);
    if (!rc) rc = gov_register_node(cc.rpc, &cc.w, reg, chain_id, &id, hint);
    char nid[IDENT_ID_BUF], key[65], owner[WALLET_ADDR_BUF];
    ident_id_encode(id.pk, nid);
    hex_encode(id.pk, 32, key);
    wallet_addr_eip55(cc.w.addr, owner);
    ident_wipe(&id);
    if (rc) { rc = cli_chain_fail(&cc, "register", rc); cli_chain_close(&cc); return rc; }
    cli_chain_close(&cc);
    if (c.json) return cli_print_json(json_pack("{s:s, s:s, s:s}", "node_id", nid, "node_key", key, "owner", owner));
    printf("registered %s (key %s) to %s\n", nid, key, owner);
    return CLI_OK;
  }
  if (argc - optind < 2 || strcmp(argv[optind], "model"))
    return cli_usage_error("registry", "expected model add|list|show or node register");
  const char *sub = argv[optind + 1];
  int nargs = argc - optind - 2;
  char **args = argv + optind + 2;
  if (!strcmp(sub, "list")) {
    if (nargs) return cli_usage_error("registry", "list takes no argument");
    if (open_registry(&c, &cc, reg)) return CLI_FAIL;
    static registry_model list[REGISTRY_LIST_MAX];
    int n = registry_list_models(cc.rpc, reg, list, REGISTRY_LIST_MAX);
    if (n < 0) { n = cli_chain_fail(&cc, "list", n); cli_chain_close(&cc); return n; }
    cli_chain_close(&cc);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(arr, model_json(&list[i]));
    if (c.json) return cli_print_json(json_pack("{s:o}", "models", arr));
    size_t i;
    json_t *m;
    if (!n) printf("no models listed\n");
    json_array_foreach(arr, i, m) print_model(m);
    json_decref(arr);
    return CLI_OK;
  }
  if (!strcmp(sub, "show")) {
    uint8_t h[32];
    if (nargs != 1 || strlen(args[0]) != 64 || hex_decode(args[0], 64, h, 32))
      return cli_usage_error("registry", "show takes a 64-hex-digit SHA256");
    if (open_registry(&c, &cc, reg)) return CLI_FAIL;
    registry_model m;
    int rc = registry_get_model(cc.rpc, reg, h, &m);
    if (rc == ERR_NOTFOUND) { log_error("%s is not listed", args[0]); cli_chain_close(&cc); return CLI_FAIL; }
    if (rc) { rc = cli_chain_fail(&cc, "show", rc); cli_chain_close(&cc); return rc; }
    cli_chain_close(&cc);
    json_t *o = model_json(&m);
    if (c.json) return cli_print_json(o);
    print_model(o);
    json_decref(o);
    return CLI_OK;
  }
  if (strcmp(sub, "add")) return cli_usage_error("registry", "unknown subcommand model %s", sub);
  if (nargs != 1) return cli_usage_error("registry", "add takes FILE");
  char hex[MSTORE_SHA256_HEX], base[REGISTRY_NAME_MAX];
  int rc = mstore_sha256_file(args[0], hex, NULL, NULL);
  if (rc) { log_error("cannot read %s: %s", args[0], err_str(rc)); return CLI_FAIL; }
  if (!name) {
    const char *b = strrchr(args[0], '/');
    b = b ? b + 1 : args[0];
    snprintf(base, sizeof base, "%s", b);
    size_t bl = strlen(base);
    if (bl > 5 && !strcmp(base + bl - 5, ".gguf")) base[bl - 5] = 0;
    name = base;
  }
  uint8_t h[32];
  hex_decode(hex, 64, h, 32);
  if (open_registry(&c, &cc, reg)) return CLI_FAIL;
  rc = registry_add_model(cc.rpc, &cc.w, reg, h, name, license, source, NULL);
  if (rc) { rc = cli_chain_fail(&cc, "add", rc); cli_chain_close(&cc); return rc; }
  registry_model m;
  rc = registry_get_model(cc.rpc, reg, h, &m);
  if (rc) { rc = cli_chain_fail(&cc, "add (read back)", rc); cli_chain_close(&cc); return rc; }
  cli_chain_close(&cc);
  json_t *o = model_json(&m);
  if (c.json) return cli_print_json(o);
  print_model(o);
  json_decref(o);
  return CLI_OK;
}
