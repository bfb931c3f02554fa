#ifndef MS_HEADER_H
#define MS_HEADER_H

#include <stdbool.h>
#include <stddef.h>

/* The header block of a message as received, CRLF or LF. */

/* Length of the header block: everything before the empty line that ends
 * it (the whole message if there is none). The empty line stays with the
 * body. */
size_t ms_header_length(const unsigned char *msg, size_t size);

/* Copy the header block hdr to out (room for hdrlen bytes), leaving out
 * every X-Spam-* field (they would let a sender choose the folder) and
 * every Return-Path field (delivery writes the true one), each with its
 * folded continuation lines. Returns the bytes written. */
size_t ms_header_filter(const unsigned char *hdr, size_t hdrlen, unsigned char *out);

/* Does the run of Return-Path / Delivered-To fields at the top of hdr hold
 * "Delivered-To: rcpt"? That is the MTA's own line for this very delivery
 * (OpenSMTPD's mda adds one), not to be written twice. */
bool ms_header_top_delivered_to(const unsigned char *hdr, size_t hdrlen, const char *rcpt);

/* Length of an mbox "From " line at the very start of msg (0 if none): an
 * MTA's pipe may add one, and it is no header. */
size_t ms_header_mbox_from_length(const unsigned char *msg, size_t size);

/* The address of the first Return-Path field in hdr, without <>, into buf.
 * Returns false if there is none (or it does not fit). */
bool ms_header_return_path(const unsigned char *hdr, size_t hdrlen, char *buf, size_t bufsize);

#endif
