#include "ms-util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

int
ms_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(err, errlen, fmt, args);
	va_end(args);
	return -1;
}

int
ms_fsync_dir(const char *path)
{
	int fd, ret;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	ret = fsync(fd);
	if (close(fd) < 0)
		ret = -1;
	return ret;
}

int
ms_write_all(int fd, const void *data, size_t size)
{
	const unsigned char *p = data;
	ssize_t ret;

	while (size > 0) {
		ret = write(fd, p, size);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -1;
		if (ret == 0) {
			/* not for files, pipes or sockets: never loop on it */
			errno = EIO;
			return -1;
		}
		p += ret;
		size -= (size_t)ret;
	}
	return 0;
}
