# tlsim sweep --runs-per-child N: a child making N runs in a row gives
# the trace a child per run gives, byte for byte, for TLS, QUIC, echo
# and fault-rule scenarios, traced and not, with --jobs 1 and 2; a run
# that crashes in the middle of a child's runs is recorded alone and the
# runs after it are made by a new child; --resume runs the seeds missing
# from the middle of a child's share; bad values are one-line errors.
. "$2/tests/lib.sh"
SC="$SRC/scripts/scenarios"

# same_sweep LABEL SWEEP-ARGS...: the sweep with a child per run and with
# 7 and 64 runs per child (--jobs 2) writes the same trace and table.
same_sweep() {
	label=$1
	shift
	expect_run "$want" "" -- sweep "$@" --trace "$TMP/one.db"
	grep -v '^trace:' "$TMP/out" >"$TMP/one.txt"
	sqlite3 "$TMP/one.db" .dump >"$TMP/one.sql"
	for k in 7 64; do
		expect_run "$want" "" -- sweep "$@" --trace "$TMP/k$k.db" --jobs 2 --runs-per-child "$k"
		grep -v '^trace:' "$TMP/out" >"$TMP/k.txt"
		check "$label: table, $k runs per child" "$(cat "$TMP/k.txt")" "$(cat "$TMP/one.txt")"
		sqlite3 "$TMP/k$k.db" .dump >"$TMP/k.sql"
		CHECKS=$((CHECKS + 1))
		cmp -s "$TMP/one.sql" "$TMP/k.sql" ||
			fail "$label: $k runs per child give another trace"
		rm -f "$TMP/k$k.db"
	done
	rm -f "$TMP/one.db"
}

want=1
same_sweep "msquic tail" "$SC/msquic_shutdown_race.lua" --set variant=tail --seeds 1..40
want=0
same_sweep "echo lossy" "$SC/echo_lossy.lua" --seeds 1..20
same_sweep "fault rules" "$SC/fault_targeting.lua" --set case=fin_delay --seeds 1..9
same_sweep "tls basic" "$SC/tls_basic.lua" --seeds 1..12
same_sweep "quic basic" "$SC/quic_basic.lua" --seeds 1..12
same_sweep "key update" "$SC/key_update.lua" --seeds 1..6
# The failing runs were counted as failures, not lost (the check that
# the comparison above compares something).
want=1
expect_run 1 "" -- sweep "$SC/msquic_shutdown_race.lua" --set variant=tail --seeds 1..40 --runs-per-child 40
nfail=$(awk '$1 == "fail" { print $2 }' "$TMP/out")
CHECKS=$((CHECKS + 1))
[ "${nfail:-0}" -gt 0 ] && [ "$nfail" -lt 40 ] || fail "msquic tail: want some failing runs, got '$nfail'"

# Errors and a crash in the middle of a child's runs: seed 2 fails before
# its world, 4 after it, 5 crashes the child (the TLSIM_TEST_CRASH_SEED
# hook). With 3 runs per child the second child (seeds 4 5 6) dies at 5;
# seed 6 gets a child of its own.
FLAKY="$SRC/tests/scenarios/flaky.lua"
TLSIM_TEST_CRASH_SEED=5 expect_run 1 "" -- sweep "$FLAKY" --seeds 1..9 --trace "$TMP/f1.db"
grep -v '^trace:' "$TMP/out" >"$TMP/f1.txt"
for k in 2 3 9; do
	for j in 1 2; do
		rm -f "$TMP/fk.db"
		TLSIM_TEST_CRASH_SEED=5 expect_run 1 "" -- sweep "$FLAKY" --seeds 1..9 --trace "$TMP/fk.db" --runs-per-child $k --jobs $j
		check "flaky, $k per child, jobs $j: table" "$(grep -v '^trace:' "$TMP/out")" "$(cat "$TMP/f1.txt")"
		check "flaky, $k per child, jobs $j: rows" \
			"$(sqlite3 "$TMP/fk.db" "SELECT group_concat(seed || ' ' || outcome || ' ' || ifnull(reason, '-'), ',') FROM run")" \
			"$(sqlite3 "$TMP/f1.db" "SELECT group_concat(seed || ' ' || outcome || ' ' || ifnull(reason, '-'), ',') FROM run")"
	done
done
check "flaky rows" "$(sqlite3 "$TMP/fk.db" "SELECT group_concat(seed || ' ' || outcome, ',') FROM run")" \
	"1 pass,2 error,3 fail,4 error,5 crash,6 fail,7 pass,8 pass,9 fail"
check "the crash" "$(sqlite3 "$TMP/fk.db" "SELECT reason FROM run WHERE seed = 5")" "signal 11 (SIGSEGV)"

# --resume with the runs of seeds 5..12 in the trace: the seeds around
# them run, children's shares spanning the gap; by seed, the same runs as
# one sweep over 1..30.
RACE="$SC/msquic_shutdown_race.lua"
expect_run 1 "" -- sweep "$RACE" --set variant=tail --seeds 1..30 --trace "$TMP/all.db" -q
expect_run 1 "" -- sweep "$RACE" --set variant=tail --seeds 5..12 --trace "$TMP/res.db" -q
expect_run 1 "resumed: 8 of the 30 runs" -- sweep "$RACE" --set variant=tail --seeds 1..30 --trace "$TMP/res.db" --resume --runs-per-child 4 --jobs 2
q="SELECT group_concat(seed || ':' || outcome || ':' || digest, ',') FROM (SELECT * FROM run ORDER BY seed)"
check "resumed by seed" "$(sqlite3 "$TMP/res.db" "$q")" "$(sqlite3 "$TMP/all.db" "$q")"
check "resumed: each seed once" "$(sqlite3 "$TMP/res.db" "SELECT count(DISTINCT seed) || ' ' || count(*) FROM run")" "30 30"

# Bad values.
for v in 0 100001 x ""; do
	expect_run 2 "--runs-per-child needs an integer from 1 to 100000, got '$v'" -- sweep "$RACE" --seeds 1..2 --runs-per-child "$v"
	expect_one_line_error
done
expect_run 2 "runs-per-child" -- run "$RACE" --runs-per-child 2
expect_one_line_error

[ "$FAILS" -eq 0 ] || exit 1
echo "ok: $CHECKS checks"
