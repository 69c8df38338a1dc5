/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dio-dsync-uring - O_DSYNC O_DIRECT writes through io_uring, then a power cut
 *
 * Fixes, fstests, parameters: the dg_repro table at the end of this file
 * (--describe, --describe --json).
 *
 * generic/703's shape (our own code): a NOCOW file (FS_NOCOW_FL, `chattr
 * +C`) of --size bytes is preallocated (fallocate) and made durable (fsync,
 * syncfs); then io_uring O_DIRECT writes of --chunk bytes each, to every
 * chunk of the file in a random order (--seed), --qd in flight, each with
 * RWF_DSYNC (--engine dsync) or on an O_DSYNC file (--engine odsync). No
 * IOSQE_ASYNC: io_uring issues each write inline with IOCB_NOWAIT, and a
 * NOCOW preallocated range lets btrfs take it without blocking, so the
 * write is queued (-EIOCBQUEUED) and completes from the disk's interrupt.
 * Each round of submissions waits 20 ms for the earlier completions to
 * settle: a NOWAIT write that meets their locks is retried blocking by
 * io_uring, and its full sync would make every earlier write durable.
 * Then the power cut (repro/lib/cut.c): the scratch disk's dm-flakey drops
 * writes, the filesystem is unmounted, writes go through again, it is
 * mounted again (log replay). Every byte a completed write covered was
 * promised durable and must read back; bytes never promised may read old
 * (zeros: preallocated) or new, never anything else.
 * On a kernel without 8184620ae212, a queued NOWAIT dsync write completes
 * without the sync: the data is on the disk but the extent stays
 * preallocated in the committed tree, so it reads back as zeros after the
 * cut. FAIL lost-after-cut, with the byte ranges (JSON "gaps", "lost").
 * Needs the scratch filesystem on dm-flakey (the harness does it: needs
 * "dm-flakey" in the table); else SKIP "no dm-flakey under the scratch:
 * ...". The filesystem must not be in use by anyone else: it is unmounted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "diogap.h"
#include "dm.h"

#define CHUNK_DEFAULT (64 * 1024)

struct slot {
	uint64_t off, len;
	int64_t res;            /* the completion's result; INT64_MIN: none yet */
};

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The file: NOCOW, preallocated, durable before the writes. */
static int prepare_file(const struct dg_opts *o, struct dg_result *r)
{
	int fd = CHECK_SYS(open(o->file, O_RDWR | O_CLOEXEC)), flags = 0;

	CHECK_SYS(ftruncate(fd, 0));
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0 ||
	    (!(flags & FS_NOCOW_FL) &&
	     (flags |= FS_NOCOW_FL, ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0))) {
		close(fd);
		return dg_set_diag(r, DG_SKIP, NULL, "precondition not met: FS_NOCOW_FL (chattr +C): %s",
				strerror(errno));
	}
	if (fallocate(fd, 0, 0, (off_t)o->size) < 0) {
		int e = errno;

		close(fd);
		return dg_set_diag(r, e == EOPNOTSUPP ? DG_SKIP : DG_BROKEN, NULL, "fallocate %" PRIu64 ": %s",
				o->size, strerror(e));
	}
	CHECK_SYS(fsync(fd));
	CHECK_SYS(syncfs(fd));
	close(fd);
	return DG_PASS;
}

#define SETTLE_NS (20 * 1000 * 1000)

static void settle(void)
{
	struct timespec ts = { 0, SETTLE_NS };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* The writes: every slot once, qd in flight, no IOSQE_ASYNC. */
static int write_all(const struct dg_opts *o, const char *data, struct slot *sl, size_t ns,
		     struct dg_result *r, unsigned *eagain)
{
	bool odsync = !strcmp(o->engine, "odsync");
	int fd = CHECK_SYS(open(o->file, O_RDWR | O_DIRECT | O_CLOEXEC | (odsync ? O_DSYNC : 0)));
	struct io_uring ring;
	size_t next = 0, inflight = 0, i;
	int ret = io_uring_queue_init(o->qd, &ring, 0);
	uint64_t t0;

	if (ret < 0) {
		close(fd);
		return dg_set_diag(r, -ret == ENOSYS || -ret == EPERM ? DG_SKIP : DG_BROKEN, NULL,
				"io_uring unavailable: io_uring_queue_init(%u): %s", o->qd, strerror(-ret));
	}
	t0 = dg_now_us();
	while (next < ns || inflight) {
		struct io_uring_cqe *cqe;

		/* let the completions' workers settle (an ordered extent's end
		 * converts its preallocated extent, holding the leaf): a NOWAIT
		 * write that meets that lock gets EAGAIN, io_uring retries it
		 * blocking, and that one's full sync would save the writes before
		 * it; the writes must be taken inline, as an idle disk would */
		if (next && next < ns && inflight < o->qd)
			settle();
		while (next < ns && inflight < o->qd) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

			CHECK(sqe != NULL);
			io_uring_prep_write(sqe, fd, data + sl[next].off, (unsigned)sl[next].len,
					    sl[next].off);
			if (!odsync)
				sqe->rw_flags = RWF_DSYNC;
			io_uring_sqe_set_data64(sqe, next);
			next++;
			inflight++;
		}
		do
			ret = io_uring_submit_and_wait(&ring, 1);
		while (ret == -EINTR);
		if (ret < 0)
			dg_die_at(__FILE__, __LINE__, "io_uring_submit_and_wait", -ret);
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			i = (size_t)io_uring_cqe_get_data64(cqe);
			if (cqe->res == -EAGAIN && ++*eagain < 10000) {
				/* rare (io_uring punts NOWAIT's EAGAIN itself): again */
				struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

				CHECK(sqe != NULL);
				io_uring_prep_write(sqe, fd, data + sl[i].off, (unsigned)sl[i].len, sl[i].off);
				if (!odsync)
					sqe->rw_flags = RWF_DSYNC;
				io_uring_sqe_set_data64(sqe, i);
			} else {
				sl[i].res = cqe->res;
				inflight--;
			}
			io_uring_cqe_seen(&ring, cqe);
		}
	}
	r->write_us = dg_now_us() - t0;
	io_uring_queue_exit(&ring);
	close(fd);
	for (i = 0; i < ns; i++)
		if (sl[i].res < 0)
			return dg_write_failed((int)-sl[i].res, sl[i].off, r);
	return DG_PASS;
}

/* After the cut: promised sectors must hold the data; the others zeros
 * (preallocated) or the data. Bad ranges into r->gaps. */
static size_t check_after(const char *got, const char *want, const struct slot *sl, size_t ns,
			  uint64_t size, uint64_t run_id, unsigned it, struct dg_result *r,
			  size_t *garbage)
{
	size_t bad = 0, i;
	uint64_t s;

	*garbage = 0;
	for (i = 0; i < ns; i++) {
		uint64_t promised = sl[i].res > 0 ? (uint64_t)sl[i].res : 0;

		bad += dg_verify(got + sl[i].off, want + sl[i].off, promised, sl[i].off, run_id, it,
				 &r->gaps);
		for (s = sl[i].off + promised; s < sl[i].off + sl[i].len && s < size; s += DG_SECTOR) {
			enum dg_class c = dg_classify(got + s, want + s, s, run_id, it);

			if (c != DG_OK && c != DG_ZERO) {
				dg_ranges_add(&r->gaps, s, s + DG_SECTOR, c);
				(*garbage)++;
			}
		}
	}
	return bad;
}

static int cmp_range(const void *a, const void *b)
{
	const struct dg_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int run(const struct dg_opts *o, unsigned it, uint64_t run_id, struct dg_result *r,
	       struct dg_buf *bufp)
{
	static char extra[4096];
	size_t page = (size_t)sysconf(_SC_PAGESIZE), ns, i, bad, garbage, at;
	uint64_t chunk = o->chunk ? o->chunk : CHUNK_DEFAULT, seed = o->seed ^ it, cut_us = 0;
	struct dg_mount m;
	struct dg_dm_dev d;
	struct slot *sl;
	char *data, *got, err[512];
	unsigned eagain = 0;
	struct stat st;
	int fd, v;
	ssize_t rd;

	(void)bufp; /* resident data: no fault pattern here */
	if (chunk > o->size)
		chunk = o->size;
	r->chunk_used = chunk;
	if (dg_mount_of(o->target, &m, err, sizeof(err)))
		return dg_set_diag(r, DG_BROKEN, NULL, "%s", err);
	if (dg_cut_ready(&m, &d, err, sizeof(err)))
		return dg_set_diag(r, DG_SKIP, NULL, "%s", err);
	v = prepare_file(o, r);
	if (v != DG_PASS)
		return v;
	ns = (size_t)((o->size + chunk - 1) / chunk);
	sl = dg_xmalloc(ns * sizeof(*sl));
	for (i = 0; i < ns; i++) {
		sl[i].off = i * chunk;
		sl[i].len = o->size - sl[i].off < chunk ? o->size - sl[i].off : chunk;
		sl[i].res = INT64_MIN;
	}
	for (i = ns; i > 1; i--) { /* random order (Fisher-Yates) */
		size_t j = (size_t)(rnd(&seed) % i);
		struct slot t = sl[i - 1];

		sl[i - 1] = sl[j];
		sl[j] = t;
	}
	data = dg_xbuffer(page, (size_t)o->size);
	dg_pattern_fill(data, (size_t)o->size, 0, run_id, it);
	v = write_all(o, data, sl, ns, r, &eagain);
	if (v != DG_PASS) {
		free(sl);
		free(data);
		return v;
	}
	if (dg_cut(&m, &d, &cut_us, err, sizeof(err))) {
		free(sl);
		free(data);
		return dg_cut_failed(r, err);
	}
	printf("# %s: %zu writes of %" PRIu64 " in %.1f ms, cut and mount again %.1f ms\n", r->name,
	       ns, chunk, (double)r->write_us / 1e3, (double)cut_us / 1e3);
	fd = open(o->file, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		free(sl);
		free(data);
		if (errno == ENOENT)
			return dg_set_diag(r, DG_FAIL, "lost-after-cut",
					"the file is gone after the cut (it was synced before the writes)");
		return dg_set_diag(r, DG_BROKEN, NULL, "open %s after the cut: %s", o->file, strerror(errno));
	}
	got = dg_xbuffer(page, (size_t)o->size);
	at = (size_t)dg_now_us();
	rd = dg_read_back(fd, got, (size_t)o->size, 0);
	CHECK_SYS(fstat(fd, &st));
	close(fd);
	r->size_expected = o->size;
	r->size_seen = (uint64_t)st.st_size;
	if (rd < 0) {
		v = dg_read_failed(rd, 0, (size_t)o->size, r);
	} else {
		bad = check_after(got, data, sl, ns, o->size, run_id, it, r, &garbage);
		r->verify_us = dg_now_us() - at;
		qsort(r->gaps.r, r->gaps.n, sizeof(*r->gaps.r), cmp_range);
		if (bad || garbage)
			dg_first_bad_note(r, got, data, (size_t)o->size, 0);
		if (bad)
			v = dg_set_diag(r, DG_FAIL, "lost-after-cut",
				     "%zu of %zu promised sectors lost after the cut (O_DSYNC writes that completed), first [%" PRIu64 ", %" PRIu64 ") %s",
				     bad, (size_t)(o->size / DG_SECTOR), r->gaps.r[0].start,
				     r->gaps.r[0].end, dg_class_name(r->gaps.r[0].cls));
		else if (garbage)
			v = dg_set_diag(r, DG_FAIL, "data",
				     "%zu never-promised sectors hold neither the old nor the new data, first [%" PRIu64 ", %" PRIu64 ") %s",
				     garbage, r->gaps.r[0].start, r->gaps.r[0].end,
				     dg_class_name(r->gaps.r[0].cls));
		else if (r->size_seen != r->size_expected)
			v = dg_set_diag(r, DG_FAIL, "size", "file size %" PRIu64 " after the cut, expected %" PRIu64,
				     r->size_seen, r->size_expected);
		else
			v = r->verdict = DG_PASS;
	}
	at = (size_t)snprintf(extra, sizeof(extra),
			      "\"writes\":%zu,\"eagain\":%u,\"cut_us\":%" PRIu64 ",\"device\":\"%s\",\"lost\":[",
			      ns, eagain, cut_us, d.name);
	for (i = 0; i < r->gaps.n && at < sizeof(extra) - 64; i++)
		at += (size_t)snprintf(extra + at, sizeof(extra) - at, "%s[%" PRIu64 ",%" PRIu64 "]",
				       i ? "," : "", r->gaps.r[i].start, r->gaps.r[i].end);
	snprintf(extra + at, sizeof(extra) - at, "]");
	r->extra_json = extra;
	free(got);
	free(sl);
	free(data);
	return v;
}

int main(int argc, char **argv)
{
	static const struct dg_repro rp = {
		.name = "dio-dsync-uring",
		.summary = "O_DSYNC O_DIRECT io_uring writes to a preallocated NOCOW file, then a power cut",
		.fixes = {
			{ "8184620ae212",
			  "btrfs: fix lost file sync on direct IO write with nowait and dsync iocb" },
		},
		.introduced_by = { "51bd9563b678",
				   "btrfs: fix deadlock due to page faults during direct IO reads and writes" },
		.fstests = "generic/703",
		.params = "size chunk qd engine",
		.engines = "dsync|odsync",
		.needs = "dm-flakey",
		.run = run,
	};

	return dg_main(&rp, argc, argv);
}
