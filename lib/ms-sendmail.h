#ifndef MS_SENDMAIL_H
#define MS_SENDMAIL_H

#include <stddef.h>

/* Hand one message to the local sendmail interface (OpenSMTPD and Postfix
 * both install it): `PATH -i -f FROM -- RCPT...`, the message on stdin.
 * from "" is the null sender. Returns 1 when sendmail took it, 0 on a
 * permanent failure, -1 on a temporary one (err filled). */
int ms_sendmail(const char *path, const char *from, const char *const *rcpts, const void *data,
                size_t size, char *err, size_t errlen);

#endif
