/* One pass over the spool's new/: learn, then delete; bad files aside. */
#include "learnd.h"

#include "ms-config.h"
#include "ms-filter.h"
#include "ms-log.h"
#include "ms-spool.h"

#include <stdio.h>

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

/* Returns 0 to go on with the next file, -1 to stop this pass. */
static int
spool_learn_file(struct learnd *l, const char *name)
{
	const char *spool_dir = l->cfg->spool_dir;
	struct ms_spool_entry entry;
	enum ms_learn_result result;
	char err[512];
	int ret = 0;

	switch (ms_spool_read(spool_dir, name, l->max_file_size, &entry, err, sizeof(err))) {
	case MS_SPOOL_READ_OK:
		break;
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
	if (ms_filter_learn(l->filter, entry.user[0] == '\0' ? NULL : entry.user, entry.cls,
	                    entry.msg, entry.size, &result, err, sizeof(err)) < 0) {
		ms_log_error("learn: user=%s class=%s file=%s: %s: will retry", entry.user,
		             ms_spool_class_name(entry.cls), name, err);
		ret = -1;
	} else {
		ms_log_info("learn: user=%s class=%s size=%zu result=%s", entry.user,
		            ms_spool_class_name(entry.cls), entry.size, result_name(result));
		/* If this fails the next pass relearns it: the store counts it once. */
		if (ms_spool_remove(spool_dir, name, err, sizeof(err)) < 0) {
			ms_log_error("spool: %s", err);
			ret = -1;
		}
	}
	ms_spool_entry_free(&entry);
	return ret;
}

static void
spool_forget(struct learnd *l)
{
	ms_spool_names_free(l->names, l->nnames);
	l->names = NULL;
	l->nnames = l->pos = 0;
}

/* Works through one listing of new/ a batch at a time, then lists again:
 * only an empty listing ends the pass, so no poke is lost. */
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
	}
	for (n = 0; n < LEARND_BATCH && l->pos < l->nnames && ret == 0 && !learnd_terminate; n++)
		ret = spool_learn_file(l, l->names[l->pos++]);
	if (ret < 0) {
		spool_backoff(l);
		spool_forget(l);
		return;
	}
	l->backoff_ms = LEARND_BACKOFF_MIN_MS;
	if (l->pos == l->nnames)
		spool_forget(l);
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
}

void
learnd_spool_free(struct learnd *l)
{
	spool_forget(l);
}
