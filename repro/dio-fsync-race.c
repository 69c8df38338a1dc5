/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dio-fsync-race - O_DIRECT writes and fsync racing on one file descriptor
 *
 * Fixes: cd9253c23aed ("btrfs: fix race between direct IO write and fsync when using same fd")
 * Introduced-by: 939b656bc8ab ("btrfs: fix corruption after buffer fault in during direct IO append write")
 * fstests: generic/364
 * Params: size offset hang_timeout
 * May-hang: yes
 *
 * One O_DIRECT file descriptor, two threads: A writes --size bytes (default
 * one page) at --offset again and again, B calls fsync on the same fd, both
 * for --seconds S (default 3; this option is the reproducer's own and is
 * kept in the rerun line). On a kernel without the fix, B can take A's
 * "skip the inode lock" flag (the file's private, pointing at A's stack)
 * and log the inode without holding its lock: with CONFIG_BTRFS_ASSERT=y
 * that is "assertion failed: inode_is_locked" and a kernel BUG, which the
 * harness turns into FAIL from the kernel log; without it, a use of A's
 * freed stack frame. The reproducer itself: PASS when both loops ran to
 * the end without error and the file holds the data; FAIL eio-write when a
 * write or fsync returns EIO; FAIL oops when a thread vanished inside a
 * system call (the kernel killed it: see the kernel log); FAIL hang when a
 * thread does not return within --hang-timeout seconds after the end (the
 * file is then left alone); FAIL data / size on a wrong read-back.
 * Other errors (ENOSPC...) are BROKEN.
 * Under emulation (QEMU TCG) the data I/O dominates the writer's cycle and
 * the flagged window is short: on a 6.1.192 kernel with the fix undone and
 * CONFIG_BTRFS_ASSERT=y, the assertion tripped in 1 of 2 runs of 3 s with
 * the file NOCOW (mount -o nodatacow, or --nocow: in-place overwrites, a
 * shorter cycle) and in none of 10 with data COW and checksums. NOCOW also
 * keeps the writes direct on kernels with 968f19c5b1b7 (v6.15, 6.12.77),
 * which turn O_DIRECT writes to checksummed files into buffered ones.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diogap.h"

#define SECONDS_DEFAULT 3.0
#define SECONDS_MAX 3600.0

static double opt_seconds = SECONDS_DEFAULT;

struct loop {
	const char *what;      /* "write" or "fsync" */
	int fd;
	char *buf;             /* write: the data */
	size_t len;
	off_t off;
	atomic_bool *stop;
	uint64_t calls, shorts;
	int err;               /* errno of the call that stopped the loop, 0 if none */
	atomic_bool returned;  /* the thread function returned (not killed) */
};

static void *write_loop(void *arg)
{
	struct loop *l = arg;

	while (!atomic_load(l->stop)) {
		ssize_t w = pwrite(l->fd, l->buf, l->len, l->off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			l->err = errno;
			break;
		}
		l->calls++;
		if ((size_t)w != l->len)
			l->shorts++;
	}
	atomic_store(l->stop, true); /* an error ends the other loop too */
	atomic_store(&l->returned, true);
	return NULL;
}

static void *fsync_loop(void *arg)
{
	struct loop *l = arg;

	while (!atomic_load(l->stop)) {
		if (fsync(l->fd)) {
			if (errno == EINTR)
				continue;
			l->err = errno;
			break;
		}
		l->calls++;
	}
	atomic_store(l->stop, true);
	atomic_store(&l->returned, true);
	return NULL;
}

static void sleep_s(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s,
			       .tv_nsec = (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Join t within `wait` seconds: 0 joined, ETIMEDOUT stuck. */
static int join_within(pthread_t t, double wait)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += (time_t)wait;
	dl.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	return pthread_timedjoin_np(t, NULL, &dl);
}

static int set(struct dg_result *r, int v, const char *symptom, char *extra,
	       size_t n, const struct loop *a, const struct loop *b)
{
	snprintf(extra, n,
		 "\"seconds\":%g,\"writes\":%" PRIu64 ",\"short_writes\":%" PRIu64
		 ",\"fsyncs\":%" PRIu64 ",\"write_errno\":%d,\"fsync_errno\":%d,\"symptom\":%s%s%s",
		 opt_seconds, a->calls, a->shorts, b->calls, a->err, b->err,
		 symptom ? "\"" : "", symptom ? symptom : "null", symptom ? "\"" : "");
	r->extra_json = extra;
	return r->verdict = v;
}

/* A loop stopped on err: EIO FAIL eio-write, the rest BROKEN. */
static int loop_error(struct dg_result *r, const struct loop *l, char *extra,
		      size_t n, const struct loop *a, const struct loop *b)
{
	if (l->err == ENOSPC || l->err == EDQUOT)
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "%s after %" PRIu64 " calls: %s: the scratch filesystem is full (not a data error)",
			 l->what, l->calls, strerror(l->err));
	else
		snprintf(r->diag_buf, sizeof(r->diag_buf), "%s after %" PRIu64 " calls: %s",
			 l->what, l->calls, strerror(l->err));
	r->diag = r->diag_buf;
	if (l->err == EIO)
		return set(r, DG_FAIL, "eio-write", extra, n, a, b);
	return set(r, DG_BROKEN, NULL, extra, n, a, b);
}

