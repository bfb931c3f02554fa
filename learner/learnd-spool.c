/* One pass over the spool's new/: learn, then delete; bad files aside. */
#include "learnd.h"

#include "ms-config.h"
#include "ms-filter.h"
#include "ms-log.h"
#include "ms-spool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
result_name(enum ms_learn_result result)
{
	switch (result) {
	case MS_LEARN_DONE:
		return "learned";
	case MS_LEARN_ALREADY:
		return "already learned";
	case MS_LEARN_MOVED:
		return "moved from the other class";
	}
	return "?";
}

/* Redis (or the disk) could not confirm: keep the file, come back later. */
static void
spool_backoff(struct learnd *l)
{
	l->retry_at = learnd_now_ms() + l->backoff_ms;
	l->backoff_ms = l->backoff_ms * 2 > LEARND_BACKOFF_MAX_MS ? LEARND_BACKOFF_MAX_MS
	                                                          : l->backoff_ms * 2;
}

static void
spool_close(struct learnd *l)
{
	if (l->file_name == NULL)
		return;
	ms_spool_entry_free(&l->file);
	l->file_name = NULL;
}

static void
spool_gone(void *context, unsigned int index, unsigned int count, const char *path)
{
	ms_log_error("spool: %s: message %u of %u: %s: gone before it was pinned (expunged?): "
	             "skipped",
	             (const char *)context, index, count, path);
}

/* Pins new/<name> if it is format 4 (references to Maildir files): the
 * messages are hard-linked into msg/ before anything else, so an expunge
 * meanwhile loses none. Returns 1 to read the file, 0 to go on with the
 * next, -1 to stop the pass. */
static int
spool_pin(struct learnd *l, const char *name)
{
	const char *spool_dir = l->cfg->spool_dir;
	unsigned int pinned, count;
	char err[512];

	switch (ms_spool_pin(spool_dir, name, spool_gone, (void *)name, &pinned, &count, err,
	                     sizeof(err))) {
	case MS_SPOOL_PIN_NONE:
		return 1;
	case MS_SPOOL_PIN_DONE:
		ms_log_info("spool: %s: pinned %u of %u messages", name, pinned, count);
		return pinned > 0; /* else nothing left, the file is gone */
	case MS_SPOOL_PIN_UNLINKABLE:
		ms_log_error("spool: %s: cannot pin: %s: learning from the Maildir files directly",
		             name, err);
		return 1;
	case MS_SPOOL_PIN_BAD:
		ms_log_error("spool: %s: %s: moved to bad/", name, err);
		if (ms_spool_reject(spool_dir, name, err, sizeof(err)) < 0)
			ms_log_error("spool: %s", err);
		return 0;
	case MS_SPOOL_PIN_ERROR:
		ms_log_error("spool: %s: %s: will retry", name, err);
		return -1;
	}
	return -1;
}

static int
name_strcmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* An earlier pin pass looked at name: not format 4, pinned, or found
 * unpinnable (a name is never reused). */
static bool
pin_seen(const struct learnd *l, const char *name)
{
	return l->npin_seen > 0 &&
	       bsearch(&name, l->pin_seen, l->npin_seen, sizeof(*l->pin_seen), name_strcmp) != NULL;
}

/* Reads the next listed file into l->file. Returns 1 when one is open, 0
 * to go on with the next, -1 to stop this pass. */
static int
spool_open_next(struct learnd *l)
{
	const char *spool_dir = l->cfg->spool_dir, *name = l->names[l->pos++];
	char err[512];
	int ret;

	/* a name the pin pass looked at needs no second look */
	if (!pin_seen(l, name) && (ret = spool_pin(l, name)) <= 0)
		return ret;
	switch (ms_spool_read(spool_dir, name, l->max_file_size, &l->file, err, sizeof(err))) {
	case MS_SPOOL_READ_OK:
		l->file_name = name;
		return 1;
	case MS_SPOOL_READ_GONE:
		return 0;
	case MS_SPOOL_READ_BAD:
		ms_log_error("spool: %s: %s: moved to bad/", name, err);
		if (ms_spool_reject(spool_dir, name, err, sizeof(err)) < 0)
			ms_log_error("spool: %s", err);
		return 0;
	case MS_SPOOL_READ_ERROR:
		ms_log_error("spool: %s: %s: will retry", name, err);
		return -1;
	}
	return -1;
}

