// SPDX-License-Identifier: GPL-2.0
/*
 * dio-append-write - O_APPEND|O_DIRECT writes from a partly resident buffer
 *
 * Fixes, fstests, parameters, may-hang: the dg_repro table at the end of
 * this file (--describe, --describe --json).
 *
 * The file is truncated to --offset, then --size bytes are appended in
 * write calls of --chunk bytes. On a kernel without the fix, a write that
 * faults retries after i_size has already grown, re-reads the append
 * position from it and lands past the end: the file comes out too long,
 * with a hole where the data should be. The check is st_size == offset +
 * size and the content of [offset, offset + size). generic/362's shape is
 * --buffer anon --fault first (first page touched, the rest never).
 * Exit 0 PASS, 1 FAIL (wrong size or data), 2 BROKEN, 4 SKIP.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diogap.h"

/* O_APPEND: the kernel picks the position (off is where it should be) */
static ssize_t write_append(const struct dg_opts *o, int fd, char *p, size_t n,
			    uint64_t off)
{
	(void)o;
	(void)off;
	return write(fd, p, n);
}

static int run(const struct dg_opts *o, unsigned iteration, uint64_t run_id,
	       struct dg_result *r, struct dg_buf *b)
{
	static char extra[160];
	uint64_t chunk = o->chunk ? o->chunk : o->size, c, bad_pos = UINT64_MAX;
	struct dg_write_count wc = { 0, 0 };
	struct stat st;
	int fd, v;

	dg_iter_prepare(o, iteration, run_id, b);
	fd = CHECK_SYS(open(o->file, O_RDWR | O_APPEND | O_DIRECT | O_CLOEXEC));
	CHECK_SYS(ftruncate(fd, 0));
	CHECK_SYS(ftruncate(fd, (off_t)o->offset));
	for (c = 0; c < o->size; c += chunk) {
		size_t n = (size_t)(o->size - c < chunk ? o->size - c : chunk);

		v = dg_write_range(o, b, fd, c, n, write_append, &wc, r);
		if (v) {
			close(fd);
			return v;
		}
		/* where did the append position go? (not timed) */
		CHECK_SYS(fstat(fd, &st));
		if (bad_pos == UINT64_MAX && (uint64_t)st.st_size != o->offset + c + n)
			bad_pos = (uint64_t)st.st_size;
	}
	if (bad_pos == UINT64_MAX)
		snprintf(extra, sizeof(extra),
			 "\"write_calls\":%u,\"short_writes\":%u,\"first_bad_append_size\":null",
			 wc.calls, wc.shorts);
	else
		snprintf(extra, sizeof(extra),
			 "\"write_calls\":%u,\"short_writes\":%u,\"first_bad_append_size\":%" PRIu64,
			 wc.calls, wc.shorts, bad_pos);
	r->extra_json = extra;
	r->size_expected = o->offset + o->size;
	v = dg_iter_verify(o, fd, b, run_id, iteration, r);
	close(fd);
	return v;
}

int main(int argc, char **argv)
{
	static const struct dg_repro rp = {
		.name = "dio-append-write",
		.summary = "O_APPEND|O_DIRECT writes from a partly resident buffer",
		.fixes = {
			{ "939b656bc8ab",
			  "btrfs: fix corruption after buffer fault in during direct IO append write" },
		},
		.introduced_by = { "8184620ae212",
				   "btrfs: fix lost file sync on direct IO write with nowait and dsync iocb" },
		.fstests = "generic/362",
		.params = "size fault buffer chunk offset",
		.may_hang = false,
		.engines = NULL,
		.run = run,
	};

	return dg_main(&rp, argc, argv);
}
