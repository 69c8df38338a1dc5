// SPDX-License-Identifier: GPL-2.0
/*
 * precond.c - verdicts that cannot lie: a PASS only where the write met
 * the bug's conditions. A pattern that asks for resident pages followed by
 * missing ones (first, stride:N, random:..., pages:...) tests nothing when
 * the measured residency right before the write has no write call whose
 * first page is resident and a later one not (fault-around, a huge page, a
 * measurement that cannot see PTEs); `all` is a control only when all of
 * the buffer is resident, `none` only when none of it is. A write that went
 * buffered (direct.c) tests nothing either. Those iterations are SKIP with
 * the reason; a FAIL is never downgraded.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diogap.h"

static size_t count(const unsigned char *v, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		c += !!v[i];
	return c;
}

void dg_precondition(const struct dg_opts *o, const struct dg_buf *b,
		     uint64_t chunk, struct dg_result *r)
{
	size_t res = count(b->seen, b->npages), want = count(b->want, b->npages);
	bool met;

	snprintf(r->precondition_why, sizeof(r->precondition_why),
		 "%zu/%zu pages resident (wanted %zu)", res, b->npages, want);
	if (b->shared && b->source && !strcmp(b->source, "mincore")) {
		/* mincore on a shared mapping is the page cache, not the PTEs:
		 * it says "resident" for every page the write would fault on */
		snprintf(r->precondition_why, sizeof(r->precondition_why),
			 "residency of a shared mapping cannot be measured without /proc/self/pagemap (CONFIG_PROC_PAGE_MONITOR)");
		r->precondition = DG_NO;
		return;
	}
	if (!strcmp(o->fault, "all") || o->fixed_buffers) {
		/* a control: registered (pinned) buffers cannot fault, so with
		 * --fixed-buffers any pattern is the all-resident control */
		met = res == b->npages;
	} else if (!strcmp(o->fault, "none")) {
		met = res == 0;
	} else {
		struct dg_ranges pw = { 0 }, ps = { 0 };

		/* what the wanted residency would predict vs what the measured
		 * one does: nothing predicted although something was wanted
		 * means the resident-then-missing shape never happened */
		dg_predict(b->want, b->npages, b->page, o->offset, chunk, o->size, &pw);
		dg_predict(b->seen, b->npages, b->page, o->offset, chunk, o->size, &ps);
		met = !(pw.n && !ps.n);
		dg_ranges_free(&pw);
		dg_ranges_free(&ps);
	}
	r->precondition = met ? DG_YES : DG_NO;
}

int dg_judge(struct dg_result *r)
{
	if (r->verdict != DG_PASS)
		return r->verdict;
	if (r->direct == DG_NO) {
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "write went buffered (%" PRId64 " pages dirtied, %" PRId64
			 " written back for %" PRId64 " written): btrfs does so for checksummed files"
			 " since 968f19c5b1b7 and on profiles with copies since 7c2830f00c3e; nodatasum"
			 " or --nocow on a single-copy profile stays direct",
			 r->dirtied_pages, r->writeback_pages, r->dirtied_written);
		r->diag = r->diag_buf;
		return r->verdict = DG_SKIP;
	}
	if (r->precondition == DG_NO) {
		snprintf(r->diag_buf, sizeof(r->diag_buf), "precondition not met: %s",
			 r->precondition_why);
		r->diag = r->diag_buf;
		return r->verdict = DG_SKIP;
	}
	return r->verdict;
}

int dg_set_diag(struct dg_result *r, int v, const char *symptom, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->diag_buf, sizeof(r->diag_buf), fmt, ap);
	va_end(ap);
	r->diag = r->diag_buf;
	r->symptom = symptom;
	return r->verdict = v;
}

int dg_precondition_skip(struct dg_result *r, const char *fmt, ...)
{
	static const char lead[] = "precondition not met: ";
	va_list ap;

	snprintf(r->diag_buf, sizeof(r->diag_buf), "%s", lead);
	va_start(ap, fmt);
	vsnprintf(r->diag_buf + strlen(lead), sizeof(r->diag_buf) - strlen(lead), fmt, ap);
	va_end(ap);
	r->diag = r->diag_buf;
	r->precondition = DG_NO;
	snprintf(r->precondition_why, sizeof(r->precondition_why), "%s",
		 r->diag_buf + strlen(lead));
	return r->verdict = DG_SKIP;
}

void dg_unverifiable(const struct dg_opts *o, const struct dg_buf *b,
		     struct dg_result *r)
{
	size_t i;

	if (b->shared || !b->want || !b->map)
		return;
	for (i = 0; i < b->npages; i++) {
		uint64_t s = (uint64_t)i * b->page, e = s + b->page;

		if (b->want[i] || s >= o->size)
			continue;
		if (e > o->size)
			e = o->size;
		dg_ranges_add(&r->unverifiable, o->offset + s, o->offset + e, DG_ZERO);
	}
}
