/* cli/common — option helpers shared by the subcommands; see cli.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "node/home.h"

int cli_common_opt(int opt, const char *arg, cli_common *c, const char *usage) {
  switch (opt) {
  case CLI_OPT_HOME: c->home = arg; return 1;
  case CLI_OPT_JSON: c->json = 1; return 1;
  case 'v': log_set_level(LOG_DEBUG); return 1;
  case 'q': log_set_level(LOG_ERROR); return 1;
  case 'h': fputs(usage, stdout); return -1;
  default: return 0;
  }
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "apiary %s: %s; try 'apiary %s --help'\n", cmd, msg, cmd);
  return CLI_USAGE;
}

int cli_bad_opt(const char *cmd, char **argv) {
  /* getopt_long already printed the precise problem (with opterr = 1); add the hint. */
  (void)argv;
  fprintf(stderr, "apiary %s: try 'apiary %s --help'\n", cmd, cmd);
  return CLI_USAGE;
}

int cli_home(const cli_common *c, char *out, size_t cap) {
  const char *h = c->home;
  int n;
  if (!h || !*h) h = getenv("APIARY_HOME");
  if (h && *h) {
    n = snprintf(out, cap, "%s", h);
  } else {
    const char *user = getenv("HOME");
    if (!user || !*user) return ERR_NOTFOUND;
    n = snprintf(out, cap, "%s/.apiary", user);
  }
  return (n < 0 || (size_t)n >= cap) ? ERR_TOOBIG : 0;
}

int cli_print_json(json_t *j) {
  if (!j) {
    log_error("out of memory building JSON output");
    return CLI_FAIL;
  }
  char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref(j);
  if (!s) return CLI_FAIL;
  puts(s);
  free(s);
  return CLI_OK;
}

int cli_parse_common(const char *cmd, int argc, char **argv, const char *usage, cli_common *c) {
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, c, usage);
    if (r < 0) return -1;
    if (r == 0) return cli_bad_opt(cmd, argv);
  }
  return 0;
}

int cli_home_paths(const cli_common *c, home_paths *p) {
  char dir[HOME_PATH_MAX];
  if (cli_home(c, dir, sizeof dir) || home_paths_init(p, dir)) {
    log_error("cannot work out the node home; pass --home DIR or set APIARY_HOME");
    return CLI_FAIL;
  }
  return CLI_OK;
}

/* Sets section.key = value (a literal in config syntax) in the file at path, keeping
 * everything else. */
int cli_config_set(const char *path, const char *section, const char *key, const char *value) {
  FILE *f = fopen(path, "r");
  buf in, out;
  buf_init(&in);
  buf_init(&out);
  if (f) {
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_append(&in, chunk, n);
    fclose(f);
  }
  buf_append(&in, "", 1);
  const char *s = in.len ? (const char *)in.ptr : "";
  char cur[64] = "";
  int done = 0, saw_section = 0;
  size_t klen = strlen(key);
  while (*s) {
    const char *e = strchr(s, '\n');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    const char *t = s;
    while (t < s + len && (*t == ' ' || *t == '\t')) t++;
    if (*t == '[') {
      if (saw_section && !done) { /* key missing from its section: add it at the end */
        buf_printf(&out, "%s = %s\n", key, value);
        done = 1;
      }
      const char *close = memchr(t, ']', (size_t)(s + len - t));
      size_t sl = close ? (size_t)(close - t - 1) : 0;
      snprintf(cur, sizeof cur, "%.*s", (int)(sl < sizeof cur ? sl : sizeof cur - 1), t + 1);
      if (!strcmp(cur, section)) saw_section = 1;
    } else if (!done && !strcmp(cur, section) && !strncmp(t, key, klen) &&
               (t[klen] == ' ' || t[klen] == '=' || t[klen] == '\t')) {
      buf_printf(&out, "%s = %s\n", key, value);
      done = 1;
      s += len + (e ? 1 : 0);
      continue;
    }
    buf_append(&out, s, len);
    buf_append(&out, "\n", 1);
    s += len + (e ? 1 : 0);
  }
  if (!done) {
    if (!saw_section) buf_printf(&out, "\n[%s]\n", section);
    buf_printf(&out, "%s = %s\n", key, value);
  }
  char tmp[HOME_PATH_MAX + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int rc = 0;
  f = fopen(tmp, "w");
  if (!f || fwrite(out.ptr, 1, out.len, f) != out.len) rc = -EIO;
  if (f && fclose(f)) rc = -EIO;
  if (!rc) chmod(tmp, 0600);
  if (!rc && rename(tmp, path)) rc = -errno;
  buf_deinit(&in);
  buf_deinit(&out);
  return rc;
}