/* After both loops: the range holds the data, the size is offset + size. */
static int check_file(const struct dg_opts *o, int fd, const char *want,
		      uint64_t run_id, unsigned iteration, struct dg_result *r,
		      char *extra, size_t n, const struct loop *a, const struct loop *b)
{
	size_t len = (size_t)o->size;
	char *got = dg_xbuffer((size_t)sysconf(_SC_PAGESIZE), len);
	struct stat st;
	uint64_t t = dg_now_us();
	ssize_t rd = dg_read_back(fd, got, len, o->offset);
	size_t bad;

	if (rd < 0) {
		snprintf(r->diag_buf, sizeof(r->diag_buf), "read back [%" PRIu64 ", +%zu): %s",
			 o->offset, len, strerror((int)-rd));
		r->diag = r->diag_buf;
		free(got);
		return set(r, rd == -EIO ? DG_FAIL : DG_BROKEN, rd == -EIO ? "eio-read" : NULL,
			   extra, n, a, b);
	}
	CHECK_SYS(fstat(fd, &st));
	r->size_seen = (uint64_t)st.st_size;
	bad = dg_verify(got, want, len, o->offset, run_id, iteration, &r->gaps);
	if (bad)
		dg_first_bad_note(r, got, want, len, o->offset);
	r->verify_us = dg_now_us() - t;
	free(got);
	if (bad) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "%zu bad sectors after the race, first [%" PRIu64 ", %" PRIu64 ") %s",
			 bad, r->gaps.r[0].start, r->gaps.r[0].end, dg_class_name(r->gaps.r[0].cls));
		r->diag = r->diag_buf;
		return set(r, DG_FAIL, "data", extra, n, a, b);
	}
	if (r->size_seen != r->size_expected) {
		snprintf(r->diag_buf, sizeof(r->diag_buf), "file size %" PRIu64 ", expected %" PRIu64,
			 r->size_seen, r->size_expected);
		r->diag = r->diag_buf;
		return set(r, DG_FAIL, "size", extra, n, a, b);
	}
	return set(r, DG_PASS, NULL, extra, n, a, b);
}

static int run(const struct dg_opts *o, unsigned iteration, uint64_t run_id,
	       struct dg_result *r, struct dg_buf *bufp)
{
	static char extra[320];
	static atomic_bool stop;
	static struct loop a, b; /* static: a stuck thread may still use them */
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	pthread_t ta, tb;
	uint64_t t0;
	char *data;
	int fd, ja, jb;

	(void)bufp; /* no fault-controlled buffer here: the data is resident */
	if (iteration > 1)
		CHECK_SYS(truncate(o->file, 0));
	data = dg_xbuffer(page, (size_t)o->size);
	dg_pattern_fill(data, (size_t)o->size, o->offset, run_id, iteration);
	fd = CHECK_SYS(open(o->file, O_RDWR | O_DIRECT | O_CLOEXEC));
	atomic_store(&stop, false);
	a = (struct loop){ .what = "write", .fd = fd, .buf = data, .len = (size_t)o->size,
			   .off = (off_t)o->offset, .stop = &stop };
	b = (struct loop){ .what = "fsync", .fd = fd, .stop = &stop };
	r->size_expected = o->offset + o->size;

	t0 = dg_now_us();
	CHECK(pthread_create(&ta, NULL, write_loop, &a) == 0);
	CHECK(pthread_create(&tb, NULL, fsync_loop, &b) == 0);
	while (!atomic_load(&stop) && (double)(dg_now_us() - t0) < opt_seconds * 1e6)
		sleep_s(0.01);
	atomic_store(&stop, true);
	ja = join_within(ta, o->hang_timeout);
	jb = join_within(tb, ja ? 1 : o->hang_timeout);
	r->write_us = dg_now_us() - t0;

