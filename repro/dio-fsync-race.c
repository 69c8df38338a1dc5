/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dio-fsync-race - O_DIRECT writes and fsync racing on one file descriptor
 *
 * Fixes, fstests, parameters, may-hang: the dg_repro table at the end of
 * this file (--describe, --describe --json).
 *
 * One O_DIRECT file descriptor, two threads: A writes --size bytes (default
 * one page) at --offset again and again, B calls fsync on the same fd, both
 * for --seconds S (default 3; the reproducer's own option, kept in the
 * rerun line; the sweep key `seconds`). On a kernel without the fix, B can take A's "skip the inode
 * lock" flag (the file's private, pointing at A's stack) and log the inode
 * without holding its lock: with CONFIG_BTRFS_ASSERT=y that is "assertion
 * failed: inode_is_locked" and a kernel BUG; without it, a use of A's
 * freed stack frame.
 *   --engine dsync  (default) A's writes are pwritev2(RWF_DSYNC): the flag
 *                   is then set over the fsync each write does itself, a
 *                   window long enough to hit under emulation. QEMU TCG,
 *                   6.1.192 with the fix undone, CONFIG_BTRFS_ASSERT=y:
 *                   tripped in the first 3 s in 5 of 5 runs on a default
 *                   (COW) mount; with nodatacow in 1 of 2
 *   --engine plain  plain pwrite, generic/364's exact shape: the window is
 *                   a few instructions, hit on real hardware; under TCG it
 *                   tripped once in about 20 runs of 3 s
 * The threads run in a child process, so a thread stuck in the kernel (B
 * dies holding what A then waits for) cannot keep this process from
 * exiting: the child is left behind, the file too.
 * PASS: both loops ran to the end without error and the file holds the
 * data. FAIL oops: a thread vanished inside a system call (the kernel
 * killed it: see the kernel log, where the harness finds the splat);
 * FAIL hang: a thread did not return within --hang-timeout seconds after
 * the end; FAIL eio-write: a write or fsync returned EIO; FAIL data / size
 * on a wrong read-back. Other errors (ENOSPC...) are BROKEN.
 * On kernels with 968f19c5b1b7 (v6.15, 6.12.77) O_DIRECT writes to
 * checksummed files go buffered: --nocow (or a nodatasum mount) keeps them
 * direct, where the race is. Whether they did is measured before the race
 * (record `direct`, the nr_dirtied/nr_written deltas of direct.c): the
 * race's writes alone, plain pwrite of --size at --offset on the O_DIRECT
 * fd until PROBE_PAGES pages are written, no fsync beside them (the
 * fsyncs' log writeback, several metadata pages per call, would drown the
 * measure), then the file is emptied again. A PASS whose probe went
 * buffered is SKIP "write went buffered: ..." (dg_judge); a FAIL (oops,
 * hang, EIO) stays FAIL. Host 6.18, loop device without direct I/O, 64
 * writes of 4K: datasum mount +132 dirtied, +64 written back (buffered);
 * nodatasum +64 dirtied (the loop file's page cache), +0 written.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diogap.h"

#define SECONDS_DEFAULT 3.0
#define SECONDS_MAX 3600.0
#define PROBE_PAGES 64 /* pages the direct probe writes (in --size writes) */

static double opt_seconds = SECONDS_DEFAULT;

struct loop {
	const char *what;      /* "write" or "fsync" */
	int fd;
	char *buf;             /* write: the data */
	size_t len;
	off_t off;
	bool dsync;            /* write: RWF_DSYNC */
	atomic_bool *stop;
	uint64_t calls, shorts;
	int err;               /* errno of the call that stopped the loop, 0 if none */
	atomic_bool returned;  /* the thread function returned (not killed) */
};

static void *write_loop(void *arg)
{
	struct loop *l = arg;
	struct iovec iov = { .iov_base = l->buf, .iov_len = l->len };

	while (!atomic_load(l->stop)) {
		ssize_t w = l->dsync ? pwritev2(l->fd, &iov, 1, l->off, RWF_DSYNC)
				     : pwrite(l->fd, l->buf, l->len, l->off);

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
		 ",\"fsyncs\":%" PRIu64 ",\"write_errno\":%d,\"fsync_errno\":%d",
		 opt_seconds, a->calls, a->shorts, b->calls, a->err, b->err);
	r->extra_json = extra;
	r->symptom = symptom;
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
	r->size_expected = o->offset + o->size; /* only once read back: a size is not a symptom before */
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

/* Did the race's writes take the direct path? --size at --offset again and
 * again, plain pwrite on an O_DIRECT fd, measured (direct.c); the file is
 * empty again afterwards. 0, or dg_write_failed()'s verdict. */
static int probe_direct(const struct dg_opts *o, const char *data, size_t page,
			struct dg_result *r)
{
	size_t len = (size_t)o->size, n = (PROBE_PAGES * page + len - 1) / len, i, done;
	int fd = CHECK_SYS(open(o->file, O_RDWR | O_DIRECT | O_CLOEXEC));
	char *src = dg_xbuffer(page, len);

	memcpy(src, data, len);
	dg_direct_begin(r);
	for (i = 0; i < n; i++)
		for (done = 0; done < len;) {
			ssize_t w = pwrite(fd, src + done, len - done, (off_t)(o->offset + done));

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				free(src);
				close(fd);
				return dg_write_failed(w < 0 ? errno : EIO, o->offset + done, r);
			}
			done += (size_t)w;
		}
	dg_direct_end(r, (uint64_t)n * len, page, dg_dirty_per_page(fd));
	CHECK_SYS(ftruncate(fd, 0)); /* the race starts from an empty file, as before */
	free(src);
	close(fd);
	return 0;
}

/* What the race process shares with us (MAP_SHARED). */
struct race {
	atomic_bool stop;
	atomic_int reported;   /* 1 once the fields below are final */
	struct loop a, b;
	int ja, jb;            /* join results: 0 joined, else stuck */
	int setup_err;         /* errno of the child's own setup, 0 if none */
	uint64_t us;           /* how long the loops ran */
};

/* The race process: both loops for --seconds, then join them (bounded) and
 * report. Never returns; no library calls that could exit through our
 * atexit handlers (they would remove the target file). */
static void race_child(struct race *rc, const char *file, double hang_timeout)
{
	pthread_t ta, tb;
	uint64_t t0;
	int fd = open(file, O_RDWR | O_DIRECT | O_CLOEXEC);

	rc->a.fd = rc->b.fd = fd;
	if (fd < 0 || pthread_create(&ta, NULL, write_loop, &rc->a)) {
		rc->setup_err = fd < 0 ? errno : EAGAIN;
		atomic_store(&rc->reported, 1);
		_exit(0);
	}
	if (pthread_create(&tb, NULL, fsync_loop, &rc->b)) {
		atomic_store(&rc->stop, true);
		pthread_join(ta, NULL);
		rc->setup_err = EAGAIN;
		atomic_store(&rc->reported, 1);
		_exit(0);
	}
	t0 = dg_now_us();
	while (!atomic_load(&rc->stop) && (double)(dg_now_us() - t0) < opt_seconds * 1e6)
		sleep_s(0.01);
	atomic_store(&rc->stop, true);
	rc->ja = join_within(ta, hang_timeout);
	rc->jb = join_within(tb, rc->ja ? 1 : hang_timeout);
	rc->us = dg_now_us() - t0;
	atomic_store(&rc->reported, 1);
	_exit(0);
}

/* Wait up to `wait` seconds for the child to report; then (clean case) to
 * exit. Returns true when it reported. */
static bool wait_report(struct race *rc, double wait)
{
	uint64_t t0 = dg_now_us();

	while (!atomic_load(&rc->reported) && (double)(dg_now_us() - t0) < wait * 1e6)
		sleep_s(0.01);
	return atomic_load(&rc->reported);
}

static bool reap_within(pid_t pid, double wait)
{
	uint64_t t0 = dg_now_us();
	int st;

	do {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid || (w < 0 && errno == ECHILD))
			return true;
		sleep_s(0.01);
	} while ((double)(dg_now_us() - t0) < wait * 1e6);
	return false;
}