/* The open file is done (or broken): delete it (or move it aside). */
static int
spool_file_done(struct learnd *l, int next, const char *why)
{
	const char *spool_dir = l->cfg->spool_dir, *name = l->file_name;
	char err[512];
	int ret = 0;

	if (next < 0) {
		/* The messages before the bad one are learned; the rest is
		   unreadable. A batch moved back into new/ by hand would
		   count the learned ones once more as "already learned". */
		ms_log_error("spool: %s: %s: moved to bad/ after %u of %u messages", name, why,
		             l->file.index, l->file.count);
		if (ms_spool_reject(spool_dir, name, err, sizeof(err)) < 0)
			ms_log_error("spool: %s", err);
	} else {
		/* links left behind go to ms_spool_clean_links(); the
		   manifest goes now */
		if (ms_spool_remove_links(spool_dir, &l->file, err, sizeof(err)) < 0)
			ms_log_error("spool: %s: %s", name, err);
		if (ms_spool_remove(spool_dir, name, err, sizeof(err)) < 0) {
			/* The next pass relearns it: the store counts each
			   message once. */
			ms_log_error("spool: %s", err);
			ret = -1;
		}
	}
	spool_close(l);
	return ret;
}

/* Logs what learning msgs gave; returns -1 at the first the store could
 * not confirm (the ones before it are learned). */
static int
spool_log_outcomes(struct learnd *l, const struct ms_filter_message *msgs,
                   const struct ms_learn_outcome *outcomes, size_t count)
{
	const struct ms_spool_entry *f = &l->file;
	size_t i;

	for (i = 0; i < count; i++) {
		if (outcomes[i].status < 0) {
			ms_log_error("learn: user=%s class=%s file=%s: %s: will retry", f->user,
			             ms_spool_class_name(f->cls), l->file_name, outcomes[i].err);
			return -1;
		}
		ms_log_info("learn: user=%s class=%s size=%zu result=%s", f->user,
		            ms_spool_class_name(f->cls), msgs[i].size,
		            result_name(outcomes[i].result));
	}
	return 0;
}

/* Learns up to max messages of the open file, pipelined, and deletes the
 * file after its last. Returns how many it took, or -1 to stop this pass:
 * the file stays and is read again from its start later, which the
 * store's digests make harmless. */
static int
spool_learn_some(struct learnd *l, size_t max)
{
	struct ms_spool_entry *f = &l->file;
	struct ms_filter_message msgs[LEARND_BATCH];
	struct ms_learn_outcome outcomes[LEARND_BATCH];
	size_t n = 0, taken = 0;
	char err[512];
	int next = 1;

	while (taken < max && taken < LEARND_BATCH &&
	       (next = ms_spool_next(f, err, sizeof(err))) > 0) {
		taken++;
		/* a single-message file was held to max_file_size by the read */
		if (f->version >= 2 && f->size > l->cfg->max_message_size) {
			ms_log_error("spool: %s: message %u of %u: %zu bytes is over "
			             "max_message_size: skipped",
			             l->file_name, f->index, f->count, f->size);
			continue;
		}
		/* a linked file deleted by hand must not hold up the rest */
		if (f->msg == NULL) {
			ms_log_error("spool: %s: message %u of %u: %s%s%s: %s: skipped",
			             l->file_name, f->index, f->count,
			             f->ref[0] != '\0' ? f->maildir : MS_SPOOL_LINK_DIR, "/",
			             f->ref[0] != '\0' ? f->ref : f->link,
			             f->link_error != NULL ? f->link_error : "unreadable");
			continue;
		}
		msgs[n].data = f->msg;
		msgs[n++].size = f->size;
	}
	if (next == -2) {
		ms_log_error("spool: %s: %s: will retry", l->file_name, err);
		return -1;
	}
	if (n > 0) {
		ms_filter_learn_many(l->filter, f->user[0] == '\0' ? NULL : f->user, f->cls, msgs,
		                     n, outcomes);
		ms_spool_release(f);
		if (spool_log_outcomes(l, msgs, outcomes, n) < 0)
			return -1;
	}
	/* After the last message the file goes at once: a stop (SIGTERM)
	   between two steps must not leave a learned file behind. */
	if (next > 0 && f->index == f->count)
		next = ms_spool_next(f, err, sizeof(err));
	if (next <= 0 && spool_file_done(l, next, err) < 0)
		return -1;
	return (int)taken;
}

