#!/bin/busybox sh
# shellcheck shell=sh
# diogap LAVA guest init: PID 1 of the jobs harness/export-lava writes (the
# job's kernel command line says rdinit=/diogap/lava-init). The same base
# initramfs as run-vm (busybox, reproducers, harness/lib/run-cases.sh, the
# case list, the kernel's modules) but a lab hands nothing back except the
# console, so everything leaves through it:
#
#   KTAP version 1 / 1..N / one whole result line per case / # Totals:
#       the LAVA job's first monitor turns each result line into a test case
#   #dg <length> <stream record>
#       every record of the runner's stream (S J O K E ... of run-cases.sh),
#       printed before the case's result line; harness/run-lava rebuilds the
#       stream from them (a line whose length is off was cut by a kernel
#       message and is dropped)
#   # diogap-gaps begin / # gap <case>.gap.<start>-<end>.<class> fail <len> bytes / end
#       after the totals: the second monitor makes each gap range a test case
#       whose measurement is its length (LAVA's monitors carry no other extra data)
#
# Each result line is written with one write() and the job's command line has
# loglevel=1, so kernel messages cannot cut a result line in two.
# Steps at the bottom; power off without syncing (a stuck write hangs sync).

DG=/diogap
DG_STREAM=/run/diogap/stream
DG_NEW=/run/diogap/new
DG_ALL=/run/diogap/all
DG_MNT=/mnt/scratch
DG_DISK=
DG_WHY=
DG_N=0
DG_BROKEN=0

say() {
	echo "# diogap-init: $*"
}

mount_pseudo() {
	mkdir -p /proc /sys /dev /run/diogap /tmp /mnt
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	if ! mount -t devtmpfs devtmpfs /dev 2>/dev/null; then
		mount -t tmpfs tmpfs /dev && mdev -s
	fi
	[ -c /dev/console ] && exec >/dev/console 2>&1 </dev/null
	: >"$DG_STREAM"
	: >"$DG_ALL"
}

load_modules() {
	[ -s $DG/modules/order ] || return 0
	while read -r m; do
		if ! insmod "$DG/modules/$m" 2>/run/diogap/insmod.err; then
			DG_WHY="$DG_WHY insmod $m: $(cat /run/diogap/insmod.err);"
		fi
	done <$DG/modules/order
}

# find_disk: the scratch btrfs is the first virtio disk.
find_disk() {
	for b in /sys/block/vd*; do
		[ -e "$b" ] || continue
		DG_DISK=/dev/${b##*/}
		[ -b "$DG_DISK" ] || mknod "$DG_DISK" b "$(cut -d: -f1 "$b/dev")" "$(cut -d: -f2 "$b/dev")"
		return 0
	done
}

# ktap_line N ID EXIT WHY: one case's result line, in a single write.
ktap_line() {
	case "$3" in
	0) _l="ok $1 $2" ;;
	1) _l="not ok $1 $2" ;;
	4) _l="ok $1 $2 # SKIP ${4:-skipped}" ;;
	*) _l="not ok $1 $2 # $([ "$4" = timeout ] && echo TIMEOUT || echo ERROR) ${4:-exit $3}" ;;
	esac
	printf '%s\n' "$_l"
}

# dg_flush: the runner calls it after each case. Print the stream records
# written since the last call, then the result line of each case that ended
# among them. The records move to DG_ALL first (the runner reopens the
# stream for each record), so each call reads only what is new.
dg_flush() {
	[ -s "$DG_STREAM" ] || return 0
	mv "$DG_STREAM" "$DG_NEW"
	cat "$DG_NEW" >>"$DG_ALL"
	awk '{ printf "#dg %d %s\n", length($0), $0; fflush() }' "$DG_NEW"
	awk '$1 == "E" { why = $5; for (i = 6; i <= NF; i++) why = why " " $i
		print $2 "\t" $3 "\t" why }' "$DG_NEW" >/run/diogap/ended
	while IFS="$(printf '\t')" read -r _id _rc _why; do
		DG_N=$((DG_N + 1))
		ktap_line "$DG_N" "$_id" "$_rc" "$_why"
	done </run/diogap/ended
}

# report_broken TEXT: no case can run; the stream says so as guest/init's
# does (B, Z, D: results.sh makes every case BROKEN with TEXT) and each case
# gets an ERROR result line.
report_broken() {
	say "BROKEN: $1"
	printf 'B - %s\nZ - %s\nD - done\n' "$(uname -r)" "$1" >>"$DG_STREAM"
	dg_flush
	while IFS="$(printf '\t')" read -r _id _; do
		DG_N=$((DG_N + 1))
		ktap_line "$DG_N" "$_id" 2 "$1"
	done <$DG/cases.tsv
	DG_BROKEN=$DG_N
}

ktap_header() {
	echo "KTAP version 1"
	echo "1..$(grep -c . $DG/cases.tsv)"
}

run_all() {
	if ! grep -qw btrfs /proc/filesystems; then
		report_broken "btrfs is not available in kernel $(uname -r) (not built in, module missing or failed to load)${DG_WHY:+:$DG_WHY}"
	elif [ -z "$DG_DISK" ]; then
		report_broken "no virtio disk for the scratch btrfs${DG_WHY:+:$DG_WHY}"
	else
		# shellcheck source=harness/lib/run-cases.sh
		. $DG/run-cases.sh
		run_cases $DG/cases.tsv $DG/bin "$DG_DISK" "$DG_MNT" "$DG_STREAM" $DG/done.ids
	fi
}

ktap_totals() {
	awk -v e="$DG_BROKEN" '$1 == "E" { if ($3 == 0) p++; else if ($3 == 1) f++; else if ($3 == 4) s++; else e++ }
		END { printf "# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:%d\n", p, f, s, e }' \
		"$DG_ALL"
}

# gap_cases: every gap of every failed case, once, for the second monitor.
gap_cases() {
	echo "# diogap-gaps begin"
	awk '$1 == "E" && $3 == 1 { failed[$2] = 1 }
	$1 == "J" { id = $2; j = $0; ids[++n] = id; js[n] = j }
	END {
		for (k = 1; k <= n; k++) {
			if (!(ids[k] in failed)) continue
			j = js[k]; p = index(j, "\"gaps\":[")
			if (!p) continue
			j = substr(j, p + 8)
			while (match(j, /^\[[0-9]+,[0-9]+,"[A-Za-z_-]+"[^]]*\],?/)) {
				g = substr(j, 2, RLENGTH - 2); j = substr(j, RLENGTH + 1)
				sub(/\]$/, "", g); split(g, f, ",")
				gsub(/"/, "", f[3])
				name = ids[k] ".gap." f[1] "-" f[2] "." f[3]
				if (name in seen) continue
				seen[name] = 1
				printf "# gap %s fail %d bytes\n", name, f[2] - f[1]
			}
		}
	}' "$DG_ALL" | while read -r _l; do printf '%s\n' "$_l"; done
	echo "# diogap-gaps end"
}

# power_off: never sync. sysrq o powers off at once; poweroff -f is the fallback.
power_off() {
	[ -w /proc/sysrq-trigger ] && echo o >/proc/sysrq-trigger
	sleep 1
	poweroff -n -f
	while :; do sleep 3600; done
}

export PATH=/bin HOME=/ TMPDIR=/tmp
mount_pseudo
load_modules
find_disk
ktap_header
run_all
ktap_totals
gap_cases
power_off
