// SPDX-License-Identifier: GPL-2.0
/*
 * direct.c - did an O_DIRECT write really go the direct path?
 *
 * Since 968f19c5b1b7 (v6.15, 6.12.77) btrfs turns O_DIRECT writes to files
 * with data checksums into buffered writes, and a filesystem may fall back
 * to buffered I/O for other reasons. The bugs the reproducers look for live
 * on the direct path, so a write that went buffered proves nothing. The
 * measure: nr_dirtied and nr_written of /proc/vmstat (pages ever dirtied
 * in, and written back from, any page cache, system wide) before and after
 * an iteration's writes. A direct write dirties no page cache of the file;
 * btrfs's buffered fallback dirties every page it writes and writes them
 * back before the call returns (measured on 6.18: 1M datasum: +562
 * dirtied, +256 written; nodatasum: +274, +0; on a loop device without
 * direct I/O, which dirties its backing file's page cache too). So a write
 * went buffered when both grew by at least half the pages written, beyond
 * what the device stack dirties anyway (dirtied_base).
 *
 * Noise: other writers on the machine, btrfs's metadata (COWed tree nodes)
 * and writeback of other files only add to the deltas, so noise can make a
 * direct write look buffered (a SKIP), never a buffered write look direct
 * (a PASS that did not test the path). The counters have per-CPU parts
 * that /proc/vmstat does not add up; writing /proc/sys/vm/stat_refresh
 * (root) folds them first. Where that cannot be done on an SMP machine the
 * figures are off by up to the per-CPU thresholds in either direction, and
 * the answer is null (could not tell).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/btrfs.h>
#include <linux/fs.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "diogap.h"

/* Fold the per-CPU vm counters into the global ones: true when that was
 * done or there is nothing to fold (one CPU). */
static bool stat_refresh(void)
{
	int fd = open("/proc/sys/vm/stat_refresh", O_WRONLY | O_CLOEXEC);
	bool ok = false;

	if (fd >= 0) {
		ok = write(fd, "1", 1) == 1;
		close(fd);
	}
	return ok || sysconf(_SC_NPROCESSORS_CONF) == 1;
}

static int64_t vm_field(const char *buf, const char *key)
{
	const char *p = strstr(buf, key);
	int64_t v = -1;

	if (p && sscanf(p + strlen(key), "%" SCNd64, &v) != 1)
		v = -1;
	return v;
}

int dg_vm_counts(int64_t *dirtied, int64_t *written)
{
	char buf[16384];
	ssize_t n;
	bool exact = stat_refresh();
	int fd = open("/proc/vmstat", O_RDONLY | O_CLOEXEC);

	*dirtied = *written = -1;
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	*dirtied = vm_field(buf, "\nnr_dirtied ");
	*written = vm_field(buf, "\nnr_written ");
	if (*dirtied < 0 || *written < 0)
		return -1;
	return exact ? 1 : 0;
}

/* Is the block device named by /sys/block/NAME a loop device writing
 * through its backing file's page cache? */
static bool loop_buffered(const char *name)
{
	char path[160], v = '1';
	int fd;

	if (strncmp(name, "loop", 4))
		return false;
	snprintf(path, sizeof(path), "/sys/block/%.64s/loop/dio", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (read(fd, &v, 1) != 1)
		v = '1';
	close(fd);
	return v == '0';
}

unsigned dg_dirty_per_page(int fd)
{
	struct btrfs_ioctl_fs_info_args fi;
	struct stat st;
	char path[96], link[256];
	uint64_t id;
	ssize_t n;

	memset(&fi, 0, sizeof(fi));
	if (ioctl(fd, BTRFS_IOC_FS_INFO, &fi) == 0) {
		for (id = 0; id <= fi.max_id; id++) {
			struct btrfs_ioctl_dev_info_args di;
			const char *base;

			memset(&di, 0, sizeof(di));
			di.devid = id;
			if (ioctl(fd, BTRFS_IOC_DEV_INFO, &di))
				continue;
			base = strrchr((const char *)di.path, '/');
			if (loop_buffered(base ? base + 1 : (const char *)di.path))
				return 1;
		}
		return 0;
	}
	if (fstat(fd, &st))
		return 0;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major(st.st_dev),
		 minor(st.st_dev));
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return 0;
	link[n] = '\0';
	return loop_buffered(strrchr(link, '/') ? strrchr(link, '/') + 1 : link);
}

