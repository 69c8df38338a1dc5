// SPDX-License-Identifier: GPL-2.0
/* check.c - checked calls, allocation, outcomes. A setup error is BROKEN. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "diogap.h"

const char *dg_prog = "diogap";

/* FAIL is sticky: the records of earlier iterations are written; an error
 * after a FAIL must not turn the run's exit code into BROKEN. */
static bool fail_seen;

bool dg_fail_seen(void)
{
	return fail_seen;
}

void dg_note_fail(void)
{
	fail_seen = true;
}

/* Exit code of a setup error: BROKEN, or FAIL once a FAIL was reported. */
static int die_code(void)
{
	if (!fail_seen)
		return DG_BROKEN;
	fprintf(stderr, "%s: the run broke after an iteration FAILed: exit 1 (FAIL is kept)\n",
		dg_prog);
	return DG_FAIL;
}

const char *dg_verdict_name(int v)
{
	switch (v) {
	case DG_PASS:
		return "PASS";
	case DG_FAIL:
		return "FAIL";
	case DG_SKIP:
		return "SKIP";
	default:
		return "BROKEN";
	}
}

/* Rank: SKIP < PASS < BROKEN < FAIL; anything unknown counts as BROKEN. */
static int rank(int v)
{
	switch (v) {
	case DG_SKIP:
		return 0;
	case DG_PASS:
		return 1;
	case DG_FAIL:
		return 3;
	default:
		return 2;
	}
}

int dg_verdict_merge(int a, int b)
{
	int w = rank(a) >= rank(b) ? a : b;

	return rank(w) == 2 ? DG_BROKEN : w;
}

void dg_die_at(const char *file, int line, const char *what, int err)
{
	fflush(stdout);
	fprintf(stderr, "%s: %s:%d: %s: %s\n", dg_prog, file, line, what,
		err ? strerror(err) : "failed");
	exit(die_code());
}

void dg_usage_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", dg_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(die_code());
}

uint64_t dg_now_us(void)
{
	struct timespec ts;

	CHECK(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * Under TCG every page fault taken on first touch costs ~12 us: an 8 MiB
 * buffer 25 ms, more than its O_DIRECT write. MADV_POPULATE_WRITE (5.14+)
 * maps them all in one call for about half that. Kernels without it say
 * EINVAL and the pages fault on first touch as before. Never used on the
 * write buffers whose residency the reproducers control (buffer.c).
 */
#define PREFAULT_MIN (256u * 1024)

void dg_prefault(void *p, size_t n)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
	uintptr_t e = ((uintptr_t)p + n) & ~(page - 1);

	if (e > a)
		(void)madvise((void *)a, e - a, MADV_POPULATE_WRITE);
}

void *dg_xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (!p)
		dg_die_at(__FILE__, __LINE__, "calloc", ENOMEM);
	if (n >= PREFAULT_MIN)
		dg_prefault(p, n);
	return p;
}

void *dg_xbuffer(size_t align, size_t n)
{
	void *p = NULL;
	int err = posix_memalign(&p, align, n ? n : 1);

	if (err)
		dg_die_at(__FILE__, __LINE__, "posix_memalign", err);
	dg_prefault(p, n);
	return p;
}

void *dg_xaligned(size_t align, size_t n)
{
	void *p = dg_xbuffer(align, n);

	memset(p, 0, n);
	return p;
}
