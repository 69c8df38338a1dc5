// SPDX-License-Identifier: GPL-2.0
/*
 * dio-unstable-read - O_DIRECT reads into a buffer another thread keeps rewriting
 *
 * Fixes, fstests, parameters, may-hang: the dg_repro table at the end of
 * this file (--describe, --describe --json).
 *
 * btrfs verifies the data checksum of an O_DIRECT read in the user's
 * pages, after the device wrote them. When another thread rewrites those
 * pages meanwhile, the verification sees the other thread's bytes: a false
 * "csum failed ... mirror N", every mirror tried, and the read fails with
 * EIO although the disk is intact.
 *
 * Each iteration writes the pattern to [offset, offset+size) (buffered),
 * fsyncs it and drops it from the page cache, then reads it with O_DIRECT,
 * --chunk bytes per call (default: size) cycling over the range, into one
 * buffer a second thread keeps filling with 0x00 and 0xff (in a loop), up
 * to 400 reads or 5 seconds. Any EIO is FAIL eio-read (the extra members
 * give reads, EIO count, the first EIO's read number and rate). Then, the
 * thread stopped, the whole range is read again with O_DIRECT and checked
 * against the pattern: intact data says the checksum failures were false
 * (said in the diag); an EIO or bad data there is a real error (also FAIL).
 * What the reads return while the buffer changes is not judged. "direct"
 * is false when the reads left pages of the range in the page cache (a
 * buffered fallback: the proposed fix's way). Precondition: the file has
 * data checksums (inode item, else the mount): with nodatasum there is
 * nothing to verify, SKIP. Exit 0 PASS, 1 FAIL, 2 BROKEN, 4 SKIP.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diogap.h"

#define READ_LIMIT 400
#define TIME_BUDGET_US (5 * 1000000ULL)

static void write_file(const struct dg_opts *o, const char *data, size_t len)
{
	int fd = CHECK_SYS(open(o->file, O_WRONLY | O_CLOEXEC));
	size_t done = 0;

	CHECK_SYS(ftruncate(fd, 0));
	while (done < len) {
		ssize_t w = pwrite(fd, data + done, len - done, (off_t)(o->offset + done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			dg_die_at(__FILE__, __LINE__, "pwrite (buffered, the file's content)",
				  w < 0 ? errno : EIO);
		done += (size_t)w;
	}
	CHECK_SYS(fsync(fd));
	close(fd);
}

static int run(const struct dg_opts *o, unsigned iteration, uint64_t run_id,
	       struct dg_result *r, struct dg_buf *b)
{
	static struct dg_sb extra;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t align = o->mem_align > page ? o->mem_align : page;
	size_t len = (size_t)o->size;
	uint64_t chunk = o->chunk ? o->chunk : o->size, t0, tstart, first_eio_off = 0;
	unsigned reads = 0, eio = 0, shorts = 0, first_eio = 0;
	struct dg_scribble sc = { 0 };
	const char *drop, *datasum, *symptom = NULL;
	char *want, *buf, *got;
	long cached;
	ssize_t n;
	size_t bad = 0;
	int fd, csum, reread_err = 0;
	struct stat st;

	(void)b;
	free(extra.s);
	memset(&extra, 0, sizeof(extra));
	r->size_expected = o->offset + o->size;
	r->chunk_used = chunk;
	fd = CHECK_SYS(open(o->file, O_RDWR | O_DIRECT | O_CLOEXEC));
	datasum = dg_file_datasum(o, fd, &csum);
	if (strcmp(datasum, "yes")) {
		dg_precondition_skip(r, "the file has no data checksums (%s): nothing to verify a read against",
				     csum < 0 ? "mount options" : "inode NODATASUM");
		dg_sb_printf(&extra, "\"datasum_inode\":\"%s\"", datasum);
		r->extra_json = extra.s;
		close(fd);
		return r->verdict;
	}

	want = dg_xmalloc(len);
	dg_pattern_fill(want, len, o->offset, run_id, (uint32_t)iteration);
	t0 = dg_now_us();
	write_file(o, want, len);
	r->write_us = dg_now_us() - t0;
	drop = dg_drop_cache(fd, o->offset, o->size);

	buf = dg_xbuffer(align, (size_t)chunk);
	sc.buf = buf;
	sc.len = (size_t)chunk;
	sc.mode = DG_SCRIBBLE_MEMSET;
	dg_scribble_start(&sc);
	tstart = dg_now_us();
	while (reads < READ_LIMIT && dg_now_us() - tstart < TIME_BUDGET_US) {
		uint64_t c = (uint64_t)reads * chunk % o->size;
		size_t m = (size_t)(o->size - c < chunk ? o->size - c : chunk);

		n = pread(fd, buf, m, (off_t)(o->offset + c));
		if (n < 0 && errno == EINTR)
			continue;
		reads++;
		if (n < 0 && errno == EIO) {
			if (!eio++) {
				first_eio = reads;
				first_eio_off = o->offset + c;
			}
			continue;
		}
		if (n < 0) {
			int err = errno;

			dg_scribble_stop(&sc);
			snprintf(r->diag_buf, sizeof(r->diag_buf),
				 "O_DIRECT read at offset %" PRIu64 " failed: %s", o->offset + c,
				 strerror(err));
			r->diag = r->diag_buf;
			free(want), free(buf);
			close(fd);
			return r->verdict = DG_BROKEN;
		}
		if ((size_t)n < m)
			shorts++;
	}
	r->verify_us = dg_now_us() - tstart;
	dg_scribble_stop(&sc);
	/* a buffered fallback leaves the range in the page cache */
	cached = dg_cached_pages(fd, o->offset, o->size);

	/* the thread stopped: is the data on disk intact? */
	got = dg_xbuffer(align, len);
	dg_test_corrupt(o, fd, run_id, iteration, r);
	n = dg_read_back(fd, got, len, o->offset);
	if (n < 0) {
		reread_err = (int)-n;
		if (reread_err != EIO)
			dg_die_at(__FILE__, __LINE__, "read back", reread_err);
	} else {
		bad = dg_verify(got, want, len, o->offset, run_id, iteration, &r->gaps);
		if (bad) {
			dg_first_bad_note(r, got, want, len, o->offset);
			dg_gaps_fiemap(fd, &r->gaps);
		}
	}
	CHECK_SYS(fstat(fd, &st));
	r->size_seen = (uint64_t)st.st_size;

	r->verdict = DG_PASS;
	if (eio) {
		symptom = "eio-read";
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "O_DIRECT read: EIO (csum failure) in %u of %u reads of %" PRIu64
			 " bytes, first at read %u (offset %" PRIu64 "); %s", eio, reads, chunk,
			 first_eio, first_eio_off,
			 reread_err ? "the re-read without the scribbler fails too: the data on disk is bad" :
			 bad ? "the re-read without the scribbler returns wrong data" :
			 "the re-read without the scribbler returns the data intact: false checksum failures, the disk is fine");
	} else if (reread_err) {
		symptom = "eio-read";
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "the re-read without the scribbler failed: %s", strerror(reread_err));
	} else if (bad) {
		symptom = "data";
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "re-read: %zu bad sectors in %zu ranges, first [%" PRIu64 ", %" PRIu64 ") %s",
			 bad, r->gaps.n, r->gaps.r[0].start, r->gaps.r[0].end,
			 dg_class_name(r->gaps.r[0].cls));
	} else if (r->size_seen != r->size_expected) {
		symptom = "size";
		snprintf(r->diag_buf, sizeof(r->diag_buf), "file size %" PRIu64 ", expected %" PRIu64,
			 r->size_seen, r->size_expected);
	}
	if (symptom) {
		r->diag = r->diag_buf;
		r->verdict = DG_FAIL;
	}
	r->symptom = symptom;
	r->precondition = DG_YES;
	r->direct = cached < 0 ? DG_NULL : cached ? DG_NO : DG_YES;
	dg_sb_printf(&extra, "\"cached_pages_after_reads\":%ld,\"cache_drop\":\"%s\",\"datasum_inode\":\"%s\""
		     ",\"reads\":%u,\"read_limit\":%u,\"eio_reads\":%u,\"eio_rate\":%.4f"
		     ",\"first_eio_read\":%u,\"first_eio_offset\":", cached, drop, datasum, reads, READ_LIMIT, eio,
		     reads ? (double)eio / reads : 0.0, first_eio);
	if (eio)
		dg_sb_printf(&extra, "%" PRIu64, first_eio_off);
	else
		dg_sb_printf(&extra, "null");
	dg_sb_printf(&extra, ",\"short_reads\":%u,\"scribble_passes\":%" PRIu64
		     ",\"reread\":%s", shorts, sc.passes,
		     reread_err ? "\"eio\"" : bad ? "\"bad\"" : "\"intact\"");
	r->extra_json = extra.s;
	printf("# %s: %u of %u O_DIRECT reads of %" PRIu64 " bytes failed with EIO (first at read %u), %"
	       PRIu64 " scribbler passes, reads went %s, re-read %s\n", r->name, eio, reads, chunk,
	       first_eio, sc.passes,
	       cached < 0 ? "direct or buffered (cannot tell)" : cached ? "buffered" : "direct",
	       reread_err ? "EIO" : bad ? "bad" : "intact");
	free(want), free(buf), free(got);
	close(fd);
	return r->verdict;
}

int main(int argc, char **argv)
{
	static const struct dg_repro rp = {
		.name = "dio-unstable-read",
		.summary = "O_DIRECT reads into a buffer another thread keeps rewriting",
		.params = "size chunk offset",
		.may_hang = false,
		.note = "no fix merged upstream (proposed 2025: \"btrfs: fallback to buffered read if the inode has data checksum\"); no fstests test merged",
		.run = run,
	};

	return dg_main(&rp, argc, argv);
}
