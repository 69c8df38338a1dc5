// SPDX-License-Identifier: GPL-2.0
/*
 * pattern.c - the self-describing data pattern. Each 512-byte sector is a
 * header (magic, file offset, run id, iteration, checksum) followed by
 * filler derived from the header, so any sector read back names where and
 * when it was written.
 */
#include <stddef.h>
#include <string.h>

#include "diogap.h"

#define WORDS (DG_SECTOR / 8)
#define CSUM_WORD (offsetof(struct dg_sector_hdr, csum) / 8)

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

uint32_t dg_sector_csum(const void *sector)
{
	const uint64_t *w = sector;
	uint64_t h = 0x9e3779b97f4a7c15ULL;
	size_t i;

	for (i = 0; i < WORDS; i++) {
		uint64_t v = w[i];

		/* the word holding iteration and csum: hash it with csum = 0 */
		if (i == CSUM_WORD) {
			struct dg_sector_hdr hdr;

			memcpy(&hdr, sector, sizeof(hdr));
			hdr.csum = 0;
			memcpy(&v, (char *)&hdr + CSUM_WORD * 8, 8);
		}
		h = (h ^ v) * 0x100000001b3ULL + i;
	}
	h = mix64(h);
	return (uint32_t)(h ^ (h >> 32));
}

bool dg_sector_valid(const void *sector)
{
	struct dg_sector_hdr h;

	memcpy(&h, sector, sizeof(h));
	return h.magic == DG_MAGIC && h.csum == dg_sector_csum(sector);
}

void dg_pattern_fill(void *buf, size_t len, uint64_t file_offset,
		     uint64_t run_id, uint32_t iteration)
{
	char *p = buf;
	size_t s;

	_Static_assert(sizeof(struct dg_sector_hdr) == 32, "header layout");
	for (s = 0; s + DG_SECTOR <= len; s += DG_SECTOR) {
		uint64_t *w = (uint64_t *)(p + s);
		struct dg_sector_hdr h = {
			.magic = DG_MAGIC,
			.offset = file_offset + s,
			.run_id = run_id,
			.iteration = iteration,
			.csum = 0,
		};
		uint64_t x = mix64(h.offset ^ mix64(run_id + iteration));
		size_t i;

		memcpy(w, &h, sizeof(h));
		for (i = sizeof(h) / 8; i < WORDS; i++) {
			x += 0x9e3779b97f4a7c15ULL;
			w[i] = mix64(x);
		}
		h.csum = dg_sector_csum(w);
		memcpy(w, &h, sizeof(h));
	}
	/* a ragged tail (len not a multiple of 512) is filler only */
	if (s < len)
		memset(p + s, 0xa5, len - s);
}
