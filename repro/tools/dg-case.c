// SPDX-License-Identifier: GPL-2.0
/*
 * dg-case - one case of the harness's case runner (harness/lib/run-cases.sh)
 * in one process. The runner used to spend a dozen shell tools per case
 * (clock, wait loop, output framing, dmesg, dd); in an emulated guest each
 * exec costs milliseconds, more than a small reproducer run. The runner's
 * loop, mounts and decisions stay in shell; this does the per-case work.
 *
 *   dg-case run --stream FILE --id ID --seq N --timeout SECONDS
 *               --json FILE --out FILE [--token T] [--push DEV] -- PROGRAM ARGS...
 *       Append "S ID MS" to the stream, run PROGRAM (stdin /dev/null,
 *       stdout and stderr into --out), wait for it at most SECONDS, then
 *       append one record per line: "J ID line" of the --json file the
 *       program wrote, "O ID line" of its output, "K ID line" of the kernel
 *       log written while it ran, and "E ID EXIT MS [timeout]". A program
 *       still running at the timeout is SIGKILLed; one stuck in the kernel
 *       that does not die within 5 s is left behind, never waited for.
 *   dg-case push --stream FILE --push DEV [--dmesg FILE]
 *       Copy the stream's new part to the results disk DEV (and with
 *       --dmesg, FILE into its kernel log area).
 *   dg-case preflight
 *       Print one JSON object: what this kernel offers the reproducers
 *       (madvise, fadvise, pagemap, memfd, io_uring, sysrq, /dev/kmsg,
 *       device mapper, drop_caches, page size, shmem THP) and, for each
 *       missing piece, the kernel option that gives it. Probed by calling,
 *       never guessed from a config: users hand us kernels we never saw.
 *
 * The results disk (read by harness/lib/vm.sh): sector 0 is the header
 * "DIOGAP-RESULTS-1\nlen L\ndmesg D\n"; the stream's L bytes follow from
 * sector 1, at most 32 MiB - 512; the guest's kernel log (D bytes) starts at
 * 32 MiB. Each push writes the blocks from where the last one ended, then
 * rewrites the header, both O_DIRECT (or each followed by a sync): the
 * header never names data that is not on the disk.
 *
 * Exit: 0 the case ran to its end (whatever its verdict), 3 it timed out,
 * 2 dg-case failed (bad arguments, stream or disk not writable).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diogap.h"

#define MAGIC "DIOGAP-RESULTS-1"
#define SECTOR 512
#define DISK_ALIGN 4096 /* buffer alignment for O_DIRECT to any disk */
#define STREAM_MAX (32u * 1024 * 1024 - SECTOR)
#define DMESG_AT (32u * 1024 * 1024)
#define DMESG_MAX (32u * 1024 * 1024)
#define EXIT_TIMEOUT 3
#define KILL_GRACE_MS 5000

struct args {
	const char *stream, *id, *seq, *json, *out, *token, *push, *dmesg;
	unsigned timeout;
	char **prog;
};

static __attribute__((noreturn)) void usage(void)
{
	fprintf(stderr,
		"usage: dg-case run --stream FILE --id ID --seq N --timeout S --json FILE --out FILE\n"
		"                   [--token T] [--push DEV] -- PROGRAM ARGS...\n"
		"       dg-case push --stream FILE --push DEV [--dmesg FILE]\n"
		"       dg-case preflight\n");
	exit(DG_BROKEN);
}

static uint64_t clock_ms(clockid_t c)
{
	struct timespec ts;

	CHECK_SYS(clock_gettime(c, &ts));
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the stream ------------------------------------------------------- */

static FILE *stream_open(const char *path)
{
	FILE *f = fopen(path, "ae");

	if (!f)
		dg_die_at(__FILE__, __LINE__, path, errno);
	return f;
}

static void stream_close(FILE *f)
{
	CHECK(fflush(f) == 0);
	CHECK(fclose(f) == 0);
}

/* "TAG ID line" for each line of FILE; carriage returns dropped. */
static void emit_file(FILE *s, char tag, const char *id, const char *path)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f)
		return; /* the program wrote none */
	while ((n = getline(&line, &cap, f)) > 0) {
		char *r, *w;

		for (r = w = line; *r; r++)
			if (*r != '\r' && *r != '\n')
				*w++ = *r;
		*w = '\0';
		fprintf(s, "%c %s %s\n", tag, id, line);
	}
	free(line);
	fclose(f);
}

/* ---- the kernel log ---------------------------------------------------- */

/* kmsg_open: /dev/kmsg positioned at its end, or -1 (not readable here:
 * no K records then). */
static int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0 && lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void kmsg_mark(const char *text)
{
	int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, text, strlen(text)) < 0) {
		/* a marker is for people reading the log; nothing depends on it */
	}
	close(fd);
}

