/* Finding the files a Maildir copy made, by GUID, after the commit. */
#include "lib.h"
#include "hash.h"
#include "seq-range-array.h"
#include "mail-storage-private.h"
#include "maildir-storage.h"
#include "maildir-uidlist.h"
#include "mailsift-refs.h"

struct mailsift_refs {
	pool_t pool;
	/* GUID -> class + 1 (a value may not be NULL) */
	HASH_TABLE(char *, void *) guids;
};

struct mailsift_refs *
mailsift_refs_create(void)
{
	pool_t pool = pool_alloconly_create("mailsift refs", 8192);
	struct mailsift_refs *refs = p_new(pool, struct mailsift_refs, 1);

	refs->pool = pool;
	hash_table_create(&refs->guids, pool, 0, str_hash, strcmp);
	return refs;
}

void
mailsift_refs_free(struct mailsift_refs **_refs)
{
	struct mailsift_refs *refs = *_refs;

	*_refs = NULL;
	hash_table_destroy(&refs->guids);
	pool_unref(&refs->pool);
}

bool
mailsift_refs_add(struct mailsift_refs *refs, struct mail *mail, enum ms_class cls)
{
	const char *guid;

	/* The copy looked the GUID up already: this is a cached string. */
	if (mail_get_special(mail, MAIL_FETCH_GUID, &guid) < 0 || *guid == '\0')
		return FALSE;
	/* Two sources with one GUID: their copies cannot be told apart. */
	if (hash_table_lookup(refs->guids, guid) != NULL)
		return FALSE;
	hash_table_insert(refs->guids, p_strdup(refs->pool, guid), POINTER_CAST(cls + 1));
	return TRUE;
}

unsigned int
mailsift_refs_count(const struct mailsift_refs *refs)
{
	return hash_table_count(refs->guids);
}

/* The class remembered for the file fname of box's uid, forgotten as it is
 * returned; FALSE if none. Dovecot names the copy after the source's GUID
 * unless that name was taken, and then keeps the GUID in the uidlist. */
static bool
refs_take(struct mailsift_refs *refs, struct maildir_uidlist *uidlist, uint32_t uid,
          const char *fname, enum ms_class *cls_r)
{
	const char *guid = t_strcut(fname, MAILDIR_INFO_SEP);
	char *key;
	void *value;

	if (!hash_table_lookup_full(refs->guids, guid, &key, &value)) {
		guid = maildir_uidlist_lookup_ext(uidlist, uid, MAILDIR_UIDLIST_REC_EXT_GUID);
		if (guid == NULL || !hash_table_lookup_full(refs->guids, guid, &key, &value))
			return FALSE;
	}
	hash_table_remove(refs->guids, key);
	*cls_r = (enum ms_class)(POINTER_CAST_TO(value, unsigned int) - 1);
	return TRUE;
}

unsigned int
mailsift_refs_resolve(struct mailsift_refs *refs, struct mailbox *box,
                      const struct mail_transaction_commit_changes *changes,
                      mailsift_refs_found_t *found, void *context)
{
	struct maildir_mailbox *mbox = MAILDIR_MAILBOX(box);
	struct maildir_uidlist *uidlist = mbox->uidlist;
	enum maildir_uidlist_rec_flag flags;
	struct seq_range_iter iter;
	const char *fname, *dir;
	enum ms_class cls;
	unsigned int n = 0;
	uint32_t uid;

	seq_range_array_iter_init(&iter, &changes->saved_uids);
	while (hash_table_count(refs->guids) > 0 && seq_range_array_iter_nth(&iter, n++, &uid)) {
		T_BEGIN
		{
			if (maildir_uidlist_lookup(uidlist, uid, &flags, &fname) > 0 &&
			    refs_take(refs, uidlist, uid, fname, &cls)) {
				dir = (flags & MAILDIR_UIDLIST_REC_FLAG_NEW_DIR) != 0 ? "new"
				                                                      : "cur";
				found(context, box, uid, t_strconcat(dir, "/", fname, NULL), cls);
			}
		}
		T_END;
	}
	return hash_table_count(refs->guids);
}
