#ifndef MS_SPOOL_H
#define MS_SPOOL_H

/* The training spool (doc/spool.md): producers (the Dovecot plugin, the
 * imap_sieve pipe helper) write tmp/<unique>, fsync it and rename it into
 * new/<class>.<unique>; mailsift-learnd reads new/, learns and deletes.
 * A file carries one message (format 1) or a batch of them (format 2: the
 * plugin writes one per IMAP MOVE/COPY, so a move of 1,000 messages creates
 * one file, not 1,000), some of them hard links in msg/ (format 3), or
 * references to the files of a Maildir (format 4) that the learner pins
 * into msg/ (ms_spool_pin) before it learns them.
 * Plain POSIX on purpose: this file is linked into a Dovecot plugin (-fPIC)
 * and a small pipe helper as well as the learner. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "ms-filter.h"

#define MS_SPOOL_MAGIC       "X-Mailsift-Spool: 1"
#define MS_SPOOL_MAGIC_BATCH "X-Mailsift-Spool: 2"
/* A batch with link records: "@<name>\n" for a message hard-linked into
 * spool_dir/msg/ instead of copied (doc/spool.md, format 3). */
#define MS_SPOOL_MAGIC_LINKS "X-Mailsift-Spool: 3"
#define MS_SPOOL_LINK_DIR    "msg"
#define MS_SPOOL_LINK_MAX    255 /* bytes of a link record's name */
/* A batch of references to files of one Maildir: "=new/<name>\n" or
 * "=cur/<name>\n" (doc/spool.md, format 4). The Dovecot plugin writes them
 * during an IMAP MOVE without a syscall per message; the learner pins them
 * (hard-links them into msg/, rewriting the file as format 3) before it
 * learns anything. */
#define MS_SPOOL_MAGIC_REFS  "X-Mailsift-Spool: 4"
#define MS_SPOOL_MAILDIR_MAX 1024 /* bytes of X-Mailsift-Maildir */
#define MS_SPOOL_REF_MAX     255  /* bytes of a referenced Maildir file name */
/* "new/" or "cur/" and the name */
#define MS_SPOOL_REF_PATH_MAX (4 + MS_SPOOL_REF_MAX)
#define MS_SPOOL_HEADER_MAX   4096 /* bytes of header, blank line included */
#define MS_SPOOL_USER_MAX     255
/* A producer starts a new batch file once one holds this much, so a batch
 * file stays under MS_SPOOL_BATCH_MAX (the learner reads a file whole) as
 * long as single messages are smaller than the difference. */
#define MS_SPOOL_BATCH_ROLL (32u << 20)
#define MS_SPOOL_BATCH_MAX  (64u << 20)

/* ---- producers ---- */

struct ms_spool_writer;

/* Open tmp/<unique> (O_EXCL) under spool_dir and write the header. user may
 * be "" (shared statistics) but not contain control characters. */
int ms_spool_begin(const char *spool_dir, const char *user, enum ms_class cls,
                   struct ms_spool_writer **writer_r, char *err, size_t errlen);
int ms_spool_write(struct ms_spool_writer *writer, const void *data, size_t size, char *err,
                   size_t errlen);
/* Copy fd to EOF into the message (pipe helpers read stdin). */
int ms_spool_write_fd(struct ms_spool_writer *writer, int fd, char *err, size_t errlen);

/* A batch file (format 2): begin it, then for each message record_begin
 * with its exact size, ms_spool_write its bytes, record_end. Writes are
 * buffered and nothing is synced until the commit. */
int ms_spool_batch_begin(const char *spool_dir, const char *user, enum ms_class cls,
                         struct ms_spool_writer **writer_r, char *err, size_t errlen);
int ms_spool_record_begin(struct ms_spool_writer *writer, size_t size, char *err, size_t errlen);
/* -1 if the bytes written differ from the size announced: the record is
 * then taken back, as by record_abort. */
int ms_spool_record_end(struct ms_spool_writer *writer, char *err, size_t errlen);
/* Hard-link the message file src_path into msg/<unique>.<n> and record it
 * instead of its bytes (the file must never change: a Maildir file).
 * Returns 1 when recorded; 0 when src_path does not exist (the caller may
 * look for the file under another name); -1 when no link can be made
 * (msg/ missing, another file system, permissions, ...): copy the bytes
 * instead. After a -1 with errno EXDEV, EPERM, EMLINK or a missing msg/,
 * ms_spool_links_usable() is false for the rest of this writer. */
