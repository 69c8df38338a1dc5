// SPDX-License-Identifier: GPL-2.0
/*
 * describe.c - a reproducer's metadata (struct dg_repro) as text
 * (--describe) or as one JSON object (--describe --json), the form the
 * harness reads: sweep parameters, may-hang, fix hints, fstests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diogap.h"

static void words_json(struct dg_sb *j, const char *s, char sep)
{
	const char *p = s;
	int first = 1;

	dg_sb_printf(j, "[");
	while (p && *p) {
		const char *e = strchr(p, sep);
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n) {
			dg_sb_printf(j, "%s\"%.*s\"", first ? "" : ",", (int)n, p);
			first = 0;
		}
		p = e ? e + 1 : NULL;
	}
	dg_sb_printf(j, "]");
}

static void commit_json(struct dg_sb *j, const struct dg_commit *c)
{
	if (!c->sha) {
		dg_sb_printf(j, "null");
		return;
	}
	dg_sb_printf(j, "{\"sha\":");
	dg_sb_str(j, c->sha);
	dg_sb_printf(j, ",\"subject\":");
	dg_sb_str(j, c->subject);
	dg_sb_printf(j, "}");
}

static void describe_json(const struct dg_repro *rp)
{
	struct dg_sb j = { 0 };
	int i;

	dg_sb_printf(&j, "{\"name\":");
	dg_sb_str(&j, rp->name);
	dg_sb_printf(&j, ",\"summary\":");
	dg_sb_str(&j, rp->summary);
	dg_sb_printf(&j, ",\"fixes\":[");
	for (i = 0; i < DG_MAX_FIXES && rp->fixes[i].sha; i++) {
		dg_sb_printf(&j, "%s", i ? "," : "");
		commit_json(&j, &rp->fixes[i]);
	}
	dg_sb_printf(&j, "],\"introduced_by\":");
	commit_json(&j, &rp->introduced_by);
	dg_sb_printf(&j, ",\"fstests\":");
	words_json(&j, rp->fstests, ' ');
	dg_sb_printf(&j, ",\"params\":");
	words_json(&j, rp->params, ' ');
	dg_sb_printf(&j, ",\"may_hang\":%s,\"engines\":", rp->may_hang ? "true" : "false");
	words_json(&j, rp->engines, '|');
	dg_sb_printf(&j, ",\"layouts\":");
	words_json(&j, rp->layouts, '|');
	dg_sb_printf(&j, ",\"note\":");
	dg_sb_str(&j, rp->note);
	dg_sb_printf(&j, ",\"needs\":");
	words_json(&j, rp->needs, ' ');
	dg_sb_printf(&j, "}\n");
	fputs(j.s, stdout);
	free(j.s);
}

static void commit_text(const char *what, const struct dg_commit *c)
{
	if (c->sha)
		printf("%s: %s (\"%s\")\n", what, c->sha, c->subject);
}

void dg_describe(const struct dg_repro *rp, bool json)
{
	int i;

	if (json) {
		describe_json(rp);
		return;
	}
	printf("%s - %s\n\n", rp->name, rp->summary);
	for (i = 0; i < DG_MAX_FIXES && rp->fixes[i].sha; i++)
		commit_text("Fixes", &rp->fixes[i]);
	if (!rp->fixes[0].sha)
		printf("Fixes: none merged\n");
	commit_text("Introduced-by", &rp->introduced_by);
	printf("fstests: %s\n", rp->fstests ? rp->fstests : "none");
	printf("Params: %s\n", rp->params ? rp->params : "");
	printf("May-hang: %s\n", rp->may_hang ? "yes" : "no");
	if (rp->needs)
		printf("Needs: %s\n", rp->needs);
	if (rp->note)
		printf("Note: %s\n", rp->note);
}