/* "K ID [seconds.micros] message" for each record since kmsg_open, as
 * dmesg prints them. Continuation lines (" KEY=value") are dropped. */
static void emit_kmsg(FILE *s, const char *id, int fd)
{
	char rec[8192];

	for (;;) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);
		unsigned long long usec;
		char *msg, *nl;

		if (n < 0 && errno == EPIPE)
			continue; /* overwritten before we read it: go on */
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		rec[n] = '\0';
		msg = strchr(rec, ';');
		if (!msg || sscanf(rec, "%*u,%*u,%llu", &usec) != 1)
			continue;
		msg++;
		nl = strchr(msg, '\n');
		if (nl)
			*nl = '\0';
		fprintf(s, "K %s [%5llu.%06llu] %s\n", id, usec / 1000000, usec % 1000000, msg);
	}
}

/* ---- running the program ------------------------------------------------ */

static pid_t spawn(char **prog, const char *out)
{
	pid_t pid;
	int fd;

	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		dg_die_at(__FILE__, __LINE__, out, errno);
	pid = CHECK_SYS(fork());
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (null >= 0)
			dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(prog[0], prog);
		dprintf(2, "dg-case: cannot run %s: %s\n", prog[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	return pid;
}

/* wait_for PID MS: 1 when PID ended within MS (its status in *status). */
static int wait_for(pid_t pid, uint64_t ms, int *status)
{
	uint64_t end = clock_ms(CLOCK_MONOTONIC) + ms;
	sigset_t chld;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		pid_t w = waitpid(pid, status, WNOHANG);
		uint64_t now;
		struct timespec left;

		if (w == pid)
			return 1;
		if (w < 0 && errno != EINTR)
			dg_die_at(__FILE__, __LINE__, "waitpid", errno);
		now = clock_ms(CLOCK_MONOTONIC);
		if (now >= end)
			return 0;
		left.tv_sec = (time_t)((end - now) / 1000);
		left.tv_nsec = (long)((end - now) % 1000) * 1000000;
		/* woken by SIGCHLD (blocked, so never lost) or the deadline */
		sigtimedwait(&chld, NULL, &left);
	}
}

static int run_case(const struct args *a)
{
	char mark[512];
	uint64_t t0, ms;
	int kfd, status = 0, ended;
	sigset_t chld;
	FILE *s;
	pid_t pid;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	CHECK_SYS(sigprocmask(SIG_BLOCK, &chld, NULL));
	unlink(a->json);

	s = stream_open(a->stream);
	fprintf(s, "S %s %llu\n", a->id, (unsigned long long)clock_ms(CLOCK_BOOTTIME));
	stream_close(s);

	snprintf(mark, sizeof(mark), "diogap: case-begin %s.%s %s\n",
		 a->token ? a->token : "-", a->seq, a->id);
	kmsg_mark(mark);
	kfd = kmsg_open();

	t0 = clock_ms(CLOCK_MONOTONIC);
	pid = spawn(a->prog, a->out);
	ended = wait_for(pid, (uint64_t)a->timeout * 1000, &status);
	if (!ended) {
		kill(pid, SIGKILL);
		/* a task stuck in the kernel may never die: leave it */
		wait_for(pid, KILL_GRACE_MS, &status);
	}
	ms = clock_ms(CLOCK_MONOTONIC) - t0;

	s = stream_open(a->stream);
	emit_file(s, 'J', a->id, a->json);
	emit_file(s, 'O', a->id, a->out);
	if (kfd >= 0) {
		emit_kmsg(s, a->id, kfd);
		close(kfd);
	}
	if (!ended)
		fprintf(s, "E %s 2 %llu timeout\n", a->id, (unsigned long long)ms);
	else
		fprintf(s, "E %s %d %llu\n", a->id,
			WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
			(unsigned long long)ms);
	stream_close(s);
	return ended ? 0 : EXIT_TIMEOUT;
}

/* ---- the results disk ---------------------------------------------------- */

static void pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
	const char *p = buf;

	while (n) {
		ssize_t w = pwrite(fd, p, n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			dg_die_at(__FILE__, __LINE__, "pwrite to the results disk", w < 0 ? errno : EIO);
		p += w;
		off += w;
		n -= (size_t)w;
	}
}

/* FILE's bytes [from, to) padded with zeros to whole sectors, in a buffer
 * O_DIRECT can write; *len set. */
static char *read_span(const char *path, size_t from, size_t to, size_t *len)
{
	size_t n = to - from, padded = (n + SECTOR - 1) / SECTOR * SECTOR, got = 0;
	char *buf = dg_xaligned(DISK_ALIGN, padded ? padded : SECTOR);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		dg_die_at(__FILE__, __LINE__, path, errno);
	while (got < n) {
		ssize_t r = pread(fd, buf + got, n - got, (off_t)(from + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* shorter than its size said: the rest stays zero */
		got += (size_t)r;
	}
	close(fd);
	*len = padded;
	return buf;
}

static size_t file_size(const char *path, size_t max, const char *what)
{
	struct stat st;

	if (stat(path, &st) < 0)
		dg_die_at(__FILE__, __LINE__, path, errno);
	if ((uint64_t)st.st_size > max) {
		fprintf(stderr, "dg-case: %s over %zu bytes: cut\n", what, max);
		return max;
	}
	return (size_t)st.st_size;
}

/* disk_sync: an O_DIRECT write is on the device when pwrite returns; a
 * buffered one (a results "disk" that is a file on a filesystem without
 * O_DIRECT) needs the sync. */
static void disk_sync(int fd, int direct)
{
	if (!direct)
		CHECK_SYS(fdatasync(fd));
}

static void write_header(int fd, int direct, size_t len, size_t dmesg)
{
	char *h = dg_xaligned(DISK_ALIGN, SECTOR);

	snprintf(h, SECTOR, "%s\nlen %zu\ndmesg %zu\n", MAGIC, len, dmesg);
	pwrite_all(fd, h, SECTOR, 0);
	disk_sync(fd, direct);
	free(h);
}

static int push(const struct args *a)
{
	char *h = dg_xaligned(DISK_ALIGN, SECTOR + DISK_ALIGN);
	size_t len = 0, dmesg = 0, size, n;
	int direct = 1, fd;
	ssize_t r;
	char *buf;

	/* O_DIRECT: no page cache to sync behind each write (two device
	 * flushes per case were a third of the runner's cost in a guest) */
	fd = open(a->push, O_RDWR | O_CLOEXEC | O_DIRECT);
	if (fd < 0 && errno == EINVAL) {
		direct = 0;
		fd = open(a->push, O_RDWR | O_CLOEXEC);
	}
	if (fd < 0)
		dg_die_at(__FILE__, __LINE__, a->push, errno);
	r = pread(fd, h, SECTOR, 0);
	h[r > 0 ? r : 0] = '\0';
	if (strncmp(h, MAGIC "\n", sizeof(MAGIC)) ||
	    sscanf(h + sizeof(MAGIC), "len %zu dmesg %zu", &len, &dmesg) < 1) {
		fprintf(stderr, "dg-case: %s is not a results disk (no %s header)\n", a->push,
			MAGIC);
		free(h);
		close(fd);
		return DG_BROKEN;
	}
	free(h);
	size = file_size(a->stream, STREAM_MAX, "results stream");
	if (size > len) {
		size_t from = len / SECTOR * SECTOR;

		buf = read_span(a->stream, from, size, &n);
		pwrite_all(fd, buf, n, (off_t)(from + SECTOR));
		free(buf);
		disk_sync(fd, direct);
		len = size;
	}
	if (a->dmesg) {
		size = file_size(a->dmesg, DMESG_MAX, "kernel log");
		buf = read_span(a->dmesg, 0, size, &n);
		pwrite_all(fd, buf, n, DMESG_AT);
		free(buf);
		disk_sync(fd, direct);
		dmesg = size;
	}
	/* only now the header names the new data: it is on the disk */
	write_header(fd, direct, len, dmesg);
	close(fd);
	return 0;
}

/* ---- preflight: what the kernel offers ------------------------------------ */

struct cap {
	const char *name, *option; /* the kernel option that gives it, or NULL */
	int have;                  /* 1 yes, 0 no */
};

static int probe_madvise(void)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int r;

	if (p == MAP_FAILED)
		return 0;
	r = madvise(p, (size_t)page, MADV_NORMAL) == 0 || errno != ENOSYS;
	munmap(p, (size_t)page);
	return r;
}

static int probe_fadvise(void)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return 0;
	/* returns the error number, never sets errno */
	r = posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL) != ENOSYS;
	close(fd);
	return r;
}