static void
spool_forget(struct learnd *l)
{
	spool_close(l);
	ms_spool_names_free(l->names, l->nnames);
	l->names = NULL;
	l->nnames = l->pos = 0;
}

/* Works through one listing of new/ LEARND_BATCH messages at a time, then
 * lists again: only an empty listing ends the pass, so no poke is lost. */
void
learnd_spool_batch(struct learnd *l)
{
	char err[512];
	size_t n;
	int ret = 0;

	if (l->names == NULL) {
		if (ms_spool_list(l->cfg->spool_dir, &l->names, &l->nnames, err, sizeof(err)) < 0) {
			ms_log_error("spool: %s", err);
			spool_backoff(l);
			return;
		}
		l->spool_wanted = l->nnames > 0;
		/* nothing waits: nothing to pin either */
		if (l->nnames == 0)
			l->pin_wanted = false;
	}
	for (n = 0; n < LEARND_BATCH && ret >= 0 && !learnd_terminate; n += ret > 0 ? ret : 1) {
		if (l->file_name == NULL) {
			if (l->pos == l->nnames)
				break;
			if ((ret = spool_open_next(l)) <= 0)
				continue;
		}
		ret = spool_learn_some(l, LEARND_BATCH - n);
	}
	if (ret < 0) {
		spool_backoff(l);
		spool_forget(l);
		return;
	}
	l->backoff_ms = LEARND_BACKOFF_MIN_MS;
	if (l->file_name == NULL && l->pos == l->nnames)
		spool_forget(l);
}

void
learnd_spool_pin_all(struct learnd *l)
{
	char err[512], **names;
	size_t count, i, kept = 0;
	bool stop = false;

	l->pin_wanted = false;
	if (ms_spool_list(l->cfg->spool_dir, &names, &count, err, sizeof(err)) < 0) {
		ms_log_error("spool: %s", err);
		return;
	}
	/* one look at the first line of each file not seen yet; format 4 is
	   pinned. Kept: the names that need no other look. */
	for (i = 0; i < count; i++) {
		/* the learning pass pinned the file it holds open already */
		if (l->file_name != NULL && strcmp(names[i], l->file_name) == 0) {
			free(names[i]);
			continue;
		}
		if (!pin_seen(l, names[i])) {
			stop = stop || learnd_terminate;
			if (stop || (stop = spool_pin(l, names[i]) < 0)) {
				free(names[i]);
				continue;
			}
		}
		names[kept++] = names[i];
	}
	ms_spool_names_free(l->pin_seen, l->npin_seen);
	if (kept > 0)
		qsort(names, kept, sizeof(*names), name_strcmp);
	l->pin_seen = names;
	l->npin_seen = kept;
}

/* Producers that died leave tmp/ files behind. */
void
learnd_spool_clean(struct learnd *l)
{
	char err[512];
	int n;

	n = ms_spool_clean_tmp(l->cfg->spool_dir, LEARND_TMP_MAX_AGE, err, sizeof(err));
	if (n < 0)
		ms_log_error("spool: %s", err);
	else if (n > 0)
		ms_log_info("spool: removed %d stale tmp/ files", n);
	/* after tmp/: a manifest that died there frees its links at once */
	n = ms_spool_clean_links(l->cfg->spool_dir, LEARND_TMP_MAX_AGE, err, sizeof(err));
	if (n < 0)
		ms_log_error("spool: %s", err);
	else if (n > 0)
		ms_log_info("spool: removed %d " MS_SPOOL_LINK_DIR "/ files without a manifest", n);
}

void
learnd_spool_free(struct learnd *l)
{
	spool_forget(l);
	ms_spool_names_free(l->pin_seen, l->npin_seen);
	l->pin_seen = NULL;
	l->npin_seen = 0;
}
