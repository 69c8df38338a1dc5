# shellcheck shell=bash
# The arithmetic behind "good" in a bisect step and "fixes it" in
# validate-fix. Sourced, never run; awk does the floating point.
#
# A run is one iteration of a reproducer. The reproducers are deterministic
# detectors: a FAIL is lost data, never noise, so one FAIL makes a kernel
# bad. Only a PASS can be wrong: a buggy kernel may not show its bug in
# every run. If it shows it in a fraction p of runs, n PASS runs in a row
# happen with probability (1 - p)^n; we call a kernel good only when that
# chance of missing the bug is at most 1 - confidence.
#
# p comes from the known-bad endpoint: k FAIL in m runs there gives a
# one-sided lower confidence bound p_lo on its failure rate (Clopper-Pearson:
# the p at which seeing k or more FAIL in m runs has probability
# 1 - confidence; for k = m that is (1 - confidence)^(1/m)). Using p_lo, not
# k/m, keeps a lucky calibration from making the steps overconfident.

# bst_awk PROGRAM ARGS...: awk with the shared helpers (log binomial
# coefficient, binomial upper tail, hypergeometric lower tail).
bst_awk() {
	local prog=$1
	shift
	awk -v args="$*" '
	function lfact(n,   i, s) { s = 0; for (i = 2; i <= n; i++) s += log(i); return s }
	function lchoose(n, k) { return lfact(n) - lfact(k) - lfact(n - k) }
	# P(X >= k), X ~ Binomial(m, p)
	function upper(k, m, p,   i, s) {
		if (p <= 0) return k <= 0 ? 1 : 0
		if (p >= 1) return 1
		s = 0
		for (i = k; i <= m; i++) s += exp(lchoose(m, i) + i * log(p) + (m - i) * log(1 - p))
		return s
	}
	BEGIN { split(args, a, " "); '"$prog"' }'
}

# bst_p_lower K M CONF: lower confidence bound of a failure rate, K FAIL
# of M runs (0 when K is 0).
bst_p_lower() {
	# shellcheck disable=SC2016 # awk code
	bst_awk '
		k = a[1]; m = a[2]; alpha = 1 - a[3]
		if (k <= 0 || m <= 0) { print 0; exit }
		if (k >= m) { printf "%.6f\n", alpha ^ (1 / m); exit }
		lo = 0; hi = 1
		for (i = 0; i < 60; i++) { mid = (lo + hi) / 2; if (upper(k, m, mid) < alpha) lo = mid; else hi = mid }
		printf "%.6f\n", lo' "$1" "$2" "$3"
}

# bst_runs_needed P CONF: PASS runs needed before (1 - P)^n <= 1 - CONF
# (0 when P is 0: no number of runs is enough).
bst_runs_needed() {
	bst_awk '
		p = a[1]; alpha = 1 - a[2]
		if (p <= 0) { print 0; exit }
		if (p >= 1) { print 1; exit }
		n = log(alpha) / log(1 - p)
		r = int(n); if (r < n - 1e-9) r++
		if (r < 1) r = 1
		print r' "$1" "$2"
}

# bst_p_miss P N: (1 - P)^N, the chance that a kernel failing a fraction P
# of runs passes N runs in a row.
bst_p_miss() {
	bst_awk 'printf "%.3g\n", (1 - a[1]) ^ a[2]' "$1" "$2"
}

# bst_le X Y: X <= Y (floating point).
bst_le() {
	bst_awk 'exit !(a[1] + 0 <= a[2] + 0)' "$1" "$2"
}

# bst_fisher KA NA KB NB: one-sided Fisher exact test, the chance of B
# showing KB or fewer FAIL of NB runs if A and B had the same failure rate
# (KA of NA on A). Small = B really fails less often than A.
bst_fisher() {
	bst_awk '
		ka = a[1]; na = a[2]; kb = a[3]; nb = a[4]; K = ka + kb; N = na + nb
		s = 0
		for (x = 0; x <= kb; x++) {
			if (K - x > na || x > K || nb - x > N - K) continue
			s += exp(lchoose(K, x) + lchoose(N - K, nb - x) - lchoose(N, nb))
		}
		if (s > 1) s = 1
		printf "%.3g\n", s' "$1" "$2" "$3" "$4"
}

# bst_percent X: X (a probability) as a short percentage.
bst_percent() {
	bst_awk '
		x = a[1] * 100
		if (x == 0) print "0%"
		else if (x < 0.01) printf "%.2g%%\n", x
		else printf "%.3g%%\n", x' "$1"
}
