/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dio-self-mmap-write - O_DIRECT write from a shared mapping of the same file
 *
 * Fixes: 51bd9563b678 ("btrfs: fix deadlock due to page faults during direct IO reads and writes")
 * fstests: generic/729 generic/647
 * Params: size offset chunk fault engine async hang_timeout
 * May-hang: yes
 *
 * The file is filled with buffered writes, fsynced and dropped from the
 * page cache (POSIX_FADV_DONTNEED); then a fresh MAP_SHARED mapping of its
 * range [0, size) is the source of an O_DIRECT write to [offset,
 * offset+size): --offset 0 writes the range onto itself (generic/729's
 * shape), 0 < offset < size overlaps it, offset >= size is another range
 * of the same file (generic/647's shape). --fault makes pages of the
 * mapping resident first (a partly resident mapping); --engine uring
 * writes through io_uring (--async: IOSQE_ASYNC).
 *
 * --hang-timeout bounds the whole write phase (every --chunk call).
 *
 * iomap invalidates the target range before it faults the buffer in, so
 * the write must fault on pages of the very range it is writing; if the
 * filesystem lets that fault happen with the range locked (btrfs without
 * the nofault retry of 51bd9563b678), the write never returns. An
 * other-range write next to the mapped range can hang as well: readahead
 * for the mapping's fault reaches into the locked target range (seen with
 * --offset = --size; --offset 16M with --size 1M completed). The write
 * runs in a child; the parent is a watchdog: no return within
 * --hang-timeout seconds is FAIL (hang). It then records where the child
 * is stuck (/proc/PID/task/<tid>/stack, wchan, state), triggers sysrq w so
 * the kernel logs blocked tasks, kills the child without waiting for it
 * and hands the file to dg_abandon_file(): the child holds its inode lock,
 * so nothing touches the file again and later iterations are not run.
 *
 * The file's content is periodic with period offset (sector x carries the
 * pattern of offset x mod offset), so the write stores exactly what was
 * there, whatever order the kernel copies overlapping ranges in. A
 * finished write is checked like every reproducer (zero / stale /
 * misplaced / garbage ranges, FIEMAP, file size). By construction this
 * cannot see the partial-DIO hole (b73a6fd1b1ef): a lost write leaves the
 * old, identical extent, so on that kernel this reproducer PASSes.
 *
 * A PASS needs the conditions: a 64K probe write beside the file must go
 * direct (else SKIP "write went buffered": btrfs datasum files since
 * 968f19c5b1b7), and the mapping must have the residency the pattern asks
 * for (none: nothing mapped; all: everything; others: a resident page
 * followed by a missing one, see precond.c), else SKIP.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "diogap.h"

#define SHORT_KEEP 16
#define STACK_LINES 24   /* per task, in JSON and KTAP */
#define MAX_TASKS 16
#define FILL_PIECE (1u << 20)
#define EAGAIN_MAX 10000 /* retries of EAGAIN/EINTR before calling it an error */

enum phase { PH_SETUP, PH_WRITING, PH_WRITTEN };

struct short_write {
	uint64_t off, asked;
	int64_t got;
};

/* Shared between the watchdog and the writer (MAP_SHARED|MAP_ANONYMOUS). */
struct shared {
	int phase;           /* __atomic: written by the child, polled */
	uint64_t t_write_start, t_write_end; /* CLOCK_MONOTONIC us */
	int werr;            /* errno of a failed write call, 0 if none */
	uint64_t werr_off;
	unsigned nshort, eagain, calls; /* calls: write calls / SQEs issued */
	struct short_write shorts[SHORT_KEEP];
	size_t resident;     /* mapped pages right before the write (PTEs) */
	size_t cached_after_drop, cached_before_write; /* page cache, mincore */
	bool mincore;        /* residency measured with mincore (no pagemap) */
	const char *drop_how; /* how the page cache was dropped (a literal) */
	struct dg_result dr; /* the direct-path measurement (direct.c) */
	char msg[256];       /* why the child gave up (exit 2 or 4) */
	unsigned char seen[]; /* per page of the mapping */
};

struct self_run {
	const struct dg_opts *o;
	uint64_t run_id;
	unsigned iteration;
	uint64_t page, npages, maplen;
	struct shared *sh;
	int errfd;           /* memfd: the writer's stderr (a library CHECK) */
};

/* ---- the file's content ----------------------------------------------- */

/* The offset sector x's pattern names: periodic with period --offset. */
static uint64_t name_of(const struct dg_opts *o, uint64_t x)
{
	return o->offset ? x % o->offset : x;
}

