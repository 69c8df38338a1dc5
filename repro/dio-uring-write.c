/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dio-uring-write - partial O_DIRECT writes through io_uring
 *
 * Fixes: b73a6fd1b1ef ("btrfs: split partial dio bios before submit")
 * Introduced-by: 51bd9563b678 ("btrfs: fix deadlock due to page faults during direct IO reads and writes")
 * fstests: generic/708
 * Params: size fault buffer qd fixed_buffers async chunk offset
 * May-hang: no
 *
 * The buffer is cut into chunks (--chunk; default size/qd rounded up to a
 * page, so all writes are in flight at once); each chunk is one io_uring
 * O_DIRECT write from its own region of a fault-controlled mapping, with
 * --qd writes in flight. The fault pattern is applied per chunk (`first` =
 * the first page of every chunk). On a kernel with the bug, a write whose
 * chunk starts resident and then hits a non-resident page loses that
 * resident prefix: it reads back as zeros.
 *   --fixed-buffers  register the buffer (pinned): nothing can fault, a
 *                    control that must PASS even on a buggy kernel
 *   --async          IOSQE_ASYNC: force the io-wq (blocking) path
 * A short completion is resubmitted for the rest and recorded (a short
 * O_DIRECT write is itself a symptom worth seeing). -EAGAIN is retried.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <liburing.h>

#include "diogap.h"

#define QD_MAX 4096
#define SHORT_KEEP 64   /* short completions kept for the JSON record */
#define SHORT_PRINT 8   /* and printed as KTAP diagnostics */
#define EAGAIN_MAX 10000 /* EAGAIN completions retried before it is an error */

struct chunk {
	uint64_t boff;  /* offset in the buffer (file offset = o->offset + boff) */
	uint64_t len;
	uint64_t done;  /* bytes written so far */
};

struct short_write {
	uint64_t off, asked;
	int64_t got;
};

struct uring_run {
	struct io_uring ring;
	int fd;
	char *map;
	uint64_t file_off;
	bool fixed, async;
	struct chunk *ch;
	size_t nch, next, inflight, calls; /* calls: SQEs submitted, retries included */
	struct short_write shorts[SHORT_KEEP];
	size_t nshort;
	unsigned eagain;
	int err;            /* first hard error (positive errno), 0 if none */
	uint64_t err_off;
	char json[4096];
};

/* Bytes per write call: --chunk, else size/qd rounded up to a whole page
 * (and DIO alignment), so that by default all qd writes are in flight. */
static uint64_t chunk_bytes(const struct dg_opts *o)
{
	uint64_t unit = (uint64_t)sysconf(_SC_PAGESIZE), c;

	if (o->chunk)
		return o->chunk < o->size ? o->chunk : o->size;
	if (o->dio_align > unit)
		unit = o->dio_align;
	if (o->size <= unit)
		return o->size;
	c = (o->size + o->qd - 1) / o->qd;
	c = (c + unit - 1) / unit * unit;
	return c < o->size ? c : o->size;
}

static int ring_skip_errno(int err)
{
	return err == ENOSYS || err == EPERM || err == EINVAL ||
	       err == EOPNOTSUPP;
}

/* Ring and opcode checks: SKIP when io_uring cannot do what we need here. */
static int ring_setup(struct uring_run *u, const struct dg_opts *o,
		      struct dg_result *r)
{
	struct io_uring_probe *p;
	int ret = io_uring_queue_init(o->qd, &u->ring, 0);

	if (ret < 0) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "io_uring unavailable: io_uring_queue_init(%u): %s",
			 o->qd, strerror(-ret));
		r->diag = r->diag_buf;
		return ring_skip_errno(-ret) ? DG_SKIP : DG_BROKEN;
	}
	p = io_uring_get_probe_ring(&u->ring);
	if (!p || !io_uring_opcode_supported(p, IORING_OP_WRITE) ||
	    (o->fixed_buffers &&
	     !io_uring_opcode_supported(p, IORING_OP_WRITE_FIXED))) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "io_uring here lacks %s (%s)",
			 o->fixed_buffers ? "IORING_OP_WRITE or WRITE_FIXED"
					  : "IORING_OP_WRITE",
			 p ? "probe" : "no opcode probe");
		r->diag = r->diag_buf;
		io_uring_free_probe(p);
		io_uring_queue_exit(&u->ring);
		return DG_SKIP;
	}
	io_uring_free_probe(p);
	return DG_PASS;
}

