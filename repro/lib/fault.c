// SPDX-License-Identifier: GPL-2.0
/*
 * fault.c - which buffer pages a fault pattern asks to be resident.
 *   first            the first page of every write call (generic/708 shape)
 *   none             nothing resident: the write faults at once
 *   all              everything resident: control, nothing can fault
 *   stride:N         pages 0, N, 2N, ...
 *   random:SEED:PCT  each page resident with probability PCT% (seeded)
 *   pages:LIST       LIST = comma separated page numbers or ranges a-b
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diogap.h"

static int bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Strict unsigned decimal: digits only, no sign, no overflow. */
static int parse_u64(const char *s, const char *end, uint64_t *out)
{
	uint64_t v = 0;

	if (s == end)
		return -1;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* xorshift64*, seeded through splitmix so SEED 0 works too. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static int want_list(const char *list, size_t npages, unsigned char *want,
		     char *err, size_t errlen)
{
	const char *p = list;

	if (!*p)
		return bad(err, errlen, "pages: needs a list, e.g. pages:0,4-7");
	while (*p) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		const char *dash = memchr(p, '-', (size_t)(end - p));
		uint64_t a, b;
		size_t i;

		if (dash) {
			if (parse_u64(p, dash, &a) || parse_u64(dash + 1, end, &b))
				return bad(err, errlen, "pages: bad range '%.*s'",
					   (int)(end - p), p);
		} else {
			if (parse_u64(p, end, &a))
				return bad(err, errlen, "pages: bad page number '%.*s'",
					   (int)(end - p), p);
			b = a;
		}
		if (a > b)
			return bad(err, errlen, "pages: range %" PRIu64 "-%" PRIu64
				   " runs backwards", a, b);
		if (b >= npages)
			return bad(err, errlen, "pages: page %" PRIu64
				   " is outside the buffer (%zu pages)", b, npages);
		for (i = a; i <= b; i++)
			want[i] = 1;
		if (!comma)
			break;
		p = comma + 1;
		if (!*p)
			return bad(err, errlen, "pages: trailing comma");
	}
	return 0;
}

int dg_fault_want(const char *pattern, uint64_t len, size_t page,
		  uint64_t chunk, unsigned char *want, char *err, size_t errlen)
{
	size_t npages = (size_t)((len + page - 1) / page);
	const char *arg;
	uint64_t n, pct, seed;
	size_t i;

	memset(want, 0, npages);
	if (!pattern || !*pattern)
		return bad(err, errlen, "empty fault pattern");
	if (!strcmp(pattern, "none"))
		return 0;
	if (!strcmp(pattern, "all")) {
		memset(want, 1, npages);
		return 0;
	}
	if (!strcmp(pattern, "first")) {
		uint64_t c, step = chunk ? chunk : len;

		for (c = 0; c < len; c += step)
			want[c / page] = 1;
		return 0;
	}
	if (!strncmp(pattern, "stride:", 7)) {
		arg = pattern + 7;
		if (parse_u64(arg, arg + strlen(arg), &n) || n == 0)
			return bad(err, errlen,
				   "stride:N needs a whole number N >= 1, got '%s'", arg);
		for (i = 0; i < npages; i += (size_t)n)
			want[i] = 1;
		return 0;
	}
	if (!strncmp(pattern, "random:", 7)) {
		const char *colon;

		arg = pattern + 7;
		colon = strchr(arg, ':');
		if (!colon || parse_u64(arg, colon, &seed) ||
		    parse_u64(colon + 1, colon + 1 + strlen(colon + 1), &pct) ||
		    pct > 100)
			return bad(err, errlen,
				   "random:SEED:PCT needs two whole numbers, PCT 0..100, got '%s'",
				   arg);
		seed = seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
		if (!seed)
			seed = 1;
		for (i = 0; i < npages; i++)
			want[i] = rng_next(&seed) % 100 < pct;
		return 0;
	}
	if (!strncmp(pattern, "pages:", 6))
		return want_list(pattern + 6, npages, want, err, errlen);
	return bad(err, errlen,
		   "unknown fault pattern '%s' (first|none|all|stride:N|random:SEED:PCT|pages:LIST)",
		   pattern);
}