void dg_direct_begin(struct dg_result *r)
{
	if (r->dirtied_started)
		return;
	r->dirtied_started = true;
	r->vm_exact = dg_vm_counts(&r->dirtied_start, &r->written_start) == 1;
}

enum dg_tristate dg_direct_judge(int64_t dirtied, int64_t wback, int64_t pages,
				 int64_t base)
{
	if (dirtied < 0 || wback < 0 || pages <= 0)
		return DG_NULL;
	/* buffered: at least half the pages written were dirtied on top of
	 * what the device stack dirties anyway, and written back */
	return 2 * (dirtied - base) >= pages && 2 * wback >= pages ? DG_NO : DG_YES;
}

void dg_direct_end(struct dg_result *r, uint64_t bytes, size_t page,
		   unsigned per_page)
{
	int64_t d, w;
	int exact;

	if (!r->dirtied_started || r->dirtied_set)
		return;
	exact = dg_vm_counts(&d, &w);
	r->dirtied_written = (int64_t)((bytes + page - 1) / page);
	r->dirtied_base = (int64_t)per_page * r->dirtied_written;
	if (r->dirtied_start < 0 || exact < 0) {
		r->direct = DG_NULL;
		return;
	}
	r->dirtied_set = true;
	r->dirtied_pages = d - r->dirtied_start;
	r->writeback_pages = w - r->written_start;
	r->direct = exact == 1 && r->vm_exact ?
		dg_direct_judge(r->dirtied_pages, r->writeback_pages,
				r->dirtied_written, r->dirtied_base) : DG_NULL;
}

/* write n bytes of buf at 0 to a new file in dir (flags: open(2)'s extra
 * flags), copying like_fd's inode flags first when like_fd >= 0; unlinked
 * at once. 0, or -1 (nothing measured). */
static int write_new_file(const char *dir, const char *what, int flags, int like_fd,
			  const char *buf, size_t n, bool sync)
{
	char path[PATH_MAX];
	int fd, attr = 0;
	size_t done = 0;

	snprintf(path, sizeof(path), "%s/.diogap-%s.%d", dir, what, (int)getpid());
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | flags, 0600);
	if (fd < 0)
		return -1;
	unlink(path);
	if (like_fd >= 0 && ioctl(like_fd, FS_IOC_GETFLAGS, &attr) == 0 && attr)
		(void)ioctl(fd, FS_IOC_SETFLAGS, &attr); /* on an empty file */
	while (done < n) {
		ssize_t w = pwrite(fd, buf + done, n - done, (off_t)done);

		if (w <= 0)
			break;
		done += (size_t)w;
	}
	if (sync && done == n && fdatasync(fd))
		done = 0;
	close(fd);
	return done == n ? 0 : -1;
}

void dg_direct_probe(const char *dir, int like_fd, size_t page, unsigned per_page,
		     struct dg_result *r)
{
	struct dg_result p = { 0 };
	size_t n = DG_PROBE_PAGES * page;
	char *buf;

	if (r->direct != DG_NO || r->dirtied_written >= DG_PROBE_PAGES || !dir)
		return;
	buf = aligned_alloc(page, n);
	if (!buf)
		return;
	memset(buf, 0x5a, n);
	dg_direct_begin(&p);
	if (write_new_file(dir, "direct-probe", O_DIRECT, like_fd, buf, n, false) == 0) {
		dg_direct_end(&p, n, page, per_page);
		if (p.dirtied_set) {
			r->probe_set = true;
			r->probe_pages = p.dirtied_written;
			r->probe_dirtied = p.dirtied_pages;
			r->probe_written = p.writeback_pages;
			if (p.direct != DG_NULL)
				r->direct = p.direct;
		}
	}
	free(buf);
}

void dg_test_noise(const char *dir)
{
	const char *v = getenv("DIOGAP_TEST_NOISE");
	long pages = v ? strtol(v, NULL, 10) : 0;
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n;
	char *buf;

	if (pages <= 0 || !dir)
		return;
	n = (size_t)pages * page;
	buf = malloc(n);
	if (!buf)
		return;
	memset(buf, 0xa5, n);
	printf("# test hook: DIOGAP_TEST_NOISE=%ld: %ld pages of buffered writeback in %s while the write is measured\n",
	       pages, pages, dir);
	(void)write_new_file(dir, "noise", 0, -1, buf, n, true);
	free(buf);
}