int ms_spool_record_link(struct ms_spool_writer *writer, const char *src_path, char *err,
                         size_t errlen);
bool ms_spool_links_usable(const struct ms_spool_writer *writer);
/* A batch of references to files of one Maildir (format 4): the learner
 * pins them into msg/ and then learns them. maildir is the destination
 * mailbox's Maildir directory: absolute, no control characters, no "." or
 * ".." components, no trailing "/", at most MS_SPOOL_MAILDIR_MAX bytes.
 * Published by ms_spool_commit()/ms_spool_commit_many(), dropped by
 * ms_spool_abort(); a refs writer takes no byte or link records. */
int ms_spool_refs_begin(const char *spool_dir, const char *user, enum ms_class cls,
                        const char *maildir, struct ms_spool_writer **writer_r, char *err,
                        size_t errlen);
/* ref is "new/<name>" or "cur/<name>" under the writer's maildir: name is 1
 * to MS_SPOOL_REF_MAX bytes of 0x21-0x7e except '/', not starting with '.'.
 * Nothing is looked at on disk. */
int ms_spool_record_ref(struct ms_spool_writer *writer, const char *ref, char *err, size_t errlen);
/* The header of a spool file, blank line included, into buf (at least
 * MS_SPOOL_HEADER_MAX bytes: a valid user and maildir always fit): the
 * magic line, user, class, for a batch a zero count (its 10 digits at
 * *count_off_r), maildir if not NULL. Returns its length. */
size_t ms_spool_header(char *buf, size_t size, const char *magic, const char *user,
                       enum ms_class cls, bool batch, const char *maildir, size_t *count_off_r);
/* The checks the writer and the reader apply (len bytes, no NUL needed). */
bool ms_spool_maildir_valid(const char *maildir, size_t len);
bool ms_spool_ref_valid(const char *ref, size_t len);
/* Take the unfinished record back (its source could not be read); -1 if
 * even that failed: then the writer is unusable, abort it. */
int ms_spool_record_abort(struct ms_spool_writer *writer, char *err, size_t errlen);
/* Finished records so far. */
unsigned int ms_spool_records(const struct ms_spool_writer *writer);
/* The file holds MS_SPOOL_BATCH_ROLL bytes or more: start another. */
bool ms_spool_batch_full(const struct ms_spool_writer *writer);

/* fsync the file (a batch: fill in its count, fdatasync; with links first
 * fsync msg/), rename it into new/, fsync new/. Frees the writer either way; on failure the tmp
 * file is gone. A batch without records is dropped, not published (returns 0). */
int ms_spool_commit(struct ms_spool_writer **writer, char *err, size_t errlen);
/* Publish several writers with one fsync of new/ (the plugin's batches of
 * both classes, or a batch that rolled over). Frees them all. Returns -1
 * if any failed, err names the first; the ones that failed are gone. */
int ms_spool_commit_many(struct ms_spool_writer **writers, size_t count, char *err, size_t errlen);
/* Drop the tmp file and the links it made (transaction rolled back).
 * Frees the writer. */
void ms_spool_abort(struct ms_spool_writer **writer);

/* begin + write + commit for a message held in memory. */
int ms_spool_submit(const char *spool_dir, const char *user, enum ms_class cls, const void *msg,
                    size_t size, char *err, size_t errlen);

/* Tell the learner there is work: non-blocking connect + "POKE\n", never
 * waits. Returns 0 if the line was sent, -1 otherwise (the learner's timer
 * picks the file up anyway). */
int ms_spool_poke(const char *learner_socket);
/* The two halves of ms_spool_poke(), for a producer that must know first
 * whether a learner listens: a connected socket, or -1 (no learner, or
 * its backlog is full); then send the poke on it, which closes it. */
int ms_spool_learner_connect(const char *learner_socket);
int ms_spool_poke_fd(int fd);

/* ---- the consumer ---- */

/* A name in msg/ a link record may carry: 1 to MS_SPOOL_LINK_MAX bytes of
 * A-Z a-z 0-9 . _ -, not starting with '.' (never a path). */
bool ms_spool_link_name_valid(const char *name, size_t len);

/* Create spool_dir and its tmp/, new/, bad/, msg/; chown them to uid:gid unless
 * uid is (uid_t)-1. Existing directories are kept. */
int ms_spool_mkdirs(const char *spool_dir, uid_t uid, gid_t gid, char *err, size_t errlen);

