#ifndef MS_UTIL_H
#define MS_UTIL_H

#include <stddef.h>

/* Formats an error message into err (size errlen) and returns -1, so an
 * error path is one line: return ms_error(err, errlen, "...", ...); */
int ms_error(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* fsync a directory, so the entries just created or renamed in it survive
 * a crash. Returns 0, or -1 with errno set. */
int ms_fsync_dir(const char *path);

/* write() all of data, again after EINTR or a short write. Returns 0, or
 * -1 with errno set. */
int ms_write_all(int fd, const void *data, size_t size);

#endif
