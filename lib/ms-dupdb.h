#ifndef MS_DUPDB_H
#define MS_DUPDB_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* A user's Sieve duplicates file (vacation's :days, redirect loops, the
 * duplicate test): ids hashed, each with its expiry, at most max entries
 * (the ones expiring last are kept). Opening locks the file until commit or
 * rollback, so concurrent deliveries to one user take turns. */
struct ms_dupdb;

struct ms_dupdb *ms_dupdb_open(const char *path, unsigned int max, char *err, size_t errlen);
/* Is id marked and not expired at now? */
bool ms_dupdb_check(struct ms_dupdb *db, const void *id, size_t size, time_t now);
void ms_dupdb_mark(struct ms_dupdb *db, const void *id, size_t size, time_t expiry);
/* Writes the changes and closes. Returns 0 or -1 (err filled; db freed). */
int ms_dupdb_commit(struct ms_dupdb *db, char *err, size_t errlen);
void ms_dupdb_rollback(struct ms_dupdb *db);

#endif