/* The names in new/, oldest first. Free with ms_spool_names_free(). */
int ms_spool_list(const char *spool_dir, char ***names_r, size_t *count_r, char *err,
                  size_t errlen);
void ms_spool_names_free(char **names, size_t count);

struct ms_spool_lookup;

struct ms_spool_entry {
	char user[MS_SPOOL_USER_MAX + 1];
	enum ms_class cls;
	/* 1: one message, 2: a batch, 3: a batch with links, 4: references
	   to Maildir files (pinned, then learned) */
	unsigned int version;
	unsigned int count;       /* messages the header announces (1 for version 1) */
	unsigned int index;       /* messages ms_spool_next() returned so far */
	const unsigned char *msg; /* the current message, points into data */
	size_t size;
	/* The current message is msg/<link> (else ""). msg is NULL when the
	   file could not be read: link_error says why, size is its length
	   when it was over the limit. */
	char link[MS_SPOOL_LINK_MAX + 1];
	const char *link_error;
	/* Format 4: X-Mailsift-Maildir, and the current record's reference
	   ("new/<name>" or "cur/<name>" under maildir). */
	char maildir[MS_SPOOL_MAILDIR_MAX + 1];
	char ref[MS_SPOOL_REF_PATH_MAX + 1];
	struct ms_spool_lookup *lookup;  /* the Maildir's names, once one moved */
	const unsigned char *next, *end; /* the records not read yet */
	const unsigned char *first;      /* the first record */
	unsigned char *data;             /* the whole file */
	size_t data_size;
	/* Set by ms_spool_read(): where link records are read from, and the
	   largest linked file read into memory. Linked messages stay in held
	   until ms_spool_release(). */
	const char *spool_dir;
	size_t link_max;
	unsigned char **held;
	size_t nheld, held_cap;
	char link_why[128];
};

/* The system is in trouble (file descriptors, memory, I/O, a full disk):
 * the same call may work later, unlike one on a file that is wrong. */
bool ms_spool_errno_transient(int error);

enum ms_spool_read_result {
	MS_SPOOL_READ_OK,
	MS_SPOOL_READ_GONE,  /* someone else took it: skip */
	MS_SPOOL_READ_BAD,   /* malformed or too big: move it to bad/ */
	MS_SPOOL_READ_ERROR, /* the system is in trouble (fds, memory, I/O): retry later */
};

/* Read and parse the header of new/<name>: at most max_size bytes of a
 * single-message file, of a batch at most MS_SPOOL_BATCH_MAX (or max_size
 * if larger). err says why for BAD and ERROR. Then take its messages with
 * ms_spool_next(); free the entry with ms_spool_entry_free(). */
enum ms_spool_read_result ms_spool_read(const char *spool_dir, const char *name, size_t max_size,
                                        struct ms_spool_entry *entry, char *err, size_t errlen);
void ms_spool_entry_free(struct ms_spool_entry *entry);

/* The version (1 to 4) the first line of new/<name> announces, 0 for none,
 * -1 when it cannot be read (errno: ENOENT when it is gone). Reads one
 * line, not the file. */
int ms_spool_peek_version(const char *spool_dir, const char *name);

/* Parse the header of a whole spool file held in memory; name (its new/
 * name) must carry the same class. Returns 0, or -1 with the problem in
 * err. For version 1 entry->msg is the message already; entry->data is
 * left NULL. */
int ms_spool_parse(const unsigned char *data, size_t size, const char *name,
                   struct ms_spool_entry *entry, char *err, size_t errlen);
/* The next message of a parsed file into entry->msg/size: 1, or 0 after
 * the last one, or -1 (err says why) when the rest of the file is
 * malformed: the messages returned before it were sound. A link record
 * read from spool_dir/msg/ stays in memory until ms_spool_release(); one
 * that is missing or unreadable comes back as 1 with msg NULL (skip it);
 * -2 when the system could not read it now (fds, memory, I/O): retry the
 * file later. Without entry->spool_dir (ms_spool_parse() alone) a link
 * record comes back with msg NULL and link_error NULL.
 * A reference record (format 4) sets entry->ref. Format 4 is pinned before
 * it is learned (ms_spool_pin), so without entry->spool_dir it comes back
 * with msg NULL; with it (a Maildir the learner could not link from), the
 * file is read as <maildir>/<ref>, or under its new name (see
 * ms_spool_lookup_find), like a link record. */
