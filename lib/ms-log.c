#include "ms-log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

/* The process's log target: set once at startup, like the config. */
static struct {
	const char *ident;
	bool to_stderr;
	bool debug;
} ms_log = {"mailsift", true, false};

void
ms_log_open(const char *ident, bool to_stderr)
{
	ms_log.ident = ident;
	ms_log.to_stderr = to_stderr;
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
ms_log_reopen(void)
{
	if (ms_log.to_stderr)
		return;
	closelog();
	openlog(ms_log.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
ms_log_set_debug(bool enabled)
{
	ms_log.debug = enabled;
}

static void __attribute__((format(printf, 3, 0)))
ms_log_va(int prio, const char *label, const char *fmt, va_list args)
{
	char msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, args);
	if (ms_log.to_stderr)
		fprintf(stderr, "%s: %s%s\n", ms_log.ident, label, msg);
	else
		syslog(prio, "%s%s", label, msg);
}

#define MS_LOG_FUNC(name, prio, label)             \
	void name(const char *fmt, ...)            \
	{                                          \
		va_list args;                      \
		va_start(args, fmt);               \
		ms_log_va(prio, label, fmt, args); \
		va_end(args);                      \
	}

MS_LOG_FUNC(ms_log_error, LOG_ERR, "error: ")
MS_LOG_FUNC(ms_log_warning, LOG_WARNING, "warning: ")
MS_LOG_FUNC(ms_log_info, LOG_INFO, "")

void
ms_log_debug(const char *fmt, ...)
{
	va_list args;

	if (!ms_log.debug)
		return;
	va_start(args, fmt);
	ms_log_va(LOG_DEBUG, "debug: ", fmt, args);
	va_end(args);
}
