// SPDX-License-Identifier: GPL-2.0
/*
 * scribble.c - unstable buffers: a thread that keeps rewriting a buffer
 * while the main thread does O_DIRECT I/O from or into it (the "unstable
 * page" links of the fix chain), and dropping a file's page cache so a
 * read-back comes from the disk.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diogap.h"

static void *scribble_main(void *arg)
{
	struct dg_scribble *s = arg;
	volatile unsigned char *p = s->buf;
	unsigned char v = 0;
	uint64_t passes = 0;
	size_t i;

	while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
		if (s->mode == DG_SCRIBBLE_FLIP) {
			for (i = s->byte; i < s->len; i += s->stride)
				p[i] ^= 0xff;
		} else {
			v = (unsigned char)~v;
			/* not memset(): the compiler may not drop or merge
			 * stores to volatile memory */
			for (i = 0; i < s->len; i += sizeof(uint64_t))
				*(volatile uint64_t *)(p + i) = v ? ~0ULL : 0;
		}
		passes++;
	}
	s->passes = passes;
	return NULL;
}

void dg_scribble_start(struct dg_scribble *s)
{
	int err;

	if (s->mode == DG_SCRIBBLE_FLIP)
		CHECK(s->stride && s->byte < s->stride);
	else
		CHECK(s->len % sizeof(uint64_t) == 0);
	s->passes = 0;
	__atomic_store_n(&s->stop, 0, __ATOMIC_RELAXED);
	err = pthread_create(&s->tid, NULL, scribble_main, s);
	if (err)
		dg_die_at(__FILE__, __LINE__, "pthread_create", err);
	s->running = true;
}

uint64_t dg_scribble_stop(struct dg_scribble *s)
{
	int err;

	if (!s->running)
		return s->passes;
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
	err = pthread_join(s->tid, NULL);
	if (err)
		dg_die_at(__FILE__, __LINE__, "pthread_join", err);
	s->running = false;
	return s->passes;
}

long dg_cached_pages(int fd, uint64_t off, uint64_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t start = off / page * page;
	size_t n = (size_t)(off + len - start), np = (n + page - 1) / page, i;
	unsigned char *vec;
	long cached = 0;
	void *m;

	if (!len)
		return 0;
	m = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, (off_t)start);
	if (m == MAP_FAILED)
		return -1;
	vec = dg_xmalloc(np);
	if (mincore(m, n, vec))
		cached = -1;
	for (i = 0; cached >= 0 && i < np; i++)
		cached += vec[i] & 1;
	munmap(m, n);
	free(vec);
	return cached;
}

const char *dg_drop_cache(int fd, uint64_t off, uint64_t len)
{
	int err;
	FILE *f;

	CHECK_SYS(fsync(fd));
	err = posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED);
	if (err && err != ENOSYS)
		dg_die_at(__FILE__, __LINE__, "posix_fadvise(DONTNEED)", err);
	if (!err && dg_cached_pages(fd, off, len) == 0)
		return "fadvise";
	/* no fadvise (ENOSYS), or pages stayed: the whole page cache */
	sync();
	f = fopen("/proc/sys/vm/drop_caches", "we");
	if (!f)
		dg_die_at(__FILE__, __LINE__, "open /proc/sys/vm/drop_caches", errno);
	if (fputs("1\n", f) == EOF || fclose(f) == EOF)
		dg_die_at(__FILE__, __LINE__, "write /proc/sys/vm/drop_caches", errno);
	return "drop_caches";
}

#define INODE_NODATASUM (1ULL << 0) /* BTRFS_INODE_NODATASUM, not in the UAPI */

int dg_inode_datasum(int fd)
{
	struct {
		struct btrfs_ioctl_search_args_v2 a;
		char buf[4096];
	} q;
	struct btrfs_ioctl_search_header sh;
	struct btrfs_inode_item ii;
	struct stat st;

	CHECK_SYS(fstat(fd, &st));
	memset(&q, 0, sizeof(q));
	q.a.key.tree_id = 0; /* the subvolume of fd */
	q.a.key.min_objectid = q.a.key.max_objectid = (uint64_t)st.st_ino;
	q.a.key.min_type = q.a.key.max_type = BTRFS_INODE_ITEM_KEY;
	q.a.key.max_offset = UINT64_MAX;
	q.a.key.max_transid = UINT64_MAX;
	q.a.key.nr_items = 1;
	q.a.buf_size = sizeof(q.buf);
	if (ioctl(fd, BTRFS_IOC_TREE_SEARCH_V2, &q.a) < 0 || q.a.key.nr_items != 1)
		return -1;
	memcpy(&sh, q.buf, sizeof(sh));
	if (sh.len < sizeof(ii))
		return -1;
	memcpy(&ii, q.buf + sizeof(sh), sizeof(ii));
	return le64toh(ii.flags) & INODE_NODATASUM ? 0 : 1;
}

const char *dg_file_datasum(const struct dg_opts *o, int fd, int *csum)
{
	*csum = dg_inode_datasum(fd);
	return *csum < 0 ? o->datasum : *csum ? "yes" : "no";
}
