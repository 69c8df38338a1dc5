// SPDX-License-Identifier: GPL-2.0
/*
 * bare-io - the baseline for bench-repro: N rounds of one O_DIRECT pwrite
 * of SIZE bytes from a pre-faulted aligned buffer and one O_DIRECT pread
 * back, on a new file in DIR. Prints the median microseconds of each:
 *   write_us=W read_us=R min_total_us=T rounds=N
 * (T: the fastest write + read round, the cost without noise)
 * usage: bare-io SIZE_BYTES ROUNDS DIR
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diogap.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	uint64_t size, *w, *r, best = UINT64_MAX;
	unsigned rounds, i;
	char path[4096];
	char *buf;
	int fd;

	dg_prog = "bare-io";
	if (argc != 4 || dg_parse_size(argv[1], &size) || !size ||
	    (rounds = (unsigned)strtoul(argv[2], NULL, 10)) == 0)
		dg_usage_error("usage: bare-io SIZE ROUNDS DIR");
	snprintf(path, sizeof(path), "%s/bare-io-%d.dat", argv[3], (int)getpid());
	fd = CHECK_SYS(open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0600));
	unlink(path);
	buf = dg_xaligned(4096, (size_t)size); /* zeroed: every page faulted in */
	memset(buf, 0x5a, (size_t)size);
	w = dg_xmalloc(rounds * sizeof(*w));
	r = dg_xmalloc(rounds * sizeof(*r));
	for (i = 0; i < rounds; i++) {
		uint64_t t = dg_now_us();

		CHECK(pwrite(fd, buf, (size_t)size, 0) == (ssize_t)size);
		w[i] = dg_now_us() - t;
		t = dg_now_us();
		CHECK(pread(fd, buf, (size_t)size, 0) == (ssize_t)size);
		r[i] = dg_now_us() - t;
		if (w[i] + r[i] < best)
			best = w[i] + r[i];
	}
	qsort(w, rounds, sizeof(*w), cmp_u64);
	qsort(r, rounds, sizeof(*r), cmp_u64);
	printf("write_us=%" PRIu64 " read_us=%" PRIu64 " min_total_us=%" PRIu64 " rounds=%u\n",
	       w[rounds / 2], r[rounds / 2], best, rounds);
	close(fd);
	return 0;
}