static void fill_content(const struct self_run *s, char *buf, uint64_t start,
			 size_t len)
{
	size_t k;

	for (k = 0; k < len; k += DG_SECTOR)
		dg_pattern_fill(buf + k, DG_SECTOR, name_of(s->o, start + k),
				s->run_id, s->iteration);
}

/* ---- the writer (child) ------------------------------------------------
 * No stdio, no CHECK (it would exit() through the parent's atexit handlers
 * and stdio buffers): errors go to the shared block, then _exit(). */

static struct shared *child_sh;

static void child_fail(int code, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));
static void child_fail(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(child_sh->msg, sizeof(child_sh->msg), fmt, ap);
	va_end(ap);
	_exit(code);
}

#define CCHECK(expr) \
	do { \
		if (!(expr)) \
			child_fail(DG_BROKEN, "%s:%d: %s: %s", __FILE__, __LINE__, \
				   #expr, strerror(errno)); \
	} while (0)

/* The writer must not keep the watchdog's stdout, stderr or --json file
 * open: a reader waiting for EOF would wait for a stuck process. Its
 * stderr goes to a memfd the watchdog reads after it exits. */
static void child_detach(int errfd)
{
	int fd = open("/dev/null", O_RDWR);
	int i;

	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
	}
	dup2(errfd, 2);
	if (close_range(3, ~0U, 0))
		for (i = 3; i < 1024; i++)
			close(i);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void child_pwrite_all(int fd, const char *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == ENOSPC || errno == EDQUOT))
			child_fail(DG_BROKEN, "filling the file at %" PRIu64 ": %s (scratch filesystem full)",
				   off, strerror(errno));
		CCHECK(n > 0);
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
}

static void child_fill(const struct self_run *s, int fd, uint64_t start,
		       uint64_t len)
{
	char *buf = malloc(FILL_PIECE);
	uint64_t done;

	CCHECK(buf != NULL);
	for (done = 0; done < len; done += FILL_PIECE) {
		size_t n = len - done < FILL_PIECE ? (size_t)(len - done) : FILL_PIECE;

		fill_content(s, buf, start + done, n);
		child_pwrite_all(fd, buf, n, start + done);
	}
	free(buf);
}

static size_t cached_pages(const struct self_run *s, char *map)
{
	unsigned char *vec = malloc(s->npages);
	size_t i, n = 0;

	CCHECK(vec != NULL);
	CCHECK(mincore(map, s->maplen, vec) == 0);
	for (i = 0; i < s->npages; i++)
		n += vec[i] & 1;
	free(vec);
	return n;
}

static void note_short(struct shared *sh, uint64_t off, uint64_t asked,
		       int64_t got)
{
	if (sh->nshort < SHORT_KEEP)
		sh->shorts[sh->nshort] = (struct short_write){ off, asked, got };
	sh->nshort++;
}

