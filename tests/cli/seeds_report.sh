# seeds_report: the committed reproduction reports of results/seeds/ are
# what scripts/seeds-report writes now. It runs the whole script, every
# report of all five bugs (about 10 s of CPU in a RelWithDebInfo build, 15 s
# under ASan: most of it the Go livelock runs), with this build's tlsim,
# into a temporary directory, and diffs that against the committed files
# (which another process wrote: the diff also proves the output is
# deterministic). When tlsim's behaviour changes on purpose, run
# scripts/seeds-report and commit results/seeds/ with the change.
. "$2/tests/lib.sh"

# gen DIR: the reports, written by this build's tlsim into DIR.
gen() {
	CHECKS=$((CHECKS + 1))
	if ! TLSIM="$TLSIM" sh "$SRC/scripts/seeds-report" -o "$1" >"$TMP/out" 2>&1 </dev/null; then
		fail "scripts/seeds-report -o $1 failed"
		sed 's/^/  | /' "$TMP/out" >&2
		finish
	fi
}

gen "$TMP/a"
for f in README 1_msquic_shutdown 2_rustls_acceptor_alert 3_incomplete_chain \
	4_go_handshake_deadline 5_asio_close_notify; do
	CHECKS=$((CHECKS + 1))
	[ -s "$TMP/a/$f.md" ] || fail "no $f.md written"
done
CHECKS=$((CHECKS + 1))
if grep -rn -e "$TMP" -e '/tmp/' "$TMP/a" >"$TMP/paths"; then
	fail "a report names a temporary path:"
	sed 's/^/  | /' "$TMP/paths" >&2
fi
CHECKS=$((CHECKS + 1))
if ! diff -ru "$SRC/results/seeds" "$TMP/a" >"$TMP/diff"; then
	fail "results/seeds/ is out of date: run scripts/seeds-report and commit results/seeds/"
	head -n 150 "$TMP/diff" | sed 's/^/  | /' >&2
fi
finish
