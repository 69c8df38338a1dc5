#!/usr/bin/env bash
# The run-vm suite (make check-run-vm): every harness/tests/run-vm-*.sh in
# turn, their lines passed through, one closing "N passed, N failed, N skipped" line
# for all of them. A script that prints no count line counts as a failure.
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

main() {
	local t log p=0 f=0 s=0 c rc tp tf ts
	log=$(mktemp /tmp/diogap-run-vm-suite.XXXXXX)
	on_exit rm -f "$log"
	for t in "$DIOGAP_ROOT"/harness/tests/run-vm-*.sh; do
		[[ $t == "${BASH_SOURCE[0]}" || $t == */run-vm-all.sh ]] && continue
		printf '# %s\n' "${t##*/}"
		rc=0
		"$t" 2>&1 | tee "$log" || rc=$?
		c=$(sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed, \([0-9][0-9]*\) skipped$/\1 \2 \3/p' \
			"$log" | tail -n 1)
		if [[ -z $c ]]; then
			printf '# %s printed no count line (exit %d)\n' "${t##*/}" "$rc"
			c="0 1 0"
		fi
		read -r tp tf ts <<<"$c"
		((rc == 0 || tf > 0)) || tf=1
		p=$((p + tp)) f=$((f + tf)) s=$((s + ts))
	done
	echo "$p passed, $f failed, $s skipped"
	((f == 0)) || exit 1
}

main "$@"
