/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dio-fsync-after-error - a COW O_DIRECT write that fails, a fast fsync, a power cut
 *
 * Fixes, fstests, parameters: the dg_repro table at the end of this file
 * (--describe, --describe --json).
 *
 * FILES files of --size bytes each get the old data (O_DIRECT writes,
 * fsync, syncfs: committed, promised durable). Then the disk's data chunks
 * fail every write: the scratch disk's dm-flakey table is replaced by one
 * that sends the sectors of the data chunks' stripes (chunk tree, chunks.c)
 * to dm's `error` target and everything else (superblocks, metadata, the
 * log tree, every flush) through as before. Each file gets a COW O_DIRECT
 * write of new data over the whole old data, which fails with EIO, and at
 * once an fsync (--engine fsync) or fdatasync (--engine fdatasync) on the
 * same fd. The old table is loaded again, then the power cut
 * (repro/lib/cut.c: drop writes, unmount, let writes through, mount: log
 * replay). Every file must read back its old data (or, where a write did
 * land, the new): nothing else, and no EIO.
 * On a kernel without f13e01b89daf the failed write's ordered extent is
 * completed in a work queue, and until then its extent map, which points
 * at the new, never-written location, is in the inode's list of modified
 * extents: a fast fsync that runs first logs a file extent item pointing
 * there. After the cut, log replay points the file at data that was never
 * written: zeros or whatever that disk space held (nodatasum), or a
 * checksum failure, EIO (datasum). FAIL lost-after-cut, with the ranges of
 * the first file (JSON "gaps") and every file's outcome ("files"). A race
 * with the completion worker: FILES tries per cut.
 * SKIP when the scratch is not on dm-flakey ("no dm-flakey under the
 * scratch: ..."), has more than one device, mixes data and metadata in its
 * chunks, or when no write failed (precondition). Needs root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diogap.h"
#include "dm.h"

#define FILES 16       /* files (fsync attempts) per power cut */
#define MAX_TARGETS 64 /* dm targets of the failing table */

struct file_state {
	int write_errno;        /* 0: the write returned */
	int64_t written;        /* what the write returned (-1: failed) */
	int sync_errno;         /* the fsync's errno, 0 when it returned 0 */
	int read_errno;         /* after the cut */
	size_t bad;             /* sectors neither old nor new after the cut */
	uint64_t first_bad;
	enum dg_class first_cls;
};

static void file_path(const struct dg_opts *o, unsigned k, char *out, size_t n)
{
	snprintf(out, n, "%s.%u", o->file, k);
}

static int cmp_seg(const void *a, const void *b)
{
	const struct dg_dm_target *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * The failing table: the data chunks' stripes (sectors of the flakey
 * device) to `error_writes`, the rest through, both over the device under
 * the flakey target (base: its "MAJ:MIN OFFSET ..." table line). 0, or a
 * SKIP reason in why.
 */
static int failing_table(int fsfd, const struct dg_dm_dev *d, struct dg_dm_target *t,
			 size_t *nt, char (*params)[96], char *why, size_t wn)
{
	struct btrfs_ioctl_fs_info_args fi;
	struct dg_chunk *ch;
	size_t nch, i, ns = 0, n = 0;
	struct dg_dm_target seg[MAX_TARGETS];
	char dev[64];
	uint64_t base, at = 0;
	int e;

	memset(&fi, 0, sizeof(fi));
	if (ioctl(fsfd, BTRFS_IOC_FS_INFO, &fi) < 0)
		return snprintf(why, wn, "BTRFS_IOC_FS_INFO: %s", strerror(errno)), -1;
	if (fi.num_devices != 1)
		return snprintf(why, wn, "%llu devices: the failing table covers one",
				(unsigned long long)fi.num_devices), -1;
	if (sscanf(d->params, "%63s %" SCNu64, dev, &base) != 2)
		return snprintf(why, wn, "flakey table '%.200s' not understood", d->params), -1;
	e = dg_chunks_load(fsfd, BTRFS_BLOCK_GROUP_DATA, &ch, &nch);
	if (e)
		return snprintf(why, wn, "chunk tree (BTRFS_IOC_TREE_SEARCH_V2): %s", strerror(-e)), -1;
	for (i = 0; i < nch; i++) {
		unsigned s;

		if (ch[i].type & BTRFS_BLOCK_GROUP_METADATA) {
			free(ch);
			return snprintf(why, wn, "mixed block groups: data and metadata share chunks, so data writes cannot fail alone"), -1;
		}
		for (s = 0; s < ch[i].nstripes && ns < MAX_TARGETS / 2 - 1; s++) {
			seg[ns].start = ch[i].st[s].offset / 512;
			seg[ns].length = ch[i].length / 512;
			ns++;
		}
	}
	free(ch);
	if (!ns)
		return snprintf(why, wn, "no data chunk in the chunk tree"), -1;
	qsort(seg, ns, sizeof(seg[0]), cmp_seg);
	for (i = 0; i < ns; i++) {
		if (seg[i].start < at || seg[i].start + seg[i].length > d->sectors)
			return snprintf(why, wn, "data stripes overlap or pass the device's end"), -1;
		if (seg[i].start > at) {
			snprintf(params[n], 96, "%s %" PRIu64 " 180 0", dev, base + at);
			t[n] = (struct dg_dm_target){ at, seg[i].start - at, "flakey", params[n] };
			n++;
		}
		/* dm's error target: every bio fails, and it is sent no flushes
		 * (a flakey target with error_writes fails those too, and a
		 * failed flush makes btrfs abort: "errors while submitting
		 * device barriers") */
		params[n][0] = 0;
		t[n] = (struct dg_dm_target){ seg[i].start, seg[i].length, "error", params[n] };
		n++;
		at = seg[i].start + seg[i].length;
	}
	if (at < d->sectors) {
		snprintf(params[n], 96, "%s %" PRIu64 " 180 0", dev, base + at);
		t[n] = (struct dg_dm_target){ at, d->sectors - at, "flakey", params[n] };
		n++;
	}
	*nt = n;
	return 0;
}

static void fd_sync_target(const struct dg_opts *o)
{
	int fd = CHECK_SYS(open(o->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC));

	CHECK_SYS(syncfs(fd));
	close(fd);
}

/* The old data into every file, committed. */
static void write_old(const struct dg_opts *o, const char *old)
{
	char path[4200];
	unsigned k;

	for (k = 0; k < FILES; k++) {
		int fd;

		file_path(o, k, path, sizeof(path));
		fd = CHECK_SYS(open(path, O_CREAT | O_TRUNC | O_RDWR | O_DIRECT | O_CLOEXEC, 0600));
		if (pwrite(fd, old, (size_t)o->size, 0) != (ssize_t)o->size)
			dg_die_at(__FILE__, __LINE__, "pwrite of the old data", errno ? errno : EIO);
		CHECK_SYS(fsync(fd));
		close(fd);
	}
	fd_sync_target(o);
}

/* The failing writes, each followed at once by the sync. */
static void write_new(const struct dg_opts *o, const char *neu, struct file_state *fs)
{
	bool data_only = o->engine && !strcmp(o->engine, "fdatasync");
	char path[4200];
	unsigned k;

	for (k = 0; k < FILES; k++) {
		ssize_t w;
		int fd;

		file_path(o, k, path, sizeof(path));
		/* nothing here may exit: the passing table comes back after */
		fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
		if (fd < 0) {
			fs[k].written = -1;
			fs[k].write_errno = errno;
			continue;
		}
		w = pwrite(fd, neu, (size_t)o->size, 0);
		fs[k].written = w;
		fs[k].write_errno = w < 0 ? errno : 0;
		fs[k].sync_errno = (data_only ? fdatasync(fd) : fsync(fd)) ? errno : 0;
		close(fd);
	}
}

/* After the cut: every sector of file k old or new (new promised when the
 * write and the sync both succeeded whole). */
static void check_file(const struct dg_opts *o, unsigned k, const char *old, const char *neu,
		       char *got, uint64_t run_id, unsigned it, struct file_state *f,
		       struct dg_result *r)
{
	bool promised_new = f->written == (int64_t)o->size && !f->sync_errno;
	char path[4200];
	ssize_t rd;
	uint64_t s;
	int fd;

	file_path(o, k, path, sizeof(path));
	fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		f->read_errno = errno;
		return;
	}
	rd = dg_read_back(fd, got, (size_t)o->size, 0);
	close(fd);
	if (rd < 0) {
		f->read_errno = (int)-rd;
		return;
	}
	for (s = 0; s < o->size; s += DG_SECTOR) {
		enum dg_class c_old = dg_classify(got + s, old + s, s, run_id, 2 * it);
		enum dg_class c_new = dg_classify(got + s, neu + s, s, run_id, 2 * it + 1);

		if (c_new == DG_OK || (c_old == DG_OK && !promised_new))
			continue;
		if (!f->bad++) {
			f->first_bad = s;
			f->first_cls = promised_new ? c_new : c_old;
		}
	}
	(void)r;
}

