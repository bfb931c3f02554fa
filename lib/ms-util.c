#include "ms-util.h"

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
