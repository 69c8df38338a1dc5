# shellcheck shell=bash
# fsck: after a VM, `btrfs check --readonly` (btrfs-progs on the host) on
# the image of every filesystem whose cases cut the power (the FS column
# of cases.tsv ends in "+flakey"): after the cuts and log replays the
# filesystem must be consistent, not only mount. A check that finds errors
# makes those cases' PASS a FAIL (results_amend, results.sh), with the
# check's first error line as the reason. Sourced after common.sh.
#
#   OUT/fsck.txt        one line per image: filesystem, image, exit, verdict
#   OUT/fsck-N.log      btrfs check's output for disk N
#   OUT/fsck-fail.tsv   "CASE_ID<TAB>REASON" of the cases a failed check judges

# fsck_cut_disks OUT DIR ENDED: check DIR/disk-N.img of each cut filesystem
# of OUT/cases.tsv. ENDED: "done" when the guest's runner finished (an
# image left by a VM that was stopped mid-case is not checked: its last
# case never unmounted, which is not the kind of cut being judged).
fsck_cut_disks() {
	local out=$1 dir=$2 ended=$3 fs idx img rc why
	: >"$out/fsck.txt"
	rm -f "$out/fsck-fail.tsv"
	while IFS= read -r fs; do
		idx=${fs#*@} idx=${idx%+flakey} img=$dir/disk-$idx.img
		if [[ $ended != "done" ]]; then
			printf '%s\t%s\t-\tnot checked: the VM did not end cleanly\n' "${fs%+flakey}" "$img" >>"$out/fsck.txt"
			continue
		fi
		rc=0
		timeout 600 btrfs check --readonly "$img" >"$out/fsck-$idx.log" 2>&1 || rc=$?
		if ((rc == 0)); then
			printf '%s\t%s\t0\tclean\n' "${fs%+flakey}" "$img" >>"$out/fsck.txt"
			continue
		fi
		why=$(grep -m 1 -iE 'error|corrupt|mismatch|wrong|invalid|missing|failed' "$out/fsck-$idx.log" || tail -n 1 "$out/fsck-$idx.log")
		why="btrfs check of the filesystem after the VM's power cuts failed (exit $rc): ${why:0:200}"
		printf '%s\t%s\t%d\t%s\n' "${fs%+flakey}" "$img" "$rc" "$why" >>"$out/fsck.txt"
		warn "$why (disk $idx; see $out/fsck-$idx.log)"
		awk -F'\t' -v fs="$fs" -v why="$why" '$7 == fs { print $1 "\t" why }' "$out/cases.tsv" \
			>>"$out/fsck-fail.tsv"
	done < <(awk -F'\t' '$7 ~ /\+flakey$/ { print $7 }' "$out/cases.tsv" | sort -u)
	[[ -s $out/fsck.txt ]] || rm -f "$out/fsck.txt"
}