/* One chunk with pwrite: the rest of a short write is written again. */
static int child_write_psync(struct shared *sh, int fd, const char *src,
			     uint64_t len, uint64_t off)
{
	while (len) {
		ssize_t n;

		sh->calls++;
		n = pwrite(fd, src, len, (off_t)off);

		if (n < 0 && (errno == EINTR || errno == EAGAIN) &&
		    ++sh->eagain < EAGAIN_MAX)
			continue;
		if (n <= 0) {
			sh->werr = n < 0 ? errno : EIO;
			sh->werr_off = off;
			return -1;
		}
		if ((uint64_t)n < len)
			note_short(sh, off, len, n);
		src += n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int child_write_uring(struct shared *sh, struct io_uring *ring, int fd,
			     bool async, const char *src, uint64_t len,
			     uint64_t off)
{
	struct io_uring_cqe *cqe;
	int ret, res;

	while (len) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

		CCHECK(sqe != NULL);
		io_uring_prep_write(sqe, fd, src, (unsigned)len, off);
		sh->calls++;
		if (async)
			sqe->flags |= IOSQE_ASYNC;
		do
			ret = io_uring_submit(ring);
		while (ret == -EINTR);
		if (ret < 0)
			child_fail(DG_BROKEN, "io_uring_submit: %s", strerror(-ret));
		do
			ret = io_uring_wait_cqe(ring, &cqe);
		while (ret == -EINTR);
		if (ret < 0)
			child_fail(DG_BROKEN, "io_uring_wait_cqe: %s", strerror(-ret));
		res = cqe->res;
		io_uring_cqe_seen(ring, cqe);
		if ((res == -EAGAIN || res == -EINTR) && ++sh->eagain < EAGAIN_MAX)
			continue;
		if (res <= 0) {
			sh->werr = res < 0 ? -res : EIO;
			sh->werr_off = off;
			return -1;
		}
		if ((uint64_t)res < len)
			note_short(sh, off, len, res);
		src += res;
		len -= (uint64_t)res;
		off += (uint64_t)res;
	}
	return 0;
}

static void child_ring(struct io_uring *ring)
{
	struct io_uring_probe *p;
	int ret = io_uring_queue_init(2, ring, 0);

	if (ret == -ENOSYS || ret == -EPERM || ret == -EINVAL)
		child_fail(DG_SKIP, "io_uring unavailable: io_uring_queue_init: %s",
			   strerror(-ret));
	if (ret < 0)
		child_fail(DG_BROKEN, "io_uring_queue_init: %s", strerror(-ret));
	p = io_uring_get_probe_ring(ring);
	if (!p || !io_uring_opcode_supported(p, IORING_OP_WRITE))
		child_fail(DG_SKIP, "io_uring here lacks IORING_OP_WRITE");
	io_uring_free_probe(p);
}

/* Drop the file's pages from the page cache (it is fsynced). posix_fadvise
 * returns the error (errno is not set). Without fadvise (ENOSYS: no
 * CONFIG_ADVISE_SYSCALLS) drop every clean page cache page instead. */
static void drop_cache(struct shared *sh, int fd)
{
	int e = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), dc;

	sh->drop_how = "posix_fadvise(POSIX_FADV_DONTNEED)";
	if (!e)
		return;
	if (e != ENOSYS)
		child_fail(DG_BROKEN, "posix_fadvise(POSIX_FADV_DONTNEED): %s", strerror(e));
	dc = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (dc < 0 || write(dc, "1", 1) != 1)
		child_fail(DG_BROKEN, "posix_fadvise: ENOSYS, and /proc/sys/vm/drop_caches: %s",
			   strerror(errno));
	close(dc);
	sh->drop_how = "echo 1 > /proc/sys/vm/drop_caches (posix_fadvise: ENOSYS)";
}

static void child_main(const struct self_run *s)
{
	const struct dg_opts *o = s->o;
	struct shared *sh = s->sh;
	bool uring = o->engine && !strcmp(o->engine, "uring");
	uint64_t chunk = o->chunk ? o->chunk : o->size, c;
	struct dg_buf hb;
	struct io_uring ring;
	char *map;
	int fd, dfd;
	size_t i;

	child_sh = sh;
	child_detach(s->errfd);
	if (uring)
		child_ring(&ring);

	/* the content, through the page cache, then out of it */
	fd = open(o->file, O_RDWR | O_CLOEXEC);
	CCHECK(fd >= 0);
	if (o->offset < o->size) {
		child_fill(s, fd, 0, o->offset + o->size);
	} else {
		child_fill(s, fd, 0, o->size);
		child_fill(s, fd, o->offset, o->size);
	}
	CCHECK(fsync(fd) == 0);
	drop_cache(sh, fd);
	dfd = open(o->file, O_RDWR | O_DIRECT | O_CLOEXEC);
	CCHECK(dfd >= 0);

	map = mmap(NULL, s->maplen, PROT_READ, MAP_SHARED, fd, 0);
	CCHECK(map != MAP_FAILED);
	sh->cached_after_drop = cached_pages(s, map);

	/* the pages the pattern asks for: one read each (fault-around may map
	 * more: the measurement below records what really is there) */
	memset(&hb, 0, sizeof(hb));
	hb.map = map;
	hb.len = s->maplen;
	hb.page = s->page;
	hb.npages = s->npages;
	hb.fd = -1;
	hb.want = malloc(s->npages);
	hb.seen = malloc(s->npages);
	CCHECK(hb.want && hb.seen);
	{
		char err[160];

		if (dg_fault_want(o->fault, o->size, s->page, o->chunk, hb.want,
				  err, sizeof(err)))
			child_fail(DG_BROKEN, "--fault: %s", err);
	}
	for (i = 0; i < s->npages; i++)
		if (hb.want[i])
			(void)*(volatile char *)(map + i * s->page);

	sh->resident = dg_buf_measure(&hb);
	sh->mincore = !strcmp(hb.source, "mincore");
	sh->cached_before_write = cached_pages(s, map);
	memcpy(sh->seen, hb.seen, s->npages);

	dg_direct_begin(&sh->dr);
	sh->t_write_start = dg_now_us();
	__atomic_store_n(&sh->phase, PH_WRITING, __ATOMIC_RELEASE);
	for (c = 0; c < o->size; c += chunk) {
		uint64_t len = o->size - c < chunk ? o->size - c : chunk;
		int ret = uring ? child_write_uring(sh, &ring, dfd, o->async,
						    map + c, len, o->offset + c)
				: child_write_psync(sh, dfd, map + c, len,
						    o->offset + c);

		if (ret)
			break;
	}
	sh->t_write_end = dg_now_us();
	dg_direct_end(&sh->dr, o->size, s->page, dg_dirty_per_page(dfd));
	__atomic_store_n(&sh->phase, PH_WRITTEN, __ATOMIC_RELEASE);

	if (uring)
		io_uring_queue_exit(&ring);
	munmap(map, s->maplen);
	close(dfd);
	close(fd);
	_exit(0);
}

