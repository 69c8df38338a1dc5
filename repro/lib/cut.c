// SPDX-License-Identifier: GPL-2.0
/*
 * cut.c - the power cut of the durability reproducers (see dm.h): find the
 * mount under a directory, check it sits on dm-flakey, drop writes,
 * unmount, let writes through, mount again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "diogap.h"
#include "dm.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = 0;
}

/* The mount's own options ("rw,noatime") as MS_* flags. */
static unsigned long mount_flags(const char *opts)
{
	static const struct { const char *w; unsigned long f; } map[] = {
		{ "ro", MS_RDONLY }, { "nosuid", MS_NOSUID }, { "nodev", MS_NODEV },
		{ "noexec", MS_NOEXEC }, { "sync", MS_SYNCHRONOUS }, { "noatime", MS_NOATIME },
		{ "nodiratime", MS_NODIRATIME }, { "relatime", MS_RELATIME },
		{ "dirsync", MS_DIRSYNC }, { "lazytime", MS_LAZYTIME },
	};
	char buf[1024], *save, *w;
	unsigned long f = 0;
	size_t i;

	snprintf(buf, sizeof(buf), "%s", opts);
	for (w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save))
		for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (!strcmp(w, map[i].w))
				f |= map[i].f;
	return f;
}

/* The filesystem's options for mount(2): the super options without rw/ro
 * (flags, not options) and without the security labels. */
static void fs_opts(const char *super, char *out, size_t len)
{
	char buf[1024], *save, *w;
	size_t at = 0;

	out[0] = 0;
	snprintf(buf, sizeof(buf), "%s", super);
	for (w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		if (!strcmp(w, "rw") || !strcmp(w, "ro") || !strcmp(w, "seclabel"))
			continue;
		at += (size_t)snprintf(out + at, at < len ? len - at : 0, "%s%s", at ? "," : "", w);
	}
}

int dg_mount_of(const char *path, struct dg_mount *m, char *err, size_t n)
{
	char real[PATH_MAX], *line = NULL;
	size_t cap = 0, best = 0;
	FILE *f;
	struct stat st;

	if (!realpath(path, real))
		return dg_dm_fail(err, n, errno, "realpath %s", path);
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return dg_dm_fail(err, n, errno, "open /proc/self/mountinfo");
	memset(m, 0, sizeof(*m));
	while (getline(&line, &cap, f) > 0) {
		char point[1024], mopts[512], fstype[64], source[1024], super[1024], *dash;
		size_t l;

		dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %1023s %511s", point, mopts) != 2 ||
		    sscanf(dash + 3, "%63s %1023s %1023s", fstype, source, super) != 3)
			continue;
		unescape(point);
		unescape(source);
		l = strlen(point);
		if (strncmp(real, point, l) || (real[l] && real[l] != '/' && l > 1))
			continue;
		if (l < best)
			continue;
		best = l;
		snprintf(m->point, sizeof(m->point), "%s", point);
		snprintf(m->source, sizeof(m->source), "%s", source);
		snprintf(m->fstype, sizeof(m->fstype), "%s", fstype);
		fs_opts(super, m->opts, sizeof(m->opts));
		m->flags = mount_flags(mopts);
	}
	free(line);
	fclose(f);
	if (!best)
		return dg_dm_fail(err, n, ENOENT, "no mount holds %s", real);
	if (stat(m->source, &st) < 0 || !S_ISBLK(st.st_mode))
		return dg_dm_fail(err, n, ENOTBLK, "%s is mounted from %s, not a block device", m->point,
			    m->source);
	m->dev = st.st_rdev;
	return 0;
}

int dg_cut_ready(const struct dg_mount *m, struct dg_dm_dev *d, char *err, size_t n)
{
	char e[256];
	int rc = dg_dm_query(m->dev, d, e, sizeof(e));

	if (rc == -ENOENT || rc == -ENODEV)
		snprintf(err, n, "no dm-flakey under the scratch: no device mapper (%s)", e);
	else if (rc == -ENXIO)
		snprintf(err, n, "no dm-flakey under the scratch: %s is not a device-mapper device (%u:%u; the harness puts a cut case's disk under dm-flakey)",
			 m->source, major(m->dev), minor(m->dev));
	else if (rc)
		snprintf(err, n, "no dm-flakey under the scratch: %s", e);
	else if (d->targets != 1 || strcmp(d->target, "flakey"))
		snprintf(err, n, "no dm-flakey under the scratch: %s is device mapper %s with %u targets, first '%s'",
			 m->source, d->name, d->targets, d->target);
	else
		return 0;
	/* the harness could not make one: its reason says more */
	if (getenv("DIOGAP_FLAKEY_WHY") && *getenv("DIOGAP_FLAKEY_WHY"))
		snprintf(err, n, "no dm-flakey under the scratch: %s", getenv("DIOGAP_FLAKEY_WHY"));
	return rc ? rc : -EMEDIUMTYPE;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int dg_cut(const struct dg_mount *m, const struct dg_dm_dev *d, uint64_t *us,
	   char *err, size_t n)
{
	char drop[256], allow[256], e[256];
	uint64_t t0 = now_us();
	int rc;

	if (dg_flakey_params(d->params, true, drop, sizeof(drop)) ||
	    dg_flakey_params(d->params, false, allow, sizeof(allow)))
		return dg_dm_fail(err, n, EINVAL, "flakey table of %s: '%s'", d->name, d->params);
	rc = dg_dm_switch(d->name, d->sectors, "flakey", drop, err, n);
	if (rc)
		return rc;
	if (umount2(m->point, 0) < 0) {
		int ue = errno;

		dg_dm_switch(d->name, d->sectors, "flakey", allow, e, sizeof(e));
		return dg_dm_fail(err, n, ue, "umount %s after dropping writes (the filesystem stays mounted, its writes since the cut were lost)",
			    m->point);
	}
	rc = dg_dm_switch(d->name, d->sectors, "flakey", allow, err, n);
	if (rc)
		return rc;
	if (mount(m->source, m->point, m->fstype, m->flags, m->opts) < 0)
		return dg_dm_fail(err, n, errno, "mount -t %s -o %s %s %s after the cut", m->fstype,
			    m->opts, m->source, m->point);
	*us = now_us() - t0;
	return 0;
}

int dg_cut_failed(struct dg_result *r, const char *err)
{
	if (strstr(err, "after the cut") && (strstr(err, "Structure needs cleaning") ||
					      strstr(err, "Input/output error")))
		return dg_set_diag(r, DG_FAIL, "lost-after-cut", "%s", err);
	return dg_set_diag(r, DG_BROKEN, NULL, "power cut: %s", err);
}
