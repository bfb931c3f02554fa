#ifndef MS_HASH_H
#define MS_HASH_H

#include <stddef.h>
#include <stdint.h>

/* XXH64 (Yann Collet's xxHash, 64-bit variant), written here from its
 * published specification. Token hashes live in Redis for months, so this
 * must give the same value on every run and machine: input is read as
 * little-endian whatever the CPU. Not keyed: it names tokens, it does not
 * authenticate anything. */
uint64_t ms_hash64(const void *data, size_t size, uint64_t seed);

/* The hash of an ordered pair of token hashes at a distance (sparse word
 * pairs): XXH64 of the 16 bytes le64(first) || le64(second), seeded with
 * the distance. */
uint64_t ms_hash_pair(uint64_t first, uint64_t second, unsigned int distance);

#endif