/* Pin the whole buffer: from here on no write can fault. */
static int register_buffer(struct uring_run *u, const struct dg_opts *o,
			   struct dg_buf *b, struct dg_result *r)
{
	struct iovec iov = { .iov_base = b->map, .iov_len = b->npages * b->page };
	int ret = io_uring_register_buffers(&u->ring, &iov, 1);

	if (ret == 0)
		return DG_PASS;
	/* The kernel refusing to pin file-backed memory is "not supported
	 * here"; anything else (ENOMEM: RLIMIT_MEMLOCK) is a setup error. */
	bool unsupported = ret == -EOPNOTSUPP ||
			   (ret == -EFAULT && o->buf == DG_BUF_FILE);

	snprintf(r->diag_buf, sizeof(r->diag_buf),
		 "io_uring_register_buffers (%s buffer, %zu bytes): %s%s",
		 o->buf == DG_BUF_MEMFD ? "memfd" :
		 o->buf == DG_BUF_ANON ? "anon" : "file", iov.iov_len,
		 strerror(-ret),
		 unsupported ? ": this kernel does not pin file-backed memory for io_uring" : "");
	r->diag = r->diag_buf;
	return unsupported ? DG_SKIP : DG_BROKEN;
}

static void queue_chunk(struct uring_run *u, size_t i)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	struct chunk *c = &u->ch[i];
	char *src = u->map + c->boff + c->done;
	unsigned len = (unsigned)(c->len - c->done);
	uint64_t off = u->file_off + c->boff + c->done;

	/* never more than qd in flight on a qd-entry ring: an SQE is free */
	CHECK(sqe != NULL);
	if (u->fixed)
		io_uring_prep_write_fixed(sqe, u->fd, src, len, off, 0);
	else
		io_uring_prep_write(sqe, u->fd, src, len, off);
	if (u->async)
		sqe->flags |= IOSQE_ASYNC;
	io_uring_sqe_set_data64(sqe, i);
	u->inflight++;
	u->calls++;
}

static void submit(struct uring_run *u)
{
	int ret;

	do
		ret = io_uring_submit(&u->ring);
	while (ret == -EINTR);
	if (ret < 0)
		dg_die_at(__FILE__, __LINE__, "io_uring_submit", -ret);
}

/* One completion: done, resubmit the rest (short), retry (EAGAIN), or a
 * hard error that stops queueing new chunks. */
static void complete(struct uring_run *u, struct io_uring_cqe *cqe)
{
	size_t i = (size_t)io_uring_cqe_get_data64(cqe);
	struct chunk *c = &u->ch[i];
	uint64_t left = c->len - c->done;
	uint64_t off = u->file_off + c->boff + c->done;
	int res = cqe->res;

	u->inflight--;
	if ((res == -EAGAIN || res == -EINTR) && ++u->eagain < EAGAIN_MAX) {
		if (!u->err)
			queue_chunk(u, i);
		return;
	}
	if (res < 0 || (res == 0 && left)) {
		if (!u->err) {
			u->err = res < 0 ? -res : EIO;
			u->err_off = off;
		}
		return;
	}
	if ((uint64_t)res < left) {
		if (u->nshort < SHORT_KEEP)
			u->shorts[u->nshort] = (struct short_write){
				.off = off, .asked = left, .got = res };
		u->nshort++;
		c->done += (uint64_t)res;
		if (!u->err)
			queue_chunk(u, i);
		return;
	}
	c->done = c->len;
}

static void write_all_chunks(struct uring_run *u, unsigned qd)
{
	struct io_uring_cqe *cqe;
	int ret;

	while (u->next < u->nch && u->inflight < qd && !u->err)
		queue_chunk(u, u->next++);
	submit(u);
	while (u->inflight) {
		ret = io_uring_wait_cqe(&u->ring, &cqe);
		if (ret == -EINTR)
			continue;
		if (ret < 0)
			dg_die_at(__FILE__, __LINE__, "io_uring_wait_cqe", -ret);
		complete(u, cqe);
		io_uring_cqe_seen(&u->ring, cqe);
		while (u->next < u->nch && u->inflight < qd && !u->err)
			queue_chunk(u, u->next++);
		submit(u);
	}
}

