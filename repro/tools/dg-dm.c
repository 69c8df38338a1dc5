// SPDX-License-Identifier: GPL-2.0
/*
 * dg-dm - the harness's device-mapper tool (no dmsetup in the guest): a
 * case that needs a power cut gets its scratch disk under dm-flakey
 * (harness/lib/run-cases.sh); the reproducer cuts by itself (repro/lib/cut.c).
 *
 *   dg-dm create NAME DEV    a flakey device over DEV, always up; prints its
 *                            node (/dev/dm-N)
 *   dg-dm drop NAME          writes from now on are dropped (the cut)
 *   dg-dm allow NAME         writes go through again
 *   dg-dm remove NAME        remove it (--deferred: when its last user
 *                            closes it, e.g. a filesystem still mounted)
 *   dg-dm cleanup            remove the devices of dead runs: diogap-PID-*
 *                            whose PID is not running (after a SIGKILL)
 *   dg-dm remove-run PID     remove diogap-PID-* (deferred): a run's trap
 *
 * Names are diogap-PID-N, PID the run's process. Exit 0, 2 on failure
 * (one line on stderr), 4 when there is no device mapper (the reason).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dm.h"

static int usage(void)
{
	fprintf(stderr, "usage: dg-dm create NAME DEV | drop NAME | allow NAME | remove [--deferred] NAME | cleanup | remove-run PID\n");
	return 2;
}

static const char *cmd = "";

static int done(int rc, const char *err)
{
	if (!rc)
		return 0;
	fprintf(stderr, "dg-dm %s: %s\n", cmd, err);
	return (rc == -ENOENT || rc == -ENODEV) && strstr(err, DG_DM_CONTROL) ? 4 : 2;
}

/* Switch NAME's flakey table to drop (or let through) writes. */
static int set(const char *name, bool drop, char *err, size_t n)
{
	char params[256];
	struct dg_dm_dev d;
	int rc = dg_dm_query_name(name, &d, err, n);

	if (rc)
		return rc;
	if (strcmp(d.target, "flakey") || dg_flakey_params(d.params, drop, params, sizeof(params))) {
		snprintf(err, n, "%s is not a flakey device (%s '%.200s')", name, d.target, d.params);
		return -EINVAL;
	}
	return dg_dm_switch(name, d.sectors, "flakey", params, err, n);
}

struct sweep {
	long pid;               /* remove this run's devices; 0: dead runs' */
	int rc;
	char err[256];
};

static void sweep_one(const char *name, void *arg)
{
	struct sweep *s = arg;
	char *end;
	long pid;
	char e[256];
	int rc;

	if (strncmp(name, "diogap-", 7))
		return;
	pid = strtol(name + 7, &end, 10);
	if (end == name + 7 || *end != '-' || pid <= 0)
		return;
	if (s->pid ? pid != s->pid : (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
		return;
	rc = dg_dm_remove(name, s->pid != 0, e, sizeof(e));
	if (rc == -EBUSY)
		rc = dg_dm_remove(name, true, e, sizeof(e));
	if (rc) {
		s->rc = rc;
		snprintf(s->err, sizeof(s->err), "%s", e);
	} else {
		printf("removed %s\n", name);
	}
}

int main(int argc, char **argv)
{
	char err[512] = "";
	struct dg_dm_dev d;
	char node[64];
	int rc;

	if (argc < 2)
		return usage();
	cmd = argv[1];
	if (!strcmp(argv[1], "create") && argc == 4) {
		rc = dg_dm_create_flakey(argv[2], argv[3], &d, err, sizeof(err));
		if (!rc)
			rc = dg_dm_node(d.dev, node, sizeof(node), err, sizeof(err));
		if (!rc)
			printf("%s\n", node);
		return done(rc, err);
	}
	if ((!strcmp(argv[1], "drop") || !strcmp(argv[1], "allow")) && argc == 3)
		return done(set(argv[2], !strcmp(argv[1], "drop"), err, sizeof(err)), err);
	if (!strcmp(argv[1], "remove") && argc == 4 && !strcmp(argv[2], "--deferred"))
		return done(dg_dm_remove(argv[3], true, err, sizeof(err)), err);
	if (!strcmp(argv[1], "remove") && argc == 3)
		return done(dg_dm_remove(argv[2], false, err, sizeof(err)), err);
	if ((!strcmp(argv[1], "cleanup") && argc == 2) ||
	    (!strcmp(argv[1], "remove-run") && argc == 3)) {
		struct sweep s = { .pid = argc == 3 ? strtol(argv[2], NULL, 10) : 0 };

		if (argc == 3 && s.pid <= 0)
			return usage();
		rc = dg_dm_list(sweep_one, &s, err, sizeof(err));
		if (!rc && s.rc)
			return done(s.rc, s.err);
		return done(rc, err);
	}
	return usage();
}
