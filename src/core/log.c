/* core/log — leveled logging to stderr; see log.h. */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

static _Atomic int g_level = LOG_INFO;

void log_set_level(log_level level) { atomic_store(&g_level, (int)level); }
log_level log_get_level(void) { return (log_level)atomic_load(&g_level); }

int log_parse_level(const char *s, log_level *level_out) {
  static const char *names[] = {"debug", "info", "warn", "error", "silent"};
  for (int i = 0; i < 5; i++)
    if (strcmp(s, names[i]) == 0) { *level_out = (log_level)i; return 0; }
  return ERR_INVAL;
}

void log_msg(log_level level, const char *fmt, ...) {
  static const char *tags[] = {"debug", "info", "warning", "error"};
  if ((int)level < atomic_load(&g_level) || level >= LOG_SILENT) return;
  char line[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "apiary: %s: %s\n", tags[level], line);
}