/* Reproducer-specific JSON members and KTAP diagnostics. */
static void report_extra(struct uring_run *u, struct dg_result *r)
{
	size_t i, n = 0, cap = sizeof(u->json);

	n += (size_t)snprintf(u->json + n, cap - n,
			      "\"chunks\":%zu,\"write_calls\":%zu,\"eagain\":%u,\"short_writes\":%zu,"
			      "\"short\":[",
			      u->nch, u->calls, u->eagain, u->nshort);
	for (i = 0; i < u->nshort && i < SHORT_KEEP && n < cap; i++)
		n += (size_t)snprintf(u->json + n, cap - n,
				      "%s[%" PRIu64 ",%" PRIu64 ",%" PRId64 "]",
				      i ? "," : "", u->shorts[i].off,
				      u->shorts[i].asked, u->shorts[i].got);
	if (n < cap)
		snprintf(u->json + n, cap - n, "]");
	r->extra_json = u->json;

	for (i = 0; i < u->nshort && i < SHORT_PRINT; i++)
		printf("# short write: offset %" PRIu64 " asked %" PRIu64
		       " wrote %" PRId64 " (rest resubmitted)\n",
		       u->shorts[i].off, u->shorts[i].asked, u->shorts[i].got);
	if (u->nshort > SHORT_PRINT)
		printf("# ... %zu more short writes (see JSON)\n",
		       u->nshort - SHORT_PRINT);
	if (u->eagain)
		printf("# %u completions returned EAGAIN and were retried\n",
		       u->eagain);
}

static int run(const struct dg_opts *o, unsigned iteration, uint64_t run_id,
	       struct dg_result *r, struct dg_buf *b)
{
	static struct uring_run u;
	struct dg_opts oc = *o; /* the chunk we really use, for prediction and output */
	uint64_t t, c;
	size_t i;
	int v;

	if (o->qd < 1 || o->qd > QD_MAX)
		dg_usage_error("--qd %u: must be 1..%u", o->qd, QD_MAX);
	oc.chunk = chunk_bytes(o);
	r->chunk_used = oc.chunk; /* the record says what ran: size/qd by default */
	memset(&u, 0, sizeof(u));
	u.file_off = o->offset;
	u.fixed = o->fixed_buffers;
	u.async = o->async;
	u.nch = (size_t)((o->size + oc.chunk - 1) / oc.chunk);
	u.ch = dg_xmalloc(u.nch * sizeof(*u.ch));
	for (i = 0, c = 0; i < u.nch; i++, c += oc.chunk) {
		u.ch[i].boff = c;
		u.ch[i].len = o->size - c < oc.chunk ? o->size - c : oc.chunk;
	}

	dg_iter_prepare(&oc, iteration, run_id, b);
	u.map = b->map;
	v = ring_setup(&u, o, r);
	if (v != DG_PASS)
		goto out_free;
	if (u.fixed) {
		v = register_buffer(&u, o, b, r);
		if (v != DG_PASS)
			goto out_ring;
	}
	u.fd = CHECK_SYS(open(o->file, O_RDWR | O_DIRECT | O_CLOEXEC));

	/* the truth right before the writes (after pinning, if any) */
	r->resident_pages = dg_buf_measure(b);
	dg_direct_begin(r); /* dg_iter_verify ends it */
	t = dg_now_us();
	write_all_chunks(&u, o->qd);
	r->write_us = dg_now_us() - t;
	report_extra(&u, r);

	if (u.err)
		v = dg_write_failed(u.err, u.err_off, r);
	else
		v = dg_iter_verify(&oc, u.fd, b, run_id, iteration, r);
	CHECK_SYS(close(u.fd));
out_ring:
	io_uring_queue_exit(&u.ring);
out_free:
	free(u.ch);
	r->verdict = v;
	return v;
}

int main(int argc, char **argv)
{
	static const struct dg_repro rp = {
		.name = "dio-uring-write",
		.describe = DG_DESCRIBE,
		.engines = NULL,
		.run = run,
	};

	return dg_main(&rp, argc, argv);
}
