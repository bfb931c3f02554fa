#include "ms-hash.h"

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static inline uint64_t
rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t
read64(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
	       (uint64_t)p[7] << 56;
}

static inline uint64_t
read32(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
}

static inline uint64_t
round64(uint64_t acc, uint64_t input)
{
	acc += input * P2;
	acc = rotl64(acc, 31);
	return acc * P1;
}

static inline uint64_t
merge64(uint64_t acc, uint64_t val)
{
	acc ^= round64(0, val);
	return acc * P1 + P4;
}

static inline uint64_t
avalanche(uint64_t h)
{
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	h ^= h >> 32;
	return h;
}

static uint64_t
stripes(const unsigned char **pp, const unsigned char *end, uint64_t seed)
{
	const unsigned char *p = *pp;
	uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
	uint64_t h;

	do {
		v1 = round64(v1, read64(p));
		v2 = round64(v2, read64(p + 8));
		v3 = round64(v3, read64(p + 16));
		v4 = round64(v4, read64(p + 24));
		p += 32;
	} while (end - p >= 32);
	h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
	h = merge64(h, v1);
	h = merge64(h, v2);
	h = merge64(h, v3);
	h = merge64(h, v4);
	*pp = p;
	return h;
}

uint64_t
ms_hash64(const void *data, size_t size, uint64_t seed)
{
	const unsigned char *p = data, *end = p + size;
	uint64_t h;

	h = size >= 32 ? stripes(&p, end, seed) : seed + P5;
	h += size;
	for (; end - p >= 8; p += 8) {
		h ^= round64(0, read64(p));
		h = rotl64(h, 27) * P1 + P4;
	}
	if (end - p >= 4) {
		h ^= read32(p) * P1;
		h = rotl64(h, 23) * P2 + P3;
		p += 4;
	}
	for (; p < end; p++) {
		h ^= *p * P5;
		h = rotl64(h, 11) * P1;
	}
	return avalanche(h);
}

/* ms_hash64() of the 16 bytes, its steps for that length written out:
 * a word pair is every other token, and this needs no buffer and no loop. */
uint64_t
ms_hash_pair(uint64_t first, uint64_t second, unsigned int distance)
{
	uint64_t h = (uint64_t)distance + P5 + 16;

	h ^= round64(0, first);
	h = rotl64(h, 27) * P1 + P4;
	h ^= round64(0, second);
	h = rotl64(h, 27) * P1 + P4;
	return avalanche(h);
}
