# shellcheck shell=bash
# Kernel config from fragments for harness/build-kernel: tinyconfig plus the
# fragments (the kernel's own merge_config.sh), olddefconfig, then a check
# that every option the fragments ask for came out as asked. Sourced after
# common.sh, never run.

# kc_mismatches CONFIG FRAG...: one line "CONFIG_X<TAB>asked<TAB>got" per
# option whose final value differs from what the last fragment naming it
# asked. "n" stands for "is not set"; an option absent from CONFIG (does not
# exist, or its dependencies are off) is "absent" and satisfies only "n".
kc_mismatches() {
	awk '
	function parse(line) {
		sub(/[ \t\r]+$/, "", line)
		if (match(line, /^CONFIG_[A-Za-z0-9_]+=/)) {
			sym = substr(line, 1, RLENGTH - 1)
			val = substr(line, RLENGTH + 1)
			return 1
		}
		if (match(line, /^# CONFIG_[A-Za-z0-9_]+ is not set$/)) {
			split(line, w, " ")
			sym = w[2]; val = "n"
			return 1
		}
		return 0
	}
	FNR == NR { if (parse($0)) got[sym] = val; next }
	parse($0) {
		if (!(sym in want)) order[++n] = sym
		want[sym] = val
	}
	END {
		for (i = 1; i <= n; i++) {
			s = order[i]; g = (s in got) ? got[s] : "absent"
			if (want[s] == g || (want[s] == "n" && g == "absent")) continue
			printf "%s\t%s\t%s\n", s, want[s], g
		}
	}' "$@"
}

# kc_explain TREE CONFIG_X WANT: why an option may not have come out: for
# one asked off, who selects it; otherwise where it is defined and what it
# depends on, or that this source has no such option.
kc_explain() {
	local tree=$1 name=${2#CONFIG_} want=$3 file deps sel
	local opts=(-r --include='Kconfig*' --exclude-dir=.git --exclude-dir=.diogap-o
		--exclude-dir=.diogap-kconfig --exclude-dir='.diogap-o-*' --exclude-dir='.diogap-kconfig-*')
	if [[ $want == n ]]; then
		sel=$(grep -lE "${opts[@]}" "^[[:space:]]*select[[:space:]]+${name}([[:space:]]|\$)" "$tree" |
			sed "s|^$tree/||" | grep -Ev '^arch/([^x]|x[^8])' | head -n 3 | paste -sd' ') || true
		echo "${sel:+selected in $sel; }a default or a select turned it on"
		return
	fi
	file=$(grep -lE "${opts[@]}" "^[[:space:]]*(menu)?config[[:space:]]+${name}[[:space:]]*\$" "$tree" | head -n 1) || true
	if [[ -z $file ]]; then
		echo "no such option in this source"
		return
	fi
	deps=$(awk -v n="$name" '
		$0 ~ "^[ \t]*(menu)?config[ \t]+" n "[ \t]*$" { on = 1; next }
		on && /^[ \t]*(menu)?config[ \t]|^[ \t]*(endmenu|endif|menu|if|choice|endchoice|source)([ \t]|$)/ { on = 0 }
		on && /^[ \t]*depends on/ { sub(/^[ \t]*/, ""); printf "%s%s", sep, $0; sep = "; " }
	' "$file")
	echo "defined in ${file#"$tree"/}${deps:+, $deps}"
}

# kc_generate TREE CFGDIR LOG FRAG...: write CFGDIR/.config. CFGDIR is a
# scratch O= directory kept per source, so kconfig's host tools build once.
kc_generate() {
	local tree=$1 dir=$2 logf=$3
	shift 3
	mkdir -p -- "$dir"
	rm -f -- "$dir/.config"
	{
		echo "== make tinyconfig"
		make -C "$tree" O="$dir" tinyconfig &&
			echo "== merge_config.sh -m .config $*" &&
			(cd "$dir" && "$tree/scripts/kconfig/merge_config.sh" -m .config "$@") &&
			echo "== make olddefconfig" &&
			make -C "$tree" O="$dir" olddefconfig
	} >>"$logf" 2>&1 || die "kernel config generation failed; log: $logf"
}

# kc_verify TREE CONFIG LOG FRAG...: die (exit 2) naming every option the
# fragments asked for that did not come out as asked.
kc_verify() {
	local tree=$1 config=$2 logf=$3 bad sym want got
	shift 3
	bad=$(kc_mismatches "$config" "$@")
	[[ -z $bad ]] && return 0
	{
		echo "== options that did not come out as the fragments ask"
		while IFS=$'\t' read -r sym want got; do
			printf '%s: asked %s, got %s (%s)\n' "$sym" "$want" "$got" "$(kc_explain "$tree" "$sym" "$want")"
		done <<<"$bad"
	} | tee -a "$logf" | sed "s/^/${dg_prog:-build-kernel}: /" >&2
	die "$(wc -l <<<"$bad") option(s) the fragments ask for did not come out as asked: $(cut -f1 <<<"$bad" | paste -sd' '); log: $logf"
}