/* ---- the watchdog (parent) -------------------------------------------- */

/* Read a small /proc file into buf ("" when it cannot be read). */
static void read_proc(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got = -1;

	buf[0] = '\0';
	if (fd >= 0) {
		got = read(fd, buf, n - 1);
		close(fd);
	}
	buf[got > 0 ? got : 0] = '\0';
}

static void chomp(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
}

/* "State:\tD (disk sleep)" out of /proc/.../status. */
static void task_state(const char *dir, char *out, size_t n)
{
	char path[192], buf[4096], *p;

	snprintf(path, sizeof(path), "%.160s/status", dir);
	read_proc(path, buf, sizeof(buf));
	p = strstr(buf, "State:");
	out[0] = '\0';
	if (p) {
		p += 6;
		while (*p == ' ' || *p == '\t')
			p++;
		snprintf(out, n, "%.*s", (int)strcspn(p, "\n"), p);
	}
}

/* Where each task (thread) of the stuck child is: KTAP diagnostics now,
 * JSON members into js. Returns the main wchan for the one-line diag. */
static void collect_stuck(pid_t pid, struct dg_sb *js, char *first_wchan,
			  size_t fwn)
{
	char dir[64], tdir[128], path[160], comm[64], state[64], wchan[128];
	static char stack[16384];
	struct dirent *de;
	DIR *d;
	int ntask = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	first_wchan[0] = '\0';
	dg_sb_printf(js, "\"tasks\":[");
	d = opendir(dir);
	while (d && (de = readdir(d)) && ntask < MAX_TASKS) {
		char *line, *save = NULL;
		int nl = 0;

		if (de->d_name[0] == '.')
			continue;
		snprintf(tdir, sizeof(tdir), "%s/%.20s", dir, de->d_name);
		snprintf(path, sizeof(path), "%s/comm", tdir);
		read_proc(path, comm, sizeof(comm));
		chomp(comm);
		task_state(tdir, state, sizeof(state));
		snprintf(path, sizeof(path), "%s/wchan", tdir);
		read_proc(path, wchan, sizeof(wchan));
		chomp(wchan);
		snprintf(path, sizeof(path), "%s/stack", tdir);
		read_proc(path, stack, sizeof(stack));

		printf("# hang: task %s (%s) state %s wchan %s\n", de->d_name, comm,
		       state[0] ? state : "?", wchan[0] ? wchan : "?");
		dg_sb_printf(js, "%s{\"tid\":%s,\"comm\":", ntask ? "," : "", de->d_name);
		dg_sb_str(js, comm);
		dg_sb_printf(js, ",\"state\":");
		dg_sb_str(js, state);
		dg_sb_printf(js, ",\"wchan\":");
		dg_sb_str(js, wchan);
		dg_sb_printf(js, ",\"stack\":[");
		for (line = strtok_r(stack, "\n", &save); line && nl < STACK_LINES;
		     line = strtok_r(NULL, "\n", &save), nl++) {
			printf("#   %s\n", line);
			dg_sb_printf(js, "%s", nl ? "," : "");
			dg_sb_str(js, line);
		}
		if (!nl)
			printf("#   (no /proc/%s/stack here: needs root and CONFIG_STACKTRACE)\n",
			       de->d_name);
		dg_sb_printf(js, "]}");
		/* the most telling wchan: a task in D state, else the first */
		if (wchan[0] && wchan[0] != '0' &&
		    (!first_wchan[0] || state[0] == 'D'))
			snprintf(first_wchan, fwn, "%s (%s, %.1s)", wchan, comm, state);
		ntask++;
	}
	if (d)
		closedir(d);
	dg_sb_printf(js, "]");
}