	/* joined but never returned: the kernel killed the thread in a call
	 * (an oops: BUG/assertion); that comes first, the other thread is
	 * then often stuck behind the locks the dead one held */
	if ((!ja && !atomic_load(&a.returned)) || (!jb && !atomic_load(&b.returned))) {
		bool bdead = !jb && !atomic_load(&b.returned);

		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "the %s thread vanished inside a system call after %" PRIu64
			 " calls: the kernel killed it (an oops/BUG: see the kernel log)%s",
			 bdead ? "fsync" : "write", bdead ? b.calls : a.calls,
			 ja || jb ? "; the other thread is stuck" : "");
		r->diag = r->diag_buf;
		dg_abandon_file("a thread died in the kernel holding its locks");
		return set(r, DG_FAIL, "oops", extra, sizeof(extra), &a, &b);
	}
	if (ja || jb) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "the %s thread did not return within %gs after the end (%" PRIu64
			 " writes, %" PRIu64 " fsyncs): stuck in the kernel, see the kernel log",
			 ja && jb ? "write and fsync" : ja ? "write" : "fsync", o->hang_timeout,
			 a.calls, b.calls);
		r->diag = r->diag_buf;
		dg_abandon_file("a thread is stuck in the kernel on it");
		return set(r, DG_FAIL, "hang", extra, sizeof(extra), &a, &b);
	}
	printf("# %s: %" PRIu64 " writes, %" PRIu64 " fsyncs in %.1f s\n", r->name, a.calls,
	       b.calls, (double)r->write_us / 1e6);
	if (a.err || b.err) {
		int v = loop_error(r, a.err ? &a : &b, extra, sizeof(extra), &a, &b);

		close(fd);
		free(data);
		return v;
	}
	if (!a.calls || !b.calls) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "precondition not met: %" PRIu64 " writes and %" PRIu64 " fsyncs ran: no race",
			 a.calls, b.calls);
		r->diag = r->diag_buf;
		close(fd);
		free(data);
		return set(r, DG_SKIP, NULL, extra, sizeof(extra), &a, &b);
	}
	{
		int v = check_file(o, fd, data, run_id, iteration, r, extra, sizeof(extra), &a, &b);

		close(fd);
		free(data);
		return v;
	}
}

/* --seconds S is ours: take it out of argv before the library sees it and
 * put it into argv[0], which starts the rerun line the library prints. */
static char **take_seconds(int argc, char **argv, int *nargc)
{
	char **nargv = dg_xmalloc((size_t)(argc + 1) * sizeof(*nargv));
	const char *val = NULL;
	char *end, *a0;
	size_t a0len;
	int i, n = 1;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			for (; i < argc; i++)
				nargv[n++] = argv[i];
			break;
		}
		if (!strcmp(argv[i], "--seconds")) {
			if (i + 1 >= argc)
				dg_usage_error("option --seconds needs a value");
			val = argv[++i];
		} else if (!strncmp(argv[i], "--seconds=", 10)) {
			val = argv[i] + 10;
		} else {
			nargv[n++] = argv[i];
		}
	}
	if (val) {
		errno = 0;
		opt_seconds = strtod(val, &end);
		if (errno || end == val || *end || !(opt_seconds > 0 && opt_seconds <= SECONDS_MAX))
			dg_usage_error("--seconds '%s' must be seconds in (0, %g]", val, SECONDS_MAX);
	}
	a0len = strlen(argv[0]) + 48;
	a0 = dg_xmalloc(a0len);
	snprintf(a0, a0len, "%s --seconds %g", argv[0], opt_seconds);
	nargv[0] = a0;
	*nargc = n;
	return nargv;
}

/* No --size: one page, whatever the page size. */
static char **default_size(int argc, char **argv, int *nargc)
{
	static char size[32];
	char **nargv;
	int i;

	*nargc = argc;
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--size") || !strncmp(argv[i], "--size=", 7))
			return argv;
	nargv = dg_xmalloc((size_t)(argc + 3) * sizeof(*nargv));
	snprintf(size, sizeof(size), "%ld", sysconf(_SC_PAGESIZE));
	nargv[0] = argv[0];
	nargv[1] = "--size";
	nargv[2] = size;
	for (i = 1; i < argc; i++)
		nargv[i + 2] = argv[i];
	*nargc = argc + 2;
	return nargv;
}

int main(int argc, char **argv)
{
	static const struct dg_repro rp = {
		.name = "dio-fsync-race",
		.describe = DG_DESCRIBE,
		.engines = NULL,
		.run = run,
	};
	int n1, n2;
	char **a1, **a2;

	dg_prog = rp.name;
	a1 = take_seconds(argc, argv, &n1);
	a2 = default_size(n1, a1, &n2);
	return dg_main(&rp, n2, a2);
}
