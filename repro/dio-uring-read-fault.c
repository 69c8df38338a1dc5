/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dio-uring-read-fault - io_uring O_DIRECT read over several extents into a
 * partly resident buffer
 *
 * Fixes, fstests, parameters, may-hang: the dg_repro table at the end of
 * this file (--describe, --describe --json).
 *
 * The file gets one extent per page (--size / page size extents, default
 * 2): each page is written with O_DIRECT and fsynced on its own, last page
 * first, so no two extents are contiguous on disk (FIEMAP must see them
 * apart, else the iteration is SKIP: precondition not met). The page cache
 * is dropped (POSIX_FADV_DONTNEED), then the whole range is read with one
 * io_uring readv (a plain read of a regular file: io_uring tries it
 * NOWAIT first) into a fresh anonymous mapping where only the pages the
 * fault pattern asks for are resident (`first`: page 0, as generic/678).
 * On a kernel without the fix, btrfs submits the first extent's bio, then
 * cannot fault in the next page without blocking and completes the read
 * short: "short read: res 4096 of 8192", the rest of the buffer untouched.
 * The completion must be the whole length and the data right.
 * FAIL symptom size: a short read (size_seen = bytes the completion
 * reported, size_expected = bytes asked); data: wrong bytes; eio-read:
 * -EIO. --fault all is the control (nothing to fault: never short).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <liburing.h>

#include "diogap.h"

#define BUF_MARK 0xa5 /* what the resident pages of the read buffer hold before the read */
#define FIEMAP_MAX 64

/* File extents over [0, len): FIEMAP, adjacent ones counted apart. -1 when
 * FIEMAP is not supported. */
static int count_extents(int fd, uint64_t len)
{
	size_t sz = sizeof(struct fiemap) + FIEMAP_MAX * sizeof(struct fiemap_extent);
	struct fiemap *fm = dg_xmalloc(sz);
	int n;

	fm->fm_start = 0;
	fm->fm_length = len;
	fm->fm_flags = FIEMAP_FLAG_SYNC;
	fm->fm_extent_count = FIEMAP_MAX;
	if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
		free(fm);
		return -1;
	}
	n = (int)fm->fm_mapped_extents;
	free(fm);
	return n;
}

/* One extent per page, written last page first, each fsynced. The file's
 * expected content goes to data (len bytes). 0, or a verdict. */
static int make_extents(const struct dg_opts *o, int fd, size_t page, char *data,
			uint64_t run_id, unsigned iteration, struct dg_result *r)
{
	size_t len = (size_t)o->size, np = len / page, i;
	char *src = dg_xbuffer(page, page);

	dg_pattern_fill(data, len, 0, run_id, iteration);
	CHECK_SYS(ftruncate(fd, 0));
	for (i = np; i-- > 0;) {
		ssize_t w;

		memcpy(src, data + i * page, page);
		w = pwrite(fd, src, page, (off_t)(i * page));
		if (w != (ssize_t)page) {
			free(src);
			return dg_write_failed(w < 0 ? errno : EIO, i * page, r);
		}
		if (fsync(fd)) {
			free(src);
			return dg_write_failed(errno, i * page, r);
		}
	}
	free(src);
	return 0;
}

/* Drop the file's page cache; ENOSYS (no ADVISE_SYSCALLS) is fine: O_DIRECT
 * writes left nothing cached. */
static void drop_cache(int fd)
{
	int e = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);

	if (e && e != ENOSYS)
		dg_die_at(__FILE__, __LINE__, "posix_fadvise(POSIX_FADV_DONTNEED)", e);
}

static int ring_skip(int err)
{
	return err == ENOSYS || err == EPERM || err == EINVAL || err == EOPNOTSUPP;
}

/* One io_uring readv of [0, len) into map; the CQE's res (or -errno of the
 * ring itself in *ring_err). */
static int uring_read(int fd, char *map, size_t len, int *res, int *ring_err)
{
	struct iovec iov = { .iov_base = map, .iov_len = len };
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	int ret = io_uring_queue_init(1, &ring, 0);

	if (ret < 0) {
		*ring_err = -ret;
		return -1;
	}
	sqe = io_uring_get_sqe(&ring);
	CHECK(sqe != NULL);
	io_uring_prep_readv(sqe, fd, &iov, 1, 0);
	do
		ret = io_uring_submit(&ring);
	while (ret == -EINTR);
	if (ret < 0)
		dg_die_at(__FILE__, __LINE__, "io_uring_submit", -ret);
	do
		ret = io_uring_wait_cqe(&ring, &cqe);
	while (ret == -EINTR);
	if (ret < 0)
		dg_die_at(__FILE__, __LINE__, "io_uring_wait_cqe", -ret);
	*res = cqe->res;
	io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
	return 0;
}

/* Bytes of the buffer from off on that still hold what they held before
 * the read (BUF_MARK on resident pages, zeros elsewhere). */
static size_t untouched_from(const struct dg_buf *b, size_t off)
{
	const char *before = dg_buf_expected(b);
	size_t i;

	for (i = off; i < b->len; i++)
		if (b->map[i] != before[i])
			break;
	return i - off;
}

/* The verdict, its symptom (JSON "symptom"; on FAIL only) and our members. */
static int verdict(struct dg_result *r, int v, const char *symptom, char *extra,
		   size_t n, int extents, int res, size_t untouched)
{
	snprintf(extra, n, "\"extents\":%d,\"res\":%d,\"untouched_after_res\":%zu",
		 extents, res, untouched);
	r->extra_json = extra;
	r->symptom = symptom;
	return r->verdict = v;
}

