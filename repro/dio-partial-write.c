// SPDX-License-Identifier: GPL-2.0
/*
 * dio-partial-write - O_DIRECT pwrite/pwritev from a partly resident buffer
 *
 * Fixes, fstests, parameters, may-hang: the dg_repro table at the end of
 * this file (--describe, --describe --json).
 *
 * btrfs writes O_DIRECT with page faults disabled on the user buffer. When
 * only a prefix of the buffer is mapped, iomap submits that prefix as a
 * partial bio; a kernel without the fix errors the whole ordered extent,
 * faults the rest in and writes the rest, and the prefix never gets a file
 * extent: it reads back as zeros (a hole) or as the older data. Each write
 * call (--chunk) starts at a resident page when --fault first.
 * --engine psync: one pwrite per call; pwritev: each call split into
 * several iovecs. Exit 0 PASS, 1 FAIL (data lost), 2 BROKEN, 4 SKIP.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "diogap.h"

#define MAX_IOV 8

/* Split [p, p+n) into up to MAX_IOV iovecs of whole alignment units. */
static int split_iov(char *p, size_t n, size_t unit, struct iovec *iov)
{
	size_t units = n / unit, per, i, k = units < MAX_IOV ? units : MAX_IOV;

	if (k <= 1 || n % unit) {
		iov[0] = (struct iovec){ p, n };
		return 1;
	}
	per = units / k;
	for (i = 0; i < k; i++) {
		size_t len = i == k - 1 ? n - (k - 1) * per * unit : per * unit;

		iov[i] = (struct iovec){ p + i * per * unit, len };
	}
	return (int)k;
}

static ssize_t write_psync(const struct dg_opts *o, int fd, char *p, size_t n,
			   uint64_t off)
{
	(void)o;
	return pwrite(fd, p, n, (off_t)off);
}

static ssize_t write_vec(const struct dg_opts *o, int fd, char *p, size_t n,
			 uint64_t off)
{
	struct iovec iov[MAX_IOV];

	return pwritev(fd, iov, split_iov(p, n, o->dio_align, iov), (off_t)off);
}

static int run(const struct dg_opts *o, unsigned iteration, uint64_t run_id,
	       struct dg_result *r, struct dg_buf *b)
{
	static char extra[128];
	bool vec = o->engine && !strcmp(o->engine, "pwritev");
	uint64_t chunk = o->chunk ? o->chunk : o->size, c;
	struct dg_write_count wc = { 0, 0 };
	int fd, v;

	dg_iter_prepare(o, iteration, run_id, b);
	fd = CHECK_SYS(open(o->file, O_RDWR | O_DIRECT | O_CLOEXEC));
	for (c = 0; c < o->size; c += chunk) {
		size_t n = (size_t)(o->size - c < chunk ? o->size - c : chunk);

		v = dg_write_range(o, b, fd, c, n, vec ? write_vec : write_psync, &wc, r);
		if (v) {
			close(fd);
			return v;
		}
	}
	snprintf(extra, sizeof(extra), "\"write_calls\":%u,\"short_writes\":%u", wc.calls,
		 wc.shorts);
	r->extra_json = extra;
	v = dg_iter_verify(o, fd, b, run_id, iteration, r);
	close(fd);
	return v;
}

int main(int argc, char **argv)
{
	static const struct dg_repro rp = {
		.name = "dio-partial-write",
		.summary = "O_DIRECT pwrite/pwritev from a partly resident buffer",
		.fixes = {
			{ "b73a6fd1b1ef",
			  "btrfs: split partial dio bios before submit" },
		},
		.introduced_by = { "51bd9563b678",
				   "btrfs: fix deadlock due to page faults during direct IO reads and writes" },
		.fstests = "generic/708",
		.params = "size fault buffer engine chunk offset",
		.may_hang = false,
		.engines = "psync|pwritev",
		.run = run,
	};

	return dg_main(&rp, argc, argv);
}
