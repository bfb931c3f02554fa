#ifndef LEARND_H
#define LEARND_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "ms-spool.h"

struct ms_config;
struct ms_filter;
struct learnd_conn;

#define LEARND_SCAN_SECS      10  /* spool timer */
#define LEARND_BACKOFF_MIN_MS 250 /* Redis retry, doubling up to ... */
#define LEARND_BACKOFF_MAX_MS (LEARND_SCAN_SECS * 1000)
#define LEARND_BATCH          64 /* spool messages between two looks at sockets */
#define LEARND_MAX_CONNS      32
#define LEARND_TMP_MAX_AGE    (36 * 3600)
#define LEARND_PID_FILE       "/var/run/mailsift/mailsift-learnd.pid"

/* The service's state: one per process, built in main(). */
struct learnd {
	const struct ms_config *cfg;
	struct ms_filter *filter;
	int listen_fd;
	size_t max_file_size; /* spool file: message plus header */

	bool spool_wanted; /* a start, a poke or the timer asked for a pass */
	/* ... and for a pin pass (format 4), which runs first */
	bool pin_wanted;
	/* The names of new/ the last pin pass looked at and need no more
	   (strcmp order): with Redis down the files pile up, and each poke
	   must not open them all again. */
	char **pin_seen;
	size_t npin_seen;
	long long retry_at; /* msecs: no pass before (Redis backoff) */
	unsigned int backoff_ms;
	long long next_scan; /* msecs: the timer */
	char **names;        /* the listing of new/ being worked through */
	size_t nnames, pos;
	/* The file being learned, names[pos - 1]: a batch may take several
	   turns of the loop. */
	struct ms_spool_entry file;
	const char *file_name;

	struct learnd_conn *conns[LEARND_MAX_CONNS];
	unsigned int nconns;
};

/* Set by the signal handlers; the loop looks between files. */
extern volatile sig_atomic_t learnd_terminate;

long long learnd_now_ms(void);

/* learnd-spool.c: process up to LEARND_BATCH files of new/. */
void learnd_spool_batch(struct learnd *l);
void learnd_spool_clean(struct learnd *l);
/* Pins every format-4 file of new/ (learning waits for Redis and works
   through the files in order; pinning must not wait). */
void learnd_spool_pin_all(struct learnd *l);
void learnd_spool_free(struct learnd *l);

/* learnd-control.c: the learner socket. */
void learnd_control_accept(struct learnd *l);
int learnd_control_fd(const struct learnd *l, unsigned int slot);
/* revents per conns[] slot; closes finished connections. */
void learnd_control_io(struct learnd *l, unsigned int slot, short revents);
void learnd_control_expire(struct learnd *l);
void learnd_control_close_all(struct learnd *l);

#endif