static int run(const struct dg_opts *o, unsigned iteration, uint64_t run_id,
	       struct dg_result *r, struct dg_buf *b)
{
	static char extra[256];
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len = (size_t)o->size;
	struct dg_opts oc = *o;
	unsigned char *want;
	char *data, *before, err[160];
	int fd, v, extents, res = 0, ring_err = 0;
	size_t bad, untouched = 0;
	uint64_t t;

	if (len % page || len < 2 * page)
		dg_usage_error("--size %zu must be 2 or more whole pages of %zu bytes (one extent each)",
			       len, page);
	if (o->offset)
		dg_usage_error("--offset %" PRIu64 ": the file starts at 0 here", o->offset);
	data = dg_xmalloc(len);
	fd = CHECK_SYS(open(o->file, O_RDWR | O_DIRECT | O_CLOEXEC));
	v = make_extents(o, fd, page, data, run_id, iteration, r);
	if (v) {
		free(data);
		close(fd);
		return v;
	}
	extents = count_extents(fd, len);
	if (extents >= 0) {
		r->precondition = extents >= 2 ? DG_YES : DG_NO;
		snprintf(r->precondition_why, sizeof(r->precondition_why),
			 "the file has %d extents (FIEMAP), the read must span 2 or more", extents);
	}
	if (extents >= 0 && extents < 2) {
		snprintf(r->diag_buf, sizeof(r->diag_buf), "precondition not met: %s",
			 r->precondition_why);
		r->diag = r->diag_buf;
		free(data);
		close(fd);
		return verdict(r, DG_SKIP, NULL, extra, sizeof(extra), extents, 0, 0);
	}
	drop_cache(fd);

	/* the read buffer: anonymous, fresh, only the wanted pages touched */
	oc.buf = DG_BUF_ANON;
	oc.chunk = 0;
	want = dg_xmalloc(len / page);
	if (dg_fault_want(o->fault, len, page, 0, want, err, sizeof(err)))
		dg_usage_error("--fault: %s", err);
	before = dg_xmalloc(len);
	memset(before, BUF_MARK, len);
	dg_buf_prepare(b, &oc, before, len, want); /* before: the buffer's content now */
	free(want);

	r->resident_pages = dg_buf_measure(b);
	r->size_expected = len;
	t = dg_now_us();
	if (uring_read(fd, b->map, len, &res, &ring_err)) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "io_uring unavailable: io_uring_queue_init: %s", strerror(ring_err));
		r->diag = r->diag_buf;
		free(data);
		close(fd);
		return verdict(r, ring_skip(ring_err) ? DG_SKIP : DG_BROKEN, NULL, extra,
			       sizeof(extra), extents, 0, 0);
	}
	r->write_us = dg_now_us() - t; /* the read: the operation under test */
	r->size_seen = res > 0 ? (uint64_t)res : 0;
	if (res < 0) {
		snprintf(r->diag_buf, sizeof(r->diag_buf), "io_uring readv [0, %zu): %s", len,
			 strerror(-res));
		r->diag = r->diag_buf;
		free(data);
		close(fd);
		if (res == -EIO)
			return verdict(r, DG_FAIL, "eio-read", extra, sizeof(extra), extents, res, 0);
		return verdict(r, DG_BROKEN, NULL, extra, sizeof(extra), extents, res, 0);
	}

	t = dg_now_us();
	bad = dg_verify(b->map, data, (size_t)res, 0, run_id, iteration, &r->gaps);
	if (bad)
		dg_first_bad_note(r, b->map, data, (size_t)res, 0);
	untouched = untouched_from(b, (size_t)res);
	r->verify_us = dg_now_us() - t;
	free(data);
	close(fd);
	if ((size_t)res < len) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "short read: res %d of %zu (%d extents; %zu of the %zu bytes after res untouched)%s",
			 res, len, extents, untouched, len - (size_t)res,
			 bad ? "; data before res wrong too" : "");
		r->diag = r->diag_buf;
		return verdict(r, DG_FAIL, "size", extra, sizeof(extra), extents, res, untouched);
	}
	if (bad) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "%zu bad sectors in %zu ranges, first [%" PRIu64 ", %" PRIu64 ") %s",
			 bad, r->gaps.n, r->gaps.r[0].start, r->gaps.r[0].end,
			 dg_class_name(r->gaps.r[0].cls));
		r->diag = r->diag_buf;
		return verdict(r, DG_FAIL, "data", extra, sizeof(extra), extents, res, 0);
	}
	return verdict(r, DG_PASS, NULL, extra, sizeof(extra), extents, res, 0);
}

int main(int argc, char **argv)
{
	static const struct dg_repro rp = {
		.name = "dio-uring-read-fault",
		.summary = "io_uring O_DIRECT read over several extents into a partly resident buffer",
		.fixes = {
			{ "ca93e44bfb5f",
			  "btrfs: fallback to blocking mode when doing async dio over multiple extents" },
		},
		.introduced_by = { "51bd9563b678",
				   "btrfs: fix deadlock due to page faults during direct IO reads and writes" },
		.fstests = "generic/678",
		.params = "size fault",
		.may_hang = false,
		.engines = NULL,
		.default_pages = 2, /* no --size: 2 pages (2 extents), whatever the page size */
		.run = run,
	};

	return dg_main(&rp, argc, argv);
}
