#ifndef MS_LOG_H
#define MS_LOG_H

#include <stdbool.h>

/* Daemons log to syslog (facility mail); with -F, and for command line
 * tools, to stderr. */
void ms_log_open(const char *ident, bool to_stderr);
/* SIGHUP: reopen the log target. */
void ms_log_reopen(void);

void ms_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ms_log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ms_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ms_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ms_log_set_debug(bool enabled);

#endif
