// SPDX-License-Identifier: GPL-2.0
/*
 * buffer.c - write buffers with exactly the page residency a pattern asks
 * for, and the truth about it measured right before the write.
 *
 * memfd and file buffers: the backing store is filled with write(), never
 * through the mapping; the mapping is fresh and zapped; each wanted page is
 * touched with an atomic add of 0 (a write access, which maps that one page
 * without fault-around and keeps its content). anon buffers: only wanted
 * pages are written (through the mapping: there is no other way); pages
 * never touched read as zeros, and the expected copy says so.
 *
 * Residency truth is the PTE, not the page cache: mincore() on a shared
 * mapping reports page-cache residency, which stays "resident" after
 * MADV_DONTNEED. So read the present bit (63) of /proc/self/pagemap (no
 * privilege needed for that bit), and fall back to mincore only when
 * pagemap cannot be read; b->source records which one was used.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diogap.h"

#define PM_PRESENT (1ULL << 63)

static int pagemap_fd = -2; /* -2 not tried yet, -1 unavailable */

static void write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		CHECK(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static int open_backing(struct dg_buf *b, const struct dg_opts *o)
{
	const char *dir;
	struct stat st;
	int fd;

	if (o->buf == DG_BUF_MEMFD)
		return CHECK_SYS(memfd_create("diogap-buf", MFD_CLOEXEC));
	/* DG_BUF_FILE: a new file, or a new temporary file inside a directory
	 * (the target directory for plain "file") */
	dir = o->buf_path ? o->buf_path : o->target;
	if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
		size_t n = strlen(dir) + 32;

		b->tmp_path = dg_xmalloc(n);
		snprintf(b->tmp_path, n, "%s/diogap-buf.XXXXXX", dir);
		fd = CHECK_SYS(mkostemp(b->tmp_path, O_CLOEXEC));
	} else {
		b->tmp_path = strdup(o->buf_path);
		CHECK(b->tmp_path);
		fd = CHECK_SYS(open(o->buf_path,
				    O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
	}
	return fd;
}

/* Touch one page so it is mapped: a write access (atomic add of 0) maps
 * just that page (no fault-around, which only serves read faults). */
static void touch_page(char *p)
{
	__atomic_fetch_add((unsigned char *)p, 0, __ATOMIC_RELAXED);
}

/* madvise(advice) on the mapping: ENOSYS (no CONFIG_ADVISE_SYSCALLS) is
 * noted in b->note and tolerated, EINVAL (advice unknown here) too. */
static void advise(struct dg_buf *b, size_t len, int advice, const char *what)
{
	if (!madvise(b->map, len, advice) || errno == EINVAL)
		return;
	if (errno == ENOSYS) {
		if (b->note) /* the first says it: no madvise at all */
			return;
		b->note = advice == MADV_NOHUGEPAGE ?
			"no madvise (ENOSYS, CONFIG_ADVISE_SYSCALLS=n): no THP control; residency is measured" :
			"no madvise (ENOSYS): a fresh mapping has no PTEs to zap anyway";
		return;
	}
	dg_die_at(__FILE__, __LINE__, what, errno);
}

static void prepare_anon(struct dg_buf *b, const char *data, size_t len,
			 const unsigned char *want)
{
	size_t i, maplen = b->npages * b->page;

	b->map = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(b->map != MAP_FAILED);
	/* no THP: a huge page would make 512 pages resident at once */
	advise(b, maplen, MADV_NOHUGEPAGE, "madvise(MADV_NOHUGEPAGE)");
	for (i = 0; i < b->npages; i++) {
		size_t off = i * b->page;
		size_t n = len - off < b->page ? len - off : b->page;

		if (want[i])
			memcpy(b->map + off, data + off, n);
		else
			memset(b->expect + off, 0, n);
	}
}

/* Wanted pages resident and nothing else? (A large folio maps whole.) */
static bool extra_resident(struct dg_buf *b)
{
	size_t i;

	dg_buf_measure(b);
	for (i = 0; i < b->npages; i++)
		if (b->seen[i] && !b->want[i])
			return true;
	return false;
}

void dg_buf_prepare(struct dg_buf *b, const struct dg_opts *o,
		    char *data, size_t len, const unsigned char *want)
{
	size_t i, maplen;

	memset(b, 0, sizeof(*b));
	b->fd = -1;
	b->page = (size_t)sysconf(_SC_PAGESIZE);
	b->len = len;
	b->npages = (len + b->page - 1) / b->page;
	maplen = b->npages * b->page;
	b->want = dg_xmalloc(b->npages);
	b->seen = dg_xmalloc(b->npages);
	memcpy(b->want, want, b->npages);
	b->expect = data;
	b->source = "none";

	if (o->buf == DG_BUF_ANON) {
		prepare_anon(b, data, len, want);
		return;
	}

	b->fd = open_backing(b, o);
	b->shared = true;
	/* one page per write(): a large write makes large folios where the
	 * filesystem has them, and touching one page of a large folio maps
	 * all of it (finish_fault maps the whole folio) */
	for (i = 0; i < len; i += b->page)
		write_all(b->fd, data + i, len - i < b->page ? len - i : b->page);
	CHECK_SYS(ftruncate(b->fd, (off_t)maplen));
	b->map = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
	CHECK(b->map != MAP_FAILED);
	advise(b, maplen, MADV_NOHUGEPAGE, "madvise(MADV_NOHUGEPAGE)");
	/* a fresh mapping has no PTEs; zap anyway, content stays in the store */
	advise(b, maplen, MADV_DONTNEED, "madvise(MADV_DONTNEED)");
	for (i = 0; i < b->npages; i++)
		if (want[i])
			touch_page(b->map + i * b->page);
	if (o->buf == DG_BUF_MEMFD && extra_resident(b)) {
		/* shmem hands out huge folios whatever we ask
		 * (shmem_enabled=force): an anon buffer can still have
		 * exactly the wanted pages resident */
		munmap(b->map, maplen);
		close(b->fd);
		b->fd = -1;
		b->shared = false;
		memset(b->seen, 0, b->npages);
		b->note = strcmp(b->source, "mincore") ?
			"memfd pages come in large folios here (shmem_enabled=force?), one touch maps many: using an anon buffer (untouched pages are zeros)" :
			"residency of a shared mapping cannot be measured without /proc/self/pagemap: using an anon buffer (untouched pages are zeros)";
		prepare_anon(b, data, len, want);
	}
}

static int pagemap_open(void)
{
	const char *hook = getenv("DIOGAP_TEST_NO_PAGEMAP");

	/* test hook: measure as a kernel without CONFIG_PROC_PAGE_MONITOR */
	if (hook && *hook)
		return -1;
	if (pagemap_fd == -2) {
		pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		if (pagemap_fd < 0)
			pagemap_fd = -1;
	}
	return pagemap_fd;
}

static int measure_pagemap(struct dg_buf *b, size_t first, size_t n)
{
	uint64_t ent[512];
	int fd = pagemap_open();
	size_t done = 0;

	if (fd < 0)
		return -1;
	while (done < n) {
		size_t k = n - done < 512 ? n - done : 512, j;
		uintptr_t va = (uintptr_t)(b->map + (first + done) * b->page);
		off_t pos = (off_t)(va / b->page * sizeof(uint64_t));
		ssize_t got = pread(fd, ent, k * sizeof(uint64_t), pos);

		if (got != (ssize_t)(k * sizeof(uint64_t)))
			return -1;
		for (j = 0; j < k; j++)
			b->seen[first + done + j] = !!(ent[j] & PM_PRESENT);
		done += k;
	}
	return 0;
}

size_t dg_buf_measure_range(struct dg_buf *b, size_t first, size_t n)
{
	size_t i, res = 0;

	if (first >= b->npages)
		return 0;
	if (n > b->npages - first)
		n = b->npages - first;
	if (measure_pagemap(b, first, n) == 0) {
		b->source = "pagemap";
	} else {
		unsigned char *vec = dg_xmalloc(n);

		CHECK_SYS(mincore(b->map + first * b->page, n * b->page, vec));
		for (i = 0; i < n; i++)
			b->seen[first + i] = vec[i] & 1;
		free(vec);
		b->source = "mincore";
	}
	for (i = 0; i < n; i++)
		res += b->seen[first + i];
	return res;
}

size_t dg_buf_measure(struct dg_buf *b)
{
	return dg_buf_measure_range(b, 0, b->npages);
}

size_t dg_buf_resident(const struct dg_buf *b)
{
	size_t i, res = 0;

	for (i = 0; i < b->npages; i++)
		res += b->seen[i];
	return res;
}

const void *dg_buf_expected(const struct dg_buf *b)
{
	return b->expect;
}

void dg_buf_release(struct dg_buf *b)
{
	if (b->map && b->map != MAP_FAILED)
		munmap(b->map, b->npages * b->page);
	if (b->fd >= 0)
		close(b->fd);
	if (b->tmp_path) {
		unlink(b->tmp_path);
		free(b->tmp_path);
	}
	free(b->want);
	free(b->seen);
	free(b->expect);
	memset(b, 0, sizeof(*b));
	b->fd = -1;
}
