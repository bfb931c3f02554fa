#ifndef MS_SIEVE_CLIENT_H
#define MS_SIEVE_CLIENT_H

#include <stddef.h>
#include <sys/types.h>

#include "ms-sieve.h"

/* The delivery side of Sieve: Pigeonhole runs in a worker process
 * (mailsift-sieve, started once and reused), so a Dovecot i_panic() or a
 * crash costs one delivery attempt, never the daemon. Plain POSIX: nothing
 * of Dovecot is linked into the caller. */
struct ms_sieve_client;

struct ms_sieve_client *ms_sieve_client_create(const char *worker_path, unsigned int timeout_secs);
void ms_sieve_client_destroy(struct ms_sieve_client **client);

/* Run Sieve for one delivery in the worker, as uid/gid when the caller is
 * root (the worker is restarted when the user's ids change). Returns 0 with
 * out filled, or -1 (err set) when the worker failed, was killed or timed
 * out: the delivery is a temporary failure and nothing was decided. */
int ms_sieve_client_run(struct ms_sieve_client *client, const struct ms_sieve_settings *set,
                        const struct ms_sieve_request *req, uid_t uid, gid_t gid,
                        struct ms_sieve_outcome *out, char *err, size_t errlen);

/* ms_sieve_client_run in two halves, so the caller can work while Sieve
 * runs (the delivery writes the message into tmp/ meanwhile). Every
 * successful send must be followed by one receive. Same returns. */
int ms_sieve_client_send(struct ms_sieve_client *client, const struct ms_sieve_settings *set,
                         const struct ms_sieve_request *req, uid_t uid, gid_t gid, char *err,
                         size_t errlen);
int ms_sieve_client_receive(struct ms_sieve_client *client, struct ms_sieve_outcome *out, char *err,
                            size_t errlen);

/* Wire format between client and worker (same build, same host). */
#define MS_SIEVE_PROTO_REQUEST 0x4d535231u /* "MSR1" */
#define MS_SIEVE_PROTO_REPLY   0x4d534f31u /* "MSO1" */
#define MS_SIEVE_PROTO_FIELDS  14

int ms_sieve_proto_write_request(int fd, const struct ms_sieve_settings *set,
                                 const struct ms_sieve_request *req);
/* Reads one request; strings point into *buf_r (free() it). Returns 1, 0 on
 * EOF before a request, -1 on error. */
int ms_sieve_proto_read_request(int fd, struct ms_sieve_settings *set, struct ms_sieve_request *req,
                                char **buf_r);
int ms_sieve_proto_write_reply(int fd, const struct ms_sieve_outcome *out);

#endif