static void first_file_gaps(const struct dg_opts *o, const char *old, const char *got,
			    uint64_t run_id, unsigned it, struct dg_result *r)
{
	dg_verify(got, old, (size_t)o->size, 0, run_id, 2 * it, &r->gaps);
}

static size_t files_json(char *out, size_t n, const struct file_state *fs)
{
	size_t at = (size_t)snprintf(out, n, "\"files\":[");
	unsigned k;

	for (k = 0; k < FILES && at < n - 160; k++)
		at += (size_t)snprintf(out + at, n - at,
				       "%s{\"write\":%" PRId64 ",\"write_errno\":%d,\"sync_errno\":%d,"
				       "\"read_errno\":%d,\"bad_sectors\":%zu}",
				       k ? "," : "", fs[k].written, fs[k].write_errno,
				       fs[k].sync_errno, fs[k].read_errno, fs[k].bad);
	at += (size_t)snprintf(out + at, n - at, "]");
	return at;
}

static int run(const struct dg_opts *o, unsigned it, uint64_t run_id, struct dg_result *r,
	       struct dg_buf *bufp)
{
	static char extra[8192];
	struct file_state fs[FILES];
	struct dg_dm_target t[MAX_TARGETS];
	char params[MAX_TARGETS][96], err[512], path[4200];
	size_t page = (size_t)sysconf(_SC_PAGESIZE), nt = 0;
	unsigned k, failed = 0, lost = 0, eio = 0, first = FILES;
	uint64_t cut_us = 0, t0;
	struct dg_mount m;
	struct dg_dm_dev d;
	char *old, *neu, *got;
	int fsfd, v = DG_PASS;

