# seeds_report: the committed reproduction reports of results/seeds/ are
# what scripts/seeds-report writes now. It runs the script with this
# build's tlsim into a temporary directory and diffs that against the
# committed files (which another process wrote: the diff also proves the
# output is deterministic). When tlsim's behaviour changes on purpose, run
# scripts/seeds-report and commit results/seeds/ with the change.
#
# In a normal build it regenerates everything: all five reports and the
# index (about 6 s of CPU in RelWithDebInfo, half of it the Go livelock
# runs). In a sanitizer build (TLSIM_SANITIZE=ON, the second pass of
# scripts/test) it regenerates only the MsQuic, rustls and chain reports,
# which cover every tlsim command the script uses (run, sweep, explore,
# shrink, races, report): the same bytes come out of both builds, and the
# Go and Asio reports would triple the time under ASan.
. "$2/tests/lib.sh"

if grep -q '^TLSIM_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
	set -- --only 'msquic rustls chain'
	files="1_msquic_shutdown 2_rustls_acceptor_alert 3_incomplete_chain"
else
	set --
	files="README 1_msquic_shutdown 2_rustls_acceptor_alert 3_incomplete_chain
		4_go_handshake_deadline 5_asio_close_notify"
fi

CHECKS=$((CHECKS + 1))
if ! TLSIM="$TLSIM" sh "$SRC/scripts/seeds-report" -o "$TMP/new" "$@" >"$TMP/out" 2>&1 </dev/null; then
	fail "scripts/seeds-report $* failed"
	sed 's/^/  | /' "$TMP/out" >&2
	finish
fi
for f in $files; do
	CHECKS=$((CHECKS + 1))
	if [ ! -s "$TMP/new/$f.md" ]; then
		fail "no $f.md written"
	elif ! diff -u "$SRC/results/seeds/$f.md" "$TMP/new/$f.md" >"$TMP/diff"; then
		fail "results/seeds/$f.md is out of date: run scripts/seeds-report and commit results/seeds/"
		head -n 100 "$TMP/diff" | sed 's/^/  | /' >&2
	fi
done
# Nothing else was written, and the committed directory holds nothing the
# script does not write (a report renamed or dropped).
CHECKS=$((CHECKS + 1))
written=$(cd "$TMP/new" && ls | sed 's/\.md$//' | sort | tr '\n' ' ')
want=$(printf '%s\n' $files | sort | tr '\n' ' ')
[ "$written" = "$want" ] || fail "reports written: $written; expected: $want"
if [ $# -eq 0 ]; then
	CHECKS=$((CHECKS + 1))
	committed=$(cd "$SRC/results/seeds" && ls | sed 's/\.md$//' | sort | tr '\n' ' ')
	[ "$committed" = "$want" ] || fail "results/seeds/ holds $committed; the script writes $want"
fi
CHECKS=$((CHECKS + 1))
if grep -rn -e "$TMP" -e '/tmp/' "$TMP/new" >"$TMP/paths"; then
	fail "a report names a temporary path:"
	sed 's/^/  | /' "$TMP/paths" >&2
fi
finish