/* sysrq w: the kernel logs every blocked (D state) task with its stack. */
static const char *sysrq_blocked(void)
{
	int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
	static char why[96];

	if (fd < 0) {
		snprintf(why, sizeof(why), "unavailable: %s", strerror(errno));
		return why;
	}
	if (write(fd, "w", 1) != 1) {
		snprintf(why, sizeof(why), "failed: %s", strerror(errno));
		close(fd);
		return why;
	}
	close(fd);
	return "written";
}

/* Tasks of pid that are still alive (not exited, not zombies): after the
 * leader dies, an io-wq worker stuck in the kernel may remain. */
static int live_tasks(pid_t pid)
{
	char dir[64], path[128], buf[512], *p;
	struct dirent *de;
	int live = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%.20s/stat", dir, de->d_name);
		read_proc(path, buf, sizeof(buf));
		p = strrchr(buf, ')');
		if (p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X')
			live++;
	}
	if (d)
		closedir(d);
	return live;
}

static void child_info(const struct self_run *s, struct dg_result *r,
		       struct dg_buf *b);
static void extra_json(const struct self_run *s, struct dg_result *r,
		       const char *hang);

static void stuck(const struct self_run *s, pid_t pid, struct dg_result *r,
		  struct dg_buf *b, const char *where, double waited)
{
	static struct dg_sb js;
	char wchan[192];
	const char *sysrq;
	int i, live = 0;

	js.len = 0;
	dg_sb_printf(&js, "%s", ""); /* allocated and terminated */
	printf("# hang: pid %d still in %s after %.1f s (timeout %g s)\n", (int)pid,
	       where, waited, s->o->hang_timeout);
	dg_sb_printf(&js, "\"hang\":{\"pid\":%d,\"phase\":\"%s\",\"waited_s\":%.1f,",
	       (int)pid, where, waited);
	collect_stuck(pid, &js, wchan, sizeof(wchan));
	sysrq = sysrq_blocked();
	printf("# hang: sysrq w (blocked tasks to the kernel log): %s\n", sysrq);
	kill(pid, SIGKILL);
	/* a task in uninterruptible sleep does not die: say whether one is
	 * left (half a second, never a blocking wait) */
	for (i = 0; i < 25 && (live = live_tasks(pid)) > 0; i++)
		usleep(20000);
	if (!live)
		waitpid(pid, NULL, WNOHANG); /* reap the zombie if it is one */
	printf("# hang: after SIGKILL %s\n",
	       live ? "tasks of the child are still there (unkillable)" : "the child is gone");
	dg_sb_printf(&js, ",\"sysrq_w\":");
	dg_sb_str(&js, sysrq);
	dg_sb_printf(&js, ",\"after_sigkill\":\"%s\",\"tasks_left\":%d}",
	       live ? "stuck" : "exited", live);
	child_info(s, r, b);
	extra_json(s, r, js.s);
	if (!strcmp(where, "setup")) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "setup (fill, fsync, fadvise, mmap) did not finish in %.0f s; stuck in %.120s",
			 waited, wchan[0] ? wchan : "?");
		r->verdict = DG_BROKEN;
	} else {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "hang: the O_DIRECT write did not return in %g s (%.30s); stuck in %.120s",
			 s->o->hang_timeout, where, wchan[0] ? wchan : "?");
		r->verdict = DG_FAIL;
		r->symptom = "hang";
	}
	r->diag = r->diag_buf;
	/* the stuck writer holds the file's inode lock: dg_main must not
	 * unlink (or open, or stat) it, or it would hang beside the writer */
	dg_abandon_file(live ? "a task stuck in the kernel holds its inode lock"
			     : "a writer was stuck in the kernel on it");
}

#define STUCK (-1) /* watch(): the writer hung, r is filled, the file abandoned */

/* Wait for the writer; the clock runs per phase. Returns its wait status,
 * or STUCK. */