int ms_spool_next(struct ms_spool_entry *entry, char *err, size_t errlen);
/* Free the linked messages ms_spool_next() returned so far. */
void ms_spool_release(struct ms_spool_entry *entry);
/* Delete the files in msg/ a learned entry links to (the entry must have
 * been parsed from its whole file). Missing ones are no error. */
int ms_spool_remove_links(const char *spool_dir, const struct ms_spool_entry *entry, char *err,
                          size_t errlen);

/* Delete new/<name> once the store confirmed. No directory fsync: a delete
 * that a crash undoes only relearns a message the store already counted. */
int ms_spool_remove(const char *spool_dir, const char *name, char *err, size_t errlen);
/* Move new/<name> aside into bad/ (unlink it if that fails) so it is never
 * read again. */
int ms_spool_reject(const char *spool_dir, const char *name, char *err, size_t errlen);
/* Remove tmp/ files older than max_age seconds (producers that died).
 * Returns how many, or -1. */
int ms_spool_clean_tmp(const char *spool_dir, unsigned int max_age, char *err, size_t errlen);

/* Remove msg/ files whose manifest is in neither tmp/ nor new/ and whose
 * link is older than max_age seconds (a producer died between linking
 * and publishing, or the manifest went to bad/). Returns how many, or -1. */
int ms_spool_clean_links(const char *spool_dir, unsigned int max_age, char *err, size_t errlen);

/* Finds the Maildir file a reference named once Dovecot renamed it (a flag
 * changed, or new/ -> cur/): a file of cur/, then new/, whose name is the
 * reference's base name (the part before ':') or starts with it and ':'.
 * *lookup caches one listing of each directory (made at the first call;
 * free it with ms_spool_lookup_free). Writes "<maildir>/<sub>/<file>" into
 * path: returns 1, 0 when there is none, -1 (err) when a directory could not
 * be read. reload: list the directories again (a file renamed meanwhile). */
int ms_spool_lookup_find(struct ms_spool_lookup **lookup, const char *maildir, const char *ref,
                         bool reload, char *path, size_t size, char *err, size_t errlen);
void ms_spool_lookup_free(struct ms_spool_lookup **lookup);

/* ---- pinning (lib/ms-spool-pin.c, the learner only) ---- */

enum ms_spool_pin_result {
	MS_SPOOL_PIN_ERROR = -1, /* the system is in trouble (err): retry later */
	MS_SPOOL_PIN_NONE = 0,   /* not format 4, or gone: nothing done */
	/* Pinned: new/<name> is now format 3 with the messages found (links
	   msg/<unique>.<n>, n the reference's position), or, when none was
	   found, removed (nothing to learn). */
	MS_SPOOL_PIN_DONE = 1,
	MS_SPOOL_PIN_BAD = 2, /* malformed (err): move it to bad/ */
	/* No link can be made (msg/ on another file system, EPERM, EACCES,
	   EROFS, EMLINK; err says which): left as format 4, no links; learn it
	   by reading the Maildir files directly (ms_spool_read/next). */
	MS_SPOOL_PIN_UNLINKABLE = 3,
};

/* Called for each reference whose file is gone (expunged before it could
 * be pinned): index counts from 1, path is <maildir>/<ref>. */
typedef void ms_spool_pin_gone_fn(void *context, unsigned int index, unsigned int count,
                                  const char *path);

/* If new/<name> is format 4: hard-link each referenced Maildir file into
 * msg/<unique>.<n> (unique: the name's part after "<class>."), fsync msg/,
 * write a format-3 manifest naming those links to tmp/<unique>
 * (fdatasync) and rename it over new/<name>, fsync new/. A file not where
 * its reference says is looked for under its new name (at most one
 * listing of cur/ and new/ per manifest, ms_spool_lookup_find); references
 * whose file is gone are left out and given to gone (may be NULL).
 * Linking needs the files' owner (fs.protected_hardlinks): the learner runs
 * as the virtual-mail user. *pinned_r and
 * *count_r (both may be NULL) get the messages linked and referenced.
 * Safe to repeat after a crash half-way: a link left by an earlier try of
 * the same manifest is its own (the name is the manifest's) and is kept. */
enum ms_spool_pin_result ms_spool_pin(const char *spool_dir, const char *name,
                                      ms_spool_pin_gone_fn *gone, void *context,
                                      unsigned int *pinned_r, unsigned int *count_r, char *err,
                                      size_t errlen);

const char *ms_spool_class_name(enum ms_class cls);
int ms_spool_class_parse(const char *name, enum ms_class *cls_r);

#endif
