/* privacy/redact_testlog — TEST ONLY; see redact_testlog.h. */
#include "privacy/redact_testlog.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void redact_testlog_received(const json_t *params) {
  const char *path = getenv(REDACT_TESTLOG_ENV);
  if (!path || !*path) return;
  json_t *o = json_object();
  json_t *v;
  if ((v = json_object_get(params, "prompt"))) json_object_set(o, "prompt", v);
  if ((v = json_object_get(params, "messages"))) json_object_set(o, "messages", v);
  char *line = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (!line) return;
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd >= 0) {
    size_t n = strlen(line);
    line[n] = '\n'; /* replaces the NUL: written with its length */
    ssize_t w = write(fd, line, n + 1);
    (void)w;
    close(fd);
  }
  free(line);
}