static int watch(const struct self_run *s, pid_t pid, struct dg_result *r,
		 struct dg_buf *b)
{
	const double setup_s = s->o->hang_timeout * 2 > 60 ? s->o->hang_timeout * 2 : 60;
	uint64_t t0 = dg_now_us(), now, written_at = 0;
	struct timespec nap = { 0, 10 * 1000 * 1000 };
	int status;

	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			return status;
		if (w < 0 && errno != EINTR)
			dg_die_at(__FILE__, __LINE__, "waitpid", errno);
		now = dg_now_us();
		switch (__atomic_load_n(&s->sh->phase, __ATOMIC_ACQUIRE)) {
		case PH_SETUP:
			if (now - t0 > setup_s * 1e6) {
				stuck(s, pid, r, b, "setup", (double)(now - t0) / 1e6);
				return STUCK;
			}
			break;
		case PH_WRITING:
			if (now - s->sh->t_write_start > s->o->hang_timeout * 1e6) {
				stuck(s, pid, r, b, "write",
				      (double)(now - s->sh->t_write_start) / 1e6);
				return STUCK;
			}
			break;
		default:
			/* the write returned; munmap, close and exit remain */
			if (!written_at)
				written_at = now;
			if (now - written_at > s->o->hang_timeout * 1e6) {
				stuck(s, pid, r, b, "teardown after the write",
				      (double)(now - written_at) / 1e6);
				return STUCK;
			}
			break;
		}
		nanosleep(&nap, NULL);
	}
}

/* Read back [start, start+len) and classify against the periodic content. */
static size_t verify_range(const struct self_run *s, int fd, uint64_t start,
			   uint64_t len, struct dg_result *r, int *err)
{
	size_t align = s->o->mem_align > s->page ? s->o->mem_align : s->page;
	char *got = dg_xbuffer(align, (len + align - 1) / align * align);
	char *want = dg_xmalloc(len);
	ssize_t n = dg_read_back(fd, got, len, start);
	size_t k, bad = 0;

	if (n < 0) {
		*err = (int)-n;
		free(got);
		free(want);
		return (size_t)-1;
	}
	fill_content(s, want, start, len);
	for (k = 0; k < len; k += DG_SECTOR) {
		enum dg_class c = dg_classify(got + k, want + k,
					      name_of(s->o, start + k), s->run_id,
					      s->iteration);

		if (c != DG_OK) {
			dg_ranges_add(&r->gaps, start + k, start + k + DG_SECTOR, c);
			bad++;
		}
	}
	if (bad)
		dg_first_bad_note(r, got, want, (size_t)len, start);
	free(got);
	free(want);
	return bad;
}

static int verify(const struct self_run *s, struct dg_result *r,
		  const struct dg_buf *b)
{
	const struct dg_opts *o = s->o;
	int fd = CHECK_SYS(open(o->file, O_RDWR | O_DIRECT | O_CLOEXEC));
	uint64_t t0;
	size_t bad, more = 0;
	struct stat st;
	uint64_t err_off = 0;
	int err = 0;

	/* no predicted ranges: punch = a hole over the first alignment unit
	 * of the target range, grow = the file one unit too long */
	dg_test_corrupt(o, fd, s->run_id, s->iteration, r);
	t0 = dg_now_us();

	r->size_expected = o->offset + o->size;
	if (dg_test_read_eio()) {
		err = EIO;
		bad = (size_t)-1;
	} else if (o->offset < o->size) {
		bad = verify_range(s, fd, 0, o->offset + o->size, r, &err);
	} else {
		bad = verify_range(s, fd, 0, o->size, r, &err);
		if (bad != (size_t)-1)
			more = verify_range(s, fd, o->offset, o->size, r, &err);
		else
			err_off = 0;
		if (more == (size_t)-1)
			err_off = o->offset;
	}
	r->verify_us = dg_now_us() - t0;
	if (bad == (size_t)-1 || more == (size_t)-1) {
		close(fd);
		/* EIO: FAIL eio-read (a checksum failure, most likely) */
		return dg_read_failed(-err, err_off, (size_t)o->size, r);
	}
	bad += more;
	CHECK_SYS(fstat(fd, &st));
	r->size_seen = (uint64_t)st.st_size;
	if (bad)
		dg_gaps_fiemap(fd, &r->gaps);
	close(fd);
	if (bad) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "%zu bad sectors in %zu ranges, first [%" PRIu64 ", %" PRIu64 ") %s",
			 bad, r->gaps.n, r->gaps.r[0].start, r->gaps.r[0].end,
			 dg_class_name(r->gaps.r[0].cls));
		r->diag = r->diag_buf;
		r->symptom = "data";
		return DG_FAIL;
	}
	if (r->size_seen != r->size_expected) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "file size %" PRIu64 ", expected %" PRIu64, r->size_seen,
			 r->size_expected);
		r->diag = r->diag_buf;
		r->symptom = "size";
		return DG_FAIL;
	}
	/* a PASS proves nothing if the write went buffered (no page faults
	 * with the range locked) or faulted on nothing */
	r->verdict = DG_PASS;
	dg_precondition(o, b, o->chunk, r);
	return dg_judge(r);
}