/* The child is stuck or lost a thread: leave it (and the file) alone. */
static int race_left(struct dg_result *r, pid_t pid, int v, const char *symptom,
		     const char *why, char *extra, size_t n, struct race *rc)
{
	kill(pid, SIGKILL); /* what is killable goes; a task stuck in the kernel stays */
	dg_abandon_file(why);
	return set(r, v, symptom, extra, n, &rc->a, &rc->b);
}

static int run(const struct dg_opts *o, unsigned iteration, uint64_t run_id,
	       struct dg_result *r, struct dg_buf *bufp)
{
	static char extra[320];
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct race *rc;
	char *data;
	pid_t pid;
	int fd, v;

	(void)bufp; /* no fault-controlled buffer here: the data is resident */
	if (iteration > 1)
		CHECK_SYS(truncate(o->file, 0));
	data = dg_xbuffer(page, (size_t)o->size);
	dg_pattern_fill(data, (size_t)o->size, o->offset, run_id, iteration);
	v = probe_direct(o, data, page, r);
	if (v) {
		free(data);
		return v;
	}
	rc = mmap(NULL, sizeof(*rc), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(rc != MAP_FAILED);
	rc->a = (struct loop){ .what = "write", .fd = -1, .buf = data, .len = (size_t)o->size,
			       .off = (off_t)o->offset, .stop = &rc->stop,
			       .dsync = !strcmp(o->engine, "dsync") };
	rc->b = (struct loop){ .what = "fsync", .fd = -1, .stop = &rc->stop };

	fflush(NULL);
	pid = CHECK_SYS(fork());
	if (pid == 0)
		race_child(rc, o->file, o->hang_timeout);
	if (!wait_report(rc, opt_seconds + o->hang_timeout + 6)) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "the race process did not report within %gs: stuck in the kernel, see the kernel log",
			 opt_seconds + o->hang_timeout + 6);
		r->diag = r->diag_buf;
		return race_left(r, pid, DG_FAIL, "hang", "the race process is stuck on it",
				 extra, sizeof(extra), rc);
	}
	r->write_us = rc->us;
	if (rc->setup_err) {
		reap_within(pid, 5);
		snprintf(r->diag_buf, sizeof(r->diag_buf), "race process setup: %s",
			 strerror(rc->setup_err));
		r->diag = r->diag_buf;
		return set(r, DG_BROKEN, NULL, extra, sizeof(extra), &rc->a, &rc->b);
	}
	/* joined but never returned: the kernel killed the thread in a call
	 * (an oops: BUG/assertion); that comes first, the other thread is
	 * then often stuck behind the locks the dead one held */
	if ((!rc->ja && !atomic_load(&rc->a.returned)) || (!rc->jb && !atomic_load(&rc->b.returned))) {
		bool bdead = !rc->jb && !atomic_load(&rc->b.returned);

		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "the %s thread vanished inside a system call after %" PRIu64
			 " calls: the kernel killed it (an oops/BUG: see the kernel log)%s",
			 bdead ? "fsync" : "write", bdead ? rc->b.calls : rc->a.calls,
			 rc->ja || rc->jb ? "; the other thread is stuck" : "");
		r->diag = r->diag_buf;
		return race_left(r, pid, DG_FAIL, "oops", "a thread died in the kernel holding its locks",
				 extra, sizeof(extra), rc);
	}
	if (rc->ja || rc->jb || !reap_within(pid, o->hang_timeout)) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "the %s did not return within %gs after the end (%" PRIu64
			 " writes, %" PRIu64 " fsyncs): stuck in the kernel, see the kernel log",
			 rc->ja && rc->jb ? "write and fsync threads" : rc->ja ? "write thread" :
			 rc->jb ? "fsync thread" : "race process", o->hang_timeout,
			 rc->a.calls, rc->b.calls);
		r->diag = r->diag_buf;
		return race_left(r, pid, DG_FAIL, "hang", "a thread is stuck in the kernel on it",
				 extra, sizeof(extra), rc);
	}
	printf("# %s: %" PRIu64 " writes, %" PRIu64 " fsyncs in %.1f s\n", r->name,
	       rc->a.calls, rc->b.calls, (double)r->write_us / 1e6);
	if (rc->a.err || rc->b.err)
		v = loop_error(r, rc->a.err ? &rc->a : &rc->b, extra, sizeof(extra), &rc->a, &rc->b);
	else if (!rc->a.calls || !rc->b.calls) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "precondition not met: %" PRIu64 " writes and %" PRIu64 " fsyncs ran: no race",
			 rc->a.calls, rc->b.calls);
		r->diag = r->diag_buf;
		v = set(r, DG_SKIP, NULL, extra, sizeof(extra), &rc->a, &rc->b);
	} else {
		fd = CHECK_SYS(open(o->file, O_RDWR | O_DIRECT | O_CLOEXEC));
		v = check_file(o, fd, data, run_id, iteration, r, extra, sizeof(extra), &rc->a, &rc->b);
		close(fd);
	}
	v = dg_judge(r); /* a PASS whose writes went buffered tests nothing: SKIP */
	free(data);
	munmap(rc, sizeof(*rc));
	return v;
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

int main(int argc, char **argv)
{
	static const struct dg_repro rp = {
		.name = "dio-fsync-race",
		.summary = "O_DIRECT writes and fsync racing on one file descriptor",
		.fixes = {
			{ "cd9253c23aed",
			  "btrfs: fix race between direct IO write and fsync when using same fd" },
		},
		.introduced_by = { "939b656bc8ab",
				   "btrfs: fix corruption after buffer fault in during direct IO append write" },
		.fstests = "generic/364",
		.params = "size offset engine hang_timeout seconds",
		.may_hang = true,
		.engines = "dsync|plain",
		.default_pages = 1, /* no --size: one page, whatever the page size */
		.run = run,
	};
	int nargc;
	char **nargv;

	dg_prog = rp.name;
	nargv = take_seconds(argc, argv, &nargc);
	return dg_main(&rp, nargc, nargv);
}
