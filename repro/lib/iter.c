// SPDX-License-Identifier: GPL-2.0
/*
 * iter.c - the steps every reproducer's iteration shares: build the data
 * and the buffer, and after the writes, verify and judge.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diogap.h"

void dg_iter_prepare(const struct dg_opts *o, unsigned iteration,
		     uint64_t run_id, struct dg_buf *b)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = (size_t)o->size;
	size_t np = (len + page - 1) / page;
	unsigned char *want = dg_xmalloc(np);
	char *data = dg_xmalloc(len);
	char err[160];

	if (dg_fault_want(o->fault, o->size, page, o->chunk, want, err, sizeof(err)))
		dg_usage_error("--fault: %s", err);
	dg_pattern_fill(data, len, o->offset, run_id, iteration);
	/*
	 * Each iteration starts from an empty file, so each meets the bug's
	 * conditions as the first did: on a kernel with the partial-DIO hole an
	 * overwrite of a range whose extents were split by the previous
	 * iteration's loss no longer gets a partial bio (seen: 1 of 100
	 * iterations caught without this, 100 of 100 with it). --overwrite
	 * keeps the old data, so a lost overwrite shows as stale instead.
	 */
	if (!o->overwrite && iteration > 1 && truncate(o->file, 0))
		dg_die_at(__FILE__, __LINE__, "truncate(o->file, 0)", errno);
	dg_buf_prepare(b, o, data, len, want); /* data is its expected copy now */
	free(want);
}

int dg_write_failed(int err, uint64_t off, struct dg_result *r)
{
	if (err == EIO) {
		/* the scratch device is healthy (a loop file, a VM disk): an
		 * EIO from a write is the filesystem's doing */
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "write at offset %" PRIu64 ": %s (see the kernel log)", off,
			 strerror(err));
		r->diag = r->diag_buf;
		r->symptom = "eio-write";
		return r->verdict = DG_FAIL;
	}
	if (err == ENOSPC || err == EDQUOT)
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "write at offset %" PRIu64 ": %s: the scratch filesystem is full (not a data error)",
			 off, strerror(err));
	else if (err == EROFS)
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "write at offset %" PRIu64 ": %s: the scratch filesystem is read-only (not a data error)",
			 off, strerror(err));
	else
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "write at offset %" PRIu64 " failed: %s", off, strerror(err));
	r->diag = r->diag_buf;
	r->verdict = DG_BROKEN;
	return DG_BROKEN;
}

int dg_read_failed(ssize_t n, uint64_t off, size_t len, struct dg_result *r)
{
	int err = (int)-n;

	if (err == EIO) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "read back [%" PRIu64 ",+%zu): %s (checksum failure? see the kernel log)",
			 off, len, strerror(err));
		r->diag = r->diag_buf;
		r->symptom = "eio-read";
		return r->verdict = DG_FAIL;
	}
	snprintf(r->diag_buf, sizeof(r->diag_buf), "read back [%" PRIu64 ",+%zu): %s",
		 off, len, strerror(err));
	r->diag = r->diag_buf;
	return r->verdict = DG_BROKEN;
}

bool dg_test_read_eio(void)
{
	const char *how = getenv("DIOGAP_TEST_CORRUPT");

	if (!how || strcmp(how, "eio"))
		return false;
	printf("# test hook: DIOGAP_TEST_CORRUPT=eio: the read-back sees EIO (nothing was read)\n");
	return true;
}

int dg_write_range(const struct dg_opts *o, struct dg_buf *b, int fd,
		   uint64_t c, size_t n, dg_write_fn fn,
		   struct dg_write_count *wc, struct dg_result *r)
{
	size_t done = 0, first = (size_t)(c / b->page);

	/* truth right before this call: an earlier call's fault-in may have
	 * mapped some of these pages */
	dg_direct_begin(r); /* the first call of the iteration starts it */
	dg_buf_measure_range(b, first, (size_t)((c + n - 1) / b->page) - first + 1);
	while (done < n) {
		uint64_t off = o->offset + c + done, t = dg_now_us();
		ssize_t w = fn(o, fd, b->map + c + done, n - done, off);

		r->write_us += dg_now_us() - t;
		wc->calls++;
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return dg_write_failed(w < 0 ? errno : EIO, off, r);
		if ((size_t)w < n - done)
			wc->shorts++;
		done += (size_t)w;
	}
	return 0;
}

static void describe_gaps(const struct dg_result *r, size_t bad, char *out,
			  size_t n)
{
	uint64_t lost = 0;
	size_t i;

	for (i = 0; i < r->gaps.n; i++)
		lost += r->gaps.r[i].end - r->gaps.r[i].start;
	snprintf(out, n, "%zu bad sectors (%" PRIu64 " bytes) in %zu ranges, first [%" PRIu64
		 ", %" PRIu64 ") %s; size %" PRIu64 " expected %" PRIu64,
		 bad, lost, r->gaps.n, r->gaps.r[0].start, r->gaps.r[0].end,
		 dg_class_name(r->gaps.r[0].cls), r->size_seen, r->size_expected);
}

