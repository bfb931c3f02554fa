#ifndef MS_DIGEST_H
#define MS_DIGEST_H

#include <stddef.h>

/* Bytes of SHA-256 kept: 128 bits make an accidental match between two
 * learned messages practically impossible and keep the store small. */
#define MS_DIGEST_SIZE 16

/* The identity of a message for learning: SHA-256 of its headers and body
 * without what changes on the way to and inside a mailbox (Received,
 * Return-Path, Delivered-To, X-Spam-*, IMAP status headers...), line endings
 * as LF. The same message learned from the CLI, from the spool after an IMAP
 * move, or re-delivered gets the same digest. Returns 0, or -1 if OpenSSL
 * fails. */
int ms_message_digest(const unsigned char *msg, size_t size, unsigned char digest[MS_DIGEST_SIZE]);

#endif
