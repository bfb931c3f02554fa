#include "ms-msgbuf.h"
#include "ms-util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* What stays allocated between messages: most mail is smaller. */
#define MS_MSGBUF_KEEP (64 * 1024)

struct ms_msgbuf {
	size_t mem_limit;
	char *tmpdir;
	unsigned char *mem;
	size_t mem_size, mem_cap;
	int fd; /* -1 while the message is in memory */
	size_t file_size;
	void *map;
	size_t map_size;
};

struct ms_msgbuf *
ms_msgbuf_create(size_t mem_limit, const char *tmpdir)
{
	struct ms_msgbuf *buf;

	if (tmpdir == NULL)
		tmpdir = getenv("TMPDIR");
	if (tmpdir == NULL || *tmpdir == '\0')
		tmpdir = "/tmp";
	if ((buf = calloc(1, sizeof(*buf))) == NULL)
		return NULL;
	if ((buf->tmpdir = strdup(tmpdir)) == NULL) {
		free(buf);
		return NULL;
	}
	buf->mem_limit = mem_limit;
	buf->fd = -1;
	return buf;
}

static void
unmap(struct ms_msgbuf *buf)
{
	if (buf->map != NULL)
		(void)munmap(buf->map, buf->map_size);
	buf->map = NULL;
	buf->map_size = 0;
}

void
ms_msgbuf_reset(struct ms_msgbuf *buf)
{
	unmap(buf);
	if (buf->fd != -1)
		(void)close(buf->fd);
	buf->fd = -1;
	buf->file_size = 0;
	buf->mem_size = 0;
	if (buf->mem_cap > MS_MSGBUF_KEEP) {
		free(buf->mem);
		buf->mem = NULL;
		buf->mem_cap = 0;
	}
}

void
ms_msgbuf_free(struct ms_msgbuf **_buf)
{
	struct ms_msgbuf *buf = *_buf;

	if (buf == NULL)
		return;
	*_buf = NULL;
	ms_msgbuf_reset(buf);
	free(buf->mem);
	free(buf->tmpdir);
	free(buf);
}

size_t
ms_msgbuf_size(const struct ms_msgbuf *buf)
{
	return buf->fd == -1 ? buf->mem_size : buf->file_size;
}

/* The file is unlinked at once: a crash leaves nothing behind. */
static int
spill_to_file(struct ms_msgbuf *buf)
{
	char path[4096];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/mailsift-msg.XXXXXX", buf->tmpdir) >=
	    sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkstemp(path)) == -1)
		return -1;
	(void)unlink(path);
	if (ms_write_all(fd, buf->mem, buf->mem_size) < 0) {
		int saved = errno;
		(void)close(fd);
		errno = saved;
		return -1;
	}
	buf->fd = fd;
	buf->file_size = buf->mem_size;
	buf->mem_size = 0;
	/* not kept beside the file until the reset: it would double the
	 * memory a big message costs while it is delivered */
	if (buf->mem_cap > MS_MSGBUF_KEEP) {
		free(buf->mem);
		buf->mem = NULL;
		buf->mem_cap = 0;
	}
	return 0;
}

static int
grow_mem(struct ms_msgbuf *buf, size_t need)
{
	size_t cap = buf->mem_cap == 0 ? 16384 : buf->mem_cap;
	unsigned char *mem;

	while (cap < need)
		cap *= 2;
	if ((mem = realloc(buf->mem, cap)) == NULL)
		return -1;
	buf->mem = mem;
	buf->mem_cap = cap;
	return 0;
}

int
ms_msgbuf_append(struct ms_msgbuf *buf, const void *data, size_t size)
{
	unmap(buf);
	if (buf->fd == -1 && buf->mem_size + size > buf->mem_limit) {
		if (spill_to_file(buf) < 0)
			return -1;
	}
	if (buf->fd != -1) {
		if (ms_write_all(buf->fd, data, size) < 0)
			return -1;
		buf->file_size += size;
		return 0;
	}
	if (buf->mem_size + size > buf->mem_cap && grow_mem(buf, buf->mem_size + size) < 0)
		return -1;
	memcpy(buf->mem + buf->mem_size, data, size);
	buf->mem_size += size;
	return 0;
}

int
ms_msgbuf_view(struct ms_msgbuf *buf, const unsigned char **data_r, size_t *size_r)
{
	static const unsigned char empty[1];

	*size_r = ms_msgbuf_size(buf);
	if (buf->fd == -1 || buf->file_size == 0) {
		*data_r = buf->mem != NULL ? buf->mem : empty;
		return 0;
	}
	if (buf->map == NULL) {
		void *map = mmap(NULL, buf->file_size, PROT_READ, MAP_PRIVATE, buf->fd, 0);
		if (map == MAP_FAILED)
			return -1;
		buf->map = map;
		buf->map_size = buf->file_size;
	}
	*data_r = buf->map;
	return 0;
}
