#ifndef MS_MSGBUF_H
#define MS_MSGBUF_H

#include <stddef.h>

/* A message being received: kept in memory while small, moved to an
 * unlinked temp file once it grows past mem_limit, so a big message costs
 * page cache instead of heap. The whole message is then one contiguous
 * read-only view (memory or mmap) for the delivery pipeline. */
struct ms_msgbuf;

/* tmpdir: where large messages spill (NULL: $TMPDIR or /tmp). */
struct ms_msgbuf *ms_msgbuf_create(size_t mem_limit, const char *tmpdir);
void ms_msgbuf_free(struct ms_msgbuf **buf);

/* Returns 0, or -1 with errno set (ENOSPC, ENOMEM, ...). */
int ms_msgbuf_append(struct ms_msgbuf *buf, const void *data, size_t size);
size_t ms_msgbuf_size(const struct ms_msgbuf *buf);

/* The message so far as one block, valid until the next append, reset or
 * free. Returns 0, or -1 with errno set. */
int ms_msgbuf_view(struct ms_msgbuf *buf, const unsigned char **data_r, size_t *size_r);

/* Forget the content; keeps a small allocation for the next message. */
void ms_msgbuf_reset(struct ms_msgbuf *buf);

#endif
