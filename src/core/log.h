/* core/log — leveled logging to stderr.
 *
 * One global level (set once at startup by the CLI from --verbose/--quiet); messages below
 * it are dropped. Library layers do not log errors they return (STYLE.md rule 4): the
 * caller that handles an error logs it once. Never pass secrets to these functions.
 * Thread-safe: each message is written with one fprintf on a line-buffered stream. */
#ifndef APIARY_CORE_LOG_H
#define APIARY_CORE_LOG_H

typedef enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_SILENT = 4 } log_level;

void log_set_level(log_level level);
log_level log_get_level(void);
/* Parses "debug|info|warn|error|silent"; returns 0 or ERR_INVAL. */
int log_parse_level(const char *s, log_level *level_out);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