static const char *relation(const struct dg_opts *o)
{
	return !o->offset ? "same" : o->offset < o->size ? "overlap" : "disjoint";
}

/* What the writer reported: residency, timing, short writes. */
static void child_info(const struct self_run *s, struct dg_result *r,
		       struct dg_buf *b)
{
	const struct shared *sh = s->sh;
	int phase = __atomic_load_n(&sh->phase, __ATOMIC_ACQUIRE);

	memcpy(b->seen, sh->seen, s->npages);
	b->source = phase < PH_WRITING ? "none" : sh->mincore ? "mincore" : "pagemap";
	b->shared = true; /* a MAP_SHARED mapping of the file */
	r->resident_pages = sh->resident;
	if (phase == PH_WRITTEN)
		r->write_us = sh->t_write_end - sh->t_write_start;
	else if (phase == PH_WRITING)
		r->write_us = dg_now_us() - sh->t_write_start;
}

/* Reproducer members of the JSON record; hang (or NULL) is the "hang"
 * member built by stuck(). */
static void extra_json(const struct self_run *s, struct dg_result *r,
		       const char *hang)
{
	static struct dg_sb js;
	const struct shared *sh = s->sh;
	unsigned i;

	js.len = 0;
	dg_sb_printf(&js, "%s", ""); /* allocated and terminated */
	dg_sb_printf(&js, "\"mapping\":[0,%" PRIu64 "],\"target\":[%" PRIu64 ",%" PRIu64
	       "],\"ranges\":\"%s\",\"page_cache_after_drop\":%zu,"
	       "\"page_cache_before_write\":%zu,\"write_calls\":%u,\"eagain\":%u,\"short_writes\":%u",
	       s->o->size, s->o->offset, s->o->offset + s->o->size, relation(s->o),
	       sh->cached_after_drop, sh->cached_before_write, sh->calls, sh->eagain, sh->nshort);
	dg_sb_printf(&js, ",\"page_cache_drop\":");
	dg_sb_str(&js, sh->drop_how);
	/* the write itself: on a fixed kernel it faults, finds the range
	 * mapped and finishes buffered (-ENOTBLK), so this says buffered
	 * even where the write started direct; "direct" is the probe's */
	if (sh->dr.dirtied_set)
		dg_sb_printf(&js, ",\"write_dirtied_pages\":%" PRId64 ",\"write_writeback_pages\":%" PRId64,
			     sh->dr.dirtied_pages, sh->dr.writeback_pages);
	else
		dg_sb_printf(&js, ",\"write_dirtied_pages\":null,\"write_writeback_pages\":null");
	dg_sb_printf(&js, ",\"short\":[");
	for (i = 0; i < sh->nshort && i < SHORT_KEEP; i++)
		dg_sb_printf(&js, "%s[%" PRIu64 ",%" PRIu64 ",%" PRId64 "]", i ? "," : "",
		       sh->shorts[i].off, sh->shorts[i].asked, sh->shorts[i].got);
	dg_sb_printf(&js, "]");
	if (hang)
		dg_sb_printf(&js, ",%s", hang);
	r->extra_json = js.s;
	for (i = 0; i < sh->nshort && i < 8; i++)
		printf("# short write: offset %" PRIu64 " asked %" PRIu64 " wrote %" PRId64 "\n",
		       sh->shorts[i].off, sh->shorts[i].asked, sh->shorts[i].got);
	if (sh->drop_how && strncmp(sh->drop_how, "posix_fadvise", 13))
		printf("# page cache dropped with %s\n", sh->drop_how);
	if (sh->cached_after_drop)
		printf("# note: %zu of %" PRIu64 " mapped pages were still in the page cache after %s\n",
		       sh->cached_after_drop, s->npages, sh->drop_how ? sh->drop_how : "the drop");
}

/*
 * Does an O_DIRECT write to this file take the direct path at all? The
 * write under test cannot say: on a fixed kernel it faults on the mapping,
 * finds the target range mapped and finishes as a buffered write (iomap's
 * -ENOTBLK fallback), which is the fix working. So a probe: 64K from an
 * ordinary buffer to a new file beside the target with the target's NOCOW
 * flag, measured like every reproducer's writes (direct.c). Buffered there
 * (btrfs datasum files since 968f19c5b1b7) means the write under test never
 * entered the direct path with the range locked: nothing to deadlock.
 */
#define PROBE_BYTES (64u * 1024)