static int probe_pagemap(void)
{
	uint64_t ent;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return 0;
	r = pread(fd, &ent, sizeof(ent),
		  (off_t)((uintptr_t)&ent / (uintptr_t)sysconf(_SC_PAGESIZE) * sizeof(ent))) ==
	    (ssize_t)sizeof(ent);
	close(fd);
	return r;
}

static int probe_memfd(void)
{
	long fd = syscall(SYS_memfd_create, "dg-preflight", 0);

	if (fd >= 0)
		close((int)fd);
	return fd >= 0 || errno != ENOSYS;
}

static int probe_io_uring(void)
{
	/* io_uring_setup(0, NULL): EINVAL or EFAULT where it exists; EPERM
	 * where kernel.io_uring_disabled says no */
	long r = syscall(425 /* __NR_io_uring_setup, the same on every arch */, 0, NULL);

	return r >= 0 || (errno != ENOSYS && errno != EPERM);
}

static int can_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

/* The [bracketed] word of a sysfs choice file, or "n/a". */
static void sysfs_choice(const char *path, char *out, size_t n)
{
	char buf[256] = "", *a, *b;
	FILE *f = fopen(path, "re");

	snprintf(out, n, "n/a");
	if (!f)
		return;
	if (fgets(buf, sizeof(buf), f) && (a = strchr(buf, '[')) && (b = strchr(a, ']'))) {
		*b = '\0';
		snprintf(out, n, "%s", a + 1);
	}
	fclose(f);
}

