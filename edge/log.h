/*
 * log.h: the daemon's error log (leveled) and access log.
 *
 * Both go to stderr or to a file opened at start (O_APPEND, so that
 * logrotate's copytruncate and several writers work). Lines are written
 * whole with one write(2).
 */
#ifndef S3EDGE_LOG_H
#define S3EDGE_LOG_H

#include <stdbool.h>

#include "conf.h"

/* path NULL or "stderr": stderr. Returns 0 or -1 with errno set. */
int log_open(enum conf_log_level level, const char *error_path,
             const char *access_path);
void log_close(void);
bool log_enabled(enum conf_log_level lvl);
bool log_access_enabled(void);

void log_msg(enum conf_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* one access-log line (without newline) */
void log_access(const char *line, int len);

#define LOG_E(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define LOG_W(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define LOG_I(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define LOG_D(...)                                                             \
    do {                                                                       \
        if (log_enabled(LOG_LVL_DEBUG))                                        \
            log_msg(LOG_LVL_DEBUG, __VA_ARGS__);                               \
    } while (0)

#endif