/*
 * Test hook, for exercising the FAIL path on a kernel that has the fixes:
 * DIOGAP_TEST_CORRUPT=punch punches holes in the predicted ranges (or the
 * first alignment unit when none is predicted) after the writes, which is
 * what a buggy kernel leaves on a first write; =stale writes the previous
 * iteration's data back into them (a lost overwrite, iterations >= 2);
 * =grow makes the file one alignment unit too long; =eio makes the
 * read-back see EIO (dg_test_read_eio). The KTAP output and the JSON
 * record say so, and the rerun line carries the variable. Never set by the
 * harness.
 */
void dg_test_corrupt(const struct dg_opts *o, int fd, uint64_t run_id,
		     unsigned iteration, struct dg_result *r)
{
	const char *how = getenv("DIOGAP_TEST_CORRUPT");
	size_t i;

	if (!how || !*how || !strcmp(how, "eio"))
		return;
	if (!strcmp(how, "stale") && (iteration < 2 || !r->predicted.n)) {
		printf("# test hook: DIOGAP_TEST_CORRUPT=stale had nothing to damage (%s)\n",
		       iteration < 2 ? "no previous iteration" : "no predicted ranges");
		return;
	}
	if (!strcmp(how, "punch")) {
		for (i = 0; i < r->predicted.n; i++)
			CHECK_SYS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					    (off_t)r->predicted.r[i].start,
					    (off_t)(r->predicted.r[i].end - r->predicted.r[i].start)));
		if (!r->predicted.n)
			CHECK_SYS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					    (off_t)o->offset, (off_t)o->dio_align));
	} else if (!strcmp(how, "stale")) {
		for (i = 0; i < r->predicted.n; i++) {
			size_t n = (size_t)(r->predicted.r[i].end - r->predicted.r[i].start);
			char *old = dg_xaligned(4096, n);

			dg_pattern_fill(old, n, r->predicted.r[i].start, run_id, iteration - 1);
			CHECK(pwrite(fd, old, n, (off_t)r->predicted.r[i].start) == (ssize_t)n);
			free(old);
		}
	} else if (!strcmp(how, "grow")) {
		struct stat st;

		CHECK_SYS(fstat(fd, &st));
		CHECK_SYS(ftruncate(fd, st.st_size + (off_t)o->dio_align));
	} else {
		dg_usage_error("DIOGAP_TEST_CORRUPT='%s' must be punch, stale, grow or eio", how);
	}
	printf("# test hook: DIOGAP_TEST_CORRUPT=%s applied to the file after the writes\n", how);
}

int dg_iter_verify(const struct dg_opts *o, int fd, struct dg_buf *b,
		   uint64_t run_id, unsigned iteration, struct dg_result *r)
{
	size_t align = o->mem_align > b->page ? o->mem_align : b->page;
	size_t len = (size_t)o->size;
	struct stat st;
	/* allocated (and faulted in) before the clock starts; dg_read_back
	 * fills all of it (zeros past a short file's end) */
	char *got = dg_xbuffer(align, (len + align - 1) / align * align);
	uint64_t t0;
	ssize_t n;
	size_t bad;

	static bool loop_noted;
	unsigned per_page = dg_dirty_per_page(fd);

	/* the counters first: nothing else may run between the writes and it */
	dg_test_noise(o->target);
	dg_direct_end(r, o->size, b->page, per_page);
	if (per_page && !loop_noted) {
		loop_noted = true;
		printf("# note: a loop device without direct I/O under %s: its own writeback can make a direct write look buffered (SKIP); losetup --direct-io=on avoids that\n",
		       o->target);
	}
	r->resident_pages = dg_buf_resident(b);
	dg_predict(b->seen, b->npages, b->page, o->offset, o->chunk, o->size,
		   &r->predicted);
	dg_precondition(o, b, o->chunk, r);
	dg_unverifiable(o, b, r);
	if (!r->size_expected)
		r->size_expected = o->offset + o->size;
	dg_test_corrupt(o, fd, run_id, iteration, r);
	t0 = dg_now_us();
	n = dg_test_read_eio() ? -EIO : dg_read_back(fd, got, len, o->offset);
	if (n < 0) {
		free(got);
		return dg_read_failed(n, o->offset, len, r);
	}
	CHECK_SYS(fstat(fd, &st));
	r->size_seen = (uint64_t)st.st_size;
	bad = dg_verify(got, dg_buf_expected(b), len, o->offset, run_id,
			iteration, &r->gaps);
	r->verify_us = dg_now_us() - t0;
	if (bad)
		dg_first_bad_note(r, got, dg_buf_expected(b), len, o->offset);
	free(got);
	if (bad) {
		dg_gaps_fiemap(fd, &r->gaps);
		describe_gaps(r, bad, r->diag_buf, sizeof(r->diag_buf));
		r->diag = r->diag_buf;
		r->symptom = "data";
		return r->verdict = DG_FAIL;
	}
	if (r->size_seen != r->size_expected) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "file size %" PRIu64 ", expected %" PRIu64 " (data in range intact)",
			 r->size_seen, r->size_expected);
		r->diag = r->diag_buf;
		r->symptom = "size";
		return r->verdict = DG_FAIL;
	}
	r->verdict = DG_PASS;
	/* after the read-back: the probe's writes must not be in its way */
	dg_direct_probe(o->target, fd, b->page, per_page, r);
	return dg_judge(r);
}