static int preflight(void)
{
	struct cap caps[] = {
		{ "madvise", "CONFIG_ADVISE_SYSCALLS", probe_madvise() },
		{ "fadvise", "CONFIG_ADVISE_SYSCALLS", probe_fadvise() },
		{ "pagemap", "CONFIG_PROC_PAGE_MONITOR", probe_pagemap() },
		{ "memfd", "CONFIG_MEMFD_CREATE", probe_memfd() },
		{ "io_uring", "CONFIG_IO_URING (or kernel.io_uring_disabled)", probe_io_uring() },
		{ "sysrq", "CONFIG_MAGIC_SYSRQ", can_open("/proc/sysrq-trigger", O_WRONLY) },
		{ "kmsg", "CONFIG_PRINTK", can_open("/dev/kmsg", O_RDONLY) },
		{ "device_mapper", "CONFIG_BLK_DEV_DM (or module dm_mod)",
		  can_open("/dev/mapper/control", O_RDWR) },
		{ "drop_caches", "CONFIG_PROC_SYSCTL", access("/proc/sys/vm/drop_caches", W_OK) == 0 },
	};
	size_t i, n = sizeof(caps) / sizeof(caps[0]);
	char thp[32];
	int first = 1;

	sysfs_choice("/sys/kernel/mm/transparent_hugepage/shmem_enabled", thp, sizeof(thp));
	printf("{\"page_size\":%ld", sysconf(_SC_PAGESIZE));
	for (i = 0; i < n; i++)
		printf(",\"%s\":%s", caps[i].name, caps[i].have ? "true" : "false");
	printf(",\"shmem_thp\":\"%s\",\"missing\":[", thp);
	for (i = 0; i < n; i++) {
		if (caps[i].have)
			continue;
		printf("%s{\"what\":\"%s\",\"option\":\"%s\"}", first ? "" : ",", caps[i].name,
		       caps[i].option);
		first = 0;
	}
	printf("]}\n");
	return fflush(stdout) == 0 ? 0 : DG_BROKEN;
}

/* ---- options ------------------------------------------------------------- */

/* the options that take a string, by name */
static const struct {
	const char *name;
	size_t off;
} str_opts[] = {
	{ "--stream", offsetof(struct args, stream) },
	{ "--id", offsetof(struct args, id) },
	{ "--seq", offsetof(struct args, seq) },
	{ "--json", offsetof(struct args, json) },
	{ "--out", offsetof(struct args, out) },
	{ "--token", offsetof(struct args, token) },
	{ "--push", offsetof(struct args, push) },
	{ "--dmesg", offsetof(struct args, dmesg) },
};

static void parse(int argc, char **argv, struct args *a)
{
	size_t k, nopts = sizeof(str_opts) / sizeof(str_opts[0]);
	int i;

	memset(a, 0, sizeof(*a));
	for (i = 2; i < argc; i += 2) {
		const char *o = argv[i];

		if (!strcmp(o, "--")) {
			a->prog = argv + i + 1;
			break;
		}
		if (i + 1 >= argc)
			usage();
		if (!strcmp(o, "--timeout")) {
			char *end;
			unsigned long t = strtoul(argv[i + 1], &end, 10);

			if (*end || !t || t > 86400)
				usage();
			a->timeout = (unsigned)t;
			continue;
		}
		for (k = 0; k < nopts && strcmp(o, str_opts[k].name); k++)
			;
		if (k == nopts)
			usage();
		*(const char **)(void *)((char *)a + str_opts[k].off) = argv[i + 1];
	}
	if (!a->stream)
		usage();
}

int main(int argc, char **argv)
{
	struct args a;
	int rc;

	dg_prog = "dg-case";
	signal(SIGCHLD, SIG_DFL); /* an inherited SIG_IGN would reap for us */
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "preflight") && argc == 2)
		return preflight();
	parse(argc, argv, &a);
	if (!strcmp(argv[1], "run")) {
		if (!a.id || !a.seq || !a.timeout || !a.json || !a.out || !a.prog || !a.prog[0])
			usage();
		rc = run_case(&a);
		if (a.push && push(&a))
			return DG_BROKEN;
		return rc;
	}
	if (!strcmp(argv[1], "push") && a.push)
		return push(&a);
	usage();
	return DG_BROKEN;
}