static void probe_direct(const struct dg_opts *o, struct dg_result *r)
{
	char path[sizeof(o->file) + 16];
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *buf = dg_xaligned(page, PROBE_BYTES);
	int fd, flags = 0, nflags = 0;

	snprintf(path, sizeof(path), "%s.probe", o->file);
	fd = CHECK_SYS(open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
	{
		int src = CHECK_SYS(open(o->file, O_RDONLY | O_CLOEXEC));

		if (ioctl(src, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_NOCOW_FL) &&
		    ioctl(fd, FS_IOC_GETFLAGS, &nflags) == 0) {
			nflags |= FS_NOCOW_FL;
			(void)ioctl(fd, FS_IOC_SETFLAGS, &nflags);
		}
		close(src);
	}
	close(fd);
	fd = CHECK_SYS(open(path, O_RDWR | O_DIRECT | O_CLOEXEC));
	memset(buf, 0x5a, PROBE_BYTES);
	dg_direct_begin(r);
	if (pwrite(fd, buf, PROBE_BYTES, 0) == (ssize_t)PROBE_BYTES)
		dg_direct_end(r, PROBE_BYTES, page, dg_dirty_per_page(fd));
	else
		r->direct = DG_NULL;
	close(fd);
	unlink(path);
	free(buf);
}

static int run(const struct dg_opts *o, unsigned iteration, uint64_t run_id,
	       struct dg_result *r, struct dg_buf *b)
{
	struct self_run s = { .o = o, .run_id = run_id, .iteration = iteration };
	size_t shlen;
	pid_t pid;
	int status, v;

	/* stale needs predicted ranges; this reproducer has none */
	if (getenv("DIOGAP_TEST_CORRUPT") && !strcmp(getenv("DIOGAP_TEST_CORRUPT"), "stale"))
		dg_usage_error("DIOGAP_TEST_CORRUPT=stale: %s takes punch or grow", o->rp->name);
	if (o->async && strcmp(o->engine, "uring"))
		dg_usage_error("--async needs --engine uring");
	s.page = (uint64_t)sysconf(_SC_PAGESIZE);
	s.npages = (o->size + s.page - 1) / s.page;
	s.maplen = s.npages * s.page;
	shlen = sizeof(struct shared) + s.npages;
	s.sh = mmap(NULL, shlen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		    -1, 0);
	CHECK(s.sh != MAP_FAILED);

	/* what the output needs of a buffer; the mapping lives in the child */
	b->page = s.page;
	b->npages = s.npages;
	b->len = s.maplen;
	b->want = dg_xmalloc(s.npages);
	b->seen = dg_xmalloc(s.npages);
	b->source = "none";
	{
		char err[160];

		if (dg_fault_want(o->fault, o->size, s.page, o->chunk, b->want, err,
				  sizeof(err)))
			dg_usage_error("--fault: %s", err);
	}
	probe_direct(o, r);
	s.errfd = CHECK_SYS(memfd_create("diogap-writer-stderr", MFD_CLOEXEC));

	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		child_main(&s);

	status = watch(&s, pid, r, b);
	if (status != STUCK) {
		child_info(&s, r, b);
		extra_json(&s, r, NULL);
	}
	if (status == STUCK) {
		v = r->verdict; /* stuck() filled r; dg_main leaves the file alone */
	} else if (!WIFEXITED(status)) {
		snprintf(r->diag_buf, sizeof(r->diag_buf), "writer killed by signal %d (%s)",
			 WTERMSIG(status), strsignal(WTERMSIG(status)));
		r->diag = r->diag_buf;
		v = DG_BROKEN;
	} else if (WEXITSTATUS(status) != 0) {
		char err[200] = "";

		if (!s.sh->msg[0] && pread(s.errfd, err, sizeof(err) - 1, 0) > 0)
			chomp(err);
		snprintf(r->diag_buf, sizeof(r->diag_buf), "writer: %.200s",
			 s.sh->msg[0] ? s.sh->msg : err[0] ? err : "exit 2, no message");
		r->diag = r->diag_buf;
		v = WEXITSTATUS(status) == DG_SKIP ? DG_SKIP : DG_BROKEN;
	} else if (s.sh->werr) {
		v = dg_write_failed(s.sh->werr, s.sh->werr_off, r);
	} else {
		v = verify(&s, r, b);
	}
	munmap(s.sh, shlen);
	close(s.errfd);
	return r->verdict = v;
}

int main(int argc, char **argv)
{
	static const struct dg_repro rp = {
		.name = "dio-self-mmap-write",
		.describe = DG_DESCRIBE,
		.engines = "psync|uring",
		.run = run,
	};

	return dg_main(&rp, argc, argv);
}