	(void)bufp; /* resident data: no fault pattern here */
	memset(fs, 0, sizeof(fs));
	if (dg_mount_of(o->target, &m, err, sizeof(err)))
		return dg_set_diag(r, DG_BROKEN, NULL, "%s", err);
	if (dg_cut_ready(&m, &d, err, sizeof(err)))
		return dg_set_diag(r, DG_SKIP, NULL, "%s", err);
	fsfd = CHECK_SYS(open(o->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (failing_table(fsfd, &d, t, &nt, params, err, sizeof(err))) {
		close(fsfd);
		return dg_set_diag(r, DG_SKIP, NULL, "precondition not met: %s", err);
	}
	close(fsfd);
	old = dg_xbuffer(page, (size_t)o->size);
	neu = dg_xbuffer(page, (size_t)o->size);
	got = dg_xbuffer(page, (size_t)o->size);
	dg_pattern_fill(old, (size_t)o->size, 0, run_id, 2 * it);
	dg_pattern_fill(neu, (size_t)o->size, 0, run_id, 2 * it + 1);
	write_old(o, old);
	/* data writes fail from here on; the old table comes back on every path */
	if (dg_dm_switch_table(d.name, t, nt, err, sizeof(err))) {
		v = dg_set_diag(r, DG_BROKEN, NULL, "load the failing table: %s", err);
		goto out;
	}
	t0 = dg_now_us();
	write_new(o, neu, fs);
	r->write_us = dg_now_us() - t0;
	if (dg_dm_switch(d.name, d.sectors, d.target, d.params, err, sizeof(err))) {
		v = dg_set_diag(r, DG_BROKEN, NULL, "load the passing table again: %s", err);
		goto out;
	}
	for (k = 0; k < FILES; k++)
		failed += fs[k].write_errno == EIO || fs[k].sync_errno == EIO;
	if (dg_cut(&m, &d, &cut_us, err, sizeof(err))) {
		v = dg_cut_failed(r, err);
		goto out;
	}
	printf("# %s: %u of %u writes failed (EIO) over %zu table targets, cut and mount again %.1f ms\n",
	       r->name, failed, FILES, nt, (double)cut_us / 1e3);
	t0 = dg_now_us();
	for (k = 0; k < FILES; k++) {
		check_file(o, k, old, neu, got, run_id, it, &fs[k], r);
		if (fs[k].read_errno == EIO)
			eio++;
		if (fs[k].bad || fs[k].read_errno) {
			lost++;
			if (first == FILES) {
				first = k;
				if (fs[k].bad)
					first_file_gaps(o, old, got, run_id, it, r);
			}
		}
	}
	r->verify_us = dg_now_us() - t0;
	r->size_expected = r->size_seen = o->size;
	if (first < FILES && fs[first].read_errno && fs[first].read_errno != EIO)
		v = dg_set_diag(r, DG_BROKEN, NULL, "read file %u after the cut: %s", first,
			     strerror(fs[first].read_errno));
	else if (lost)
		v = dg_set_diag(r, DG_FAIL, "lost-after-cut",
			     "%u of %u files lost their synced data after the cut (%u read EIO), each after a failed O_DIRECT write and %s; file %u: %s",
			     lost, FILES, eio, o->engine ? o->engine : "fsync", first,
			     fs[first].read_errno ? "read EIO (checksum failure: the log points at never-written data)" :
			     dg_class_name(fs[first].first_cls));
	else if (!failed)
		v = dg_set_diag(r, DG_SKIP, NULL,
			     "precondition not met: no write failed (the data went outside the data chunks made to fail writes)");
	else
		v = r->verdict = DG_PASS;
out:
	snprintf(extra, sizeof(extra), "\"writes_failed\":%u,\"targets\":%zu,\"cut_us\":%" PRIu64 ",\"device\":\"%s\",",
		 failed, nt, cut_us, d.name);
	files_json(extra + strlen(extra), sizeof(extra) - strlen(extra), fs);
	r->extra_json = extra;
	for (k = 0; k < FILES; k++) {
		file_path(o, k, path, sizeof(path));
		unlink(path);
	}
	free(old);
	free(neu);
	free(got);
	return v;
}

int main(int argc, char **argv)
{
	static const struct dg_repro rp = {
		.name = "dio-fsync-after-error",
		.summary = "a COW O_DIRECT write that fails (dm error target on the data chunks), fsync, then a power cut",
		.fixes = {
			{ "f13e01b89daf",
			  "btrfs: ensure fast fsync waits for ordered extents after a write failure" },
		},
		.introduced_by = { NULL, NULL },
		.fstests = NULL,
		.params = "size engine",
		.engines = "fsync|fdatasync",
		.needs = "dm-flakey",
		.default_pages = 16,
		.run = run,
	};

	return dg_main(&rp, argc, argv);
}
