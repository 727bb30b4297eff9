# A traced sweep killed part-way (SIGKILL, at whatever moment the test's
# polling lands on): every run committed before the kill is intact and
# queryable (PRAGMA integrity_check, each run has all its rows, no stray
# rows, every digest recomputes), the runs of the batch in progress are
# absent (the stored seeds are a prefix of the range: runs are stored in
# seed order), and `--resume` runs only the missing seeds. Killed twice:
# the sweep process alone (its children die with it, PR_SET_PDEATHSIG),
# then a resumed sweep with its whole process group. The finished trace
# is the trace of one uninterrupted sweep: same `sqlite3 .dump`, so the
# same run ids and seed/digest pairs, and the same closing table. Then
# what --resume refuses.
. "$2/tests/lib.sh"
RACE="$SRC/scripts/scenarios/msquic_shutdown_race.lua"
N=${TLSIM_SWEEP_CRASH_SEEDS:-800}
DB="$TMP/t.db"
ARGS="$RACE --set variant=tail --seeds 1..$N --jobs 2 --trace"

runs() { trace_runs "$DB"; }

# alive PID...: those still running (a zombie waiting to be reaped has
# stopped running).
alive() {
	for p in "$@"; do
		st=$(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null) || continue
		[ "$st" != Z ] && echo "$p"
	done
}

# intact LABEL: the checks on a trace left by a killed sweep; sets KEPT.
intact() {
	KEPT=$(runs)
	CHECKS=$((CHECKS + 1))
	[ "$KEPT" -gt 0 ] && [ "$KEPT" -lt "$N" ] ||
		fail "$1: the kill did not land part-way: $KEPT of $N runs"
	check "$1: integrity" "$(sqlite3 "$DB" "PRAGMA integrity_check")" ok
	check "$1: the stored seeds are 1..$KEPT" \
		"$(sqlite3 "$DB" "SELECT min(seed) || ' ' || max(seed) || ' ' || count(DISTINCT seed) FROM run")" \
		"1 $KEPT $KEPT"
	check "$1: runs missing rows" "$(sqlite3 "$DB" "SELECT count(*) FROM run r WHERE rows <>
		(SELECT count(*) FROM node WHERE run = r.id) + (SELECT count(*) FROM event WHERE run = r.id) +
		(SELECT count(*) FROM op WHERE run = r.id) + (SELECT count(*) FROM packet WHERE run = r.id) +
		(SELECT count(*) FROM tls WHERE run = r.id) + (SELECT count(*) FROM \"check\" WHERE run = r.id) +
		(SELECT count(*) FROM log WHERE run = r.id)")" 0
	check "$1: rows of no run" "$(sqlite3 "$DB" "SELECT
		(SELECT count(*) FROM op WHERE run NOT IN (SELECT id FROM run)) +
		(SELECT count(*) FROM packet WHERE run NOT IN (SELECT id FROM run)) +
		(SELECT count(*) FROM \"check\" WHERE run NOT IN (SELECT id FROM run))")" 0
	# Every stored run's rows hash to its digest: merge recomputes each
	# copied run's digest and compares it with the stored one.
	rm -f "$TMP/verify.db"
	expect_run 0 "merged $KEPT runs into .* digests verified" -- merge "$TMP/verify.db" "$DB"
	check "$1: digest of the last run, read in place" \
		"$("$BUILD/tests/tlsim_tracecrash" digest "$DB" "$KEPT")" \
		"$(sqlite3 "$DB" "SELECT digest FROM run WHERE id = $KEPT")"
}

# 1. The sweep process alone is killed: its runs go with it.
"$TLSIM" sweep $ARGS "$DB" -q </dev/null >/dev/null 2>&1 &
pid=$!
wait_until more_runs "$DB" 0
# Catch it with runs in flight (while it commits a batch it may have none).
i=0
kids=$(children $pid)
while [ -z "$kids" ] && [ $i -lt 500 ]; do
	sleep 0.002
	kids=$(children $pid)
	i=$((i + 1))
done
kill -KILL $pid
wait $pid
check "sweep killed" "$?" 137
i=0
while [ -n "$(alive $kids)" ] && [ $i -lt 200 ]; do
	sleep 0.01
	i=$((i + 1))
done
check "its runs died with it" "$(alive $kids | tr '\n' ' ')" ""
CHECKS=$((CHECKS + 1))
[ -n "$kids" ] || fail "the sweep had no child running when it was killed ($i tries, $(runs) runs)"
intact "sweep killed"
first=$KEPT

# 2. Resumed, then killed with its process group, as a terminal's ^C or
# a batch scheduler would.
setsid "$TLSIM" sweep $ARGS "$DB" --resume -q </dev/null >/dev/null 2>&1 &
pid=$!
wait_until more_runs "$DB" "$first"
kill -KILL -$pid
wait $pid
check "resumed sweep killed" "$?" 137
intact "resumed sweep killed"
echo "killed at $first runs, then at $KEPT of $N"

# 3. Resumed to the end; the same as one sweep that was never killed.
expect_run 1 "" -- sweep $ARGS "$DB" --resume
cp "$TMP/out" "$TMP/resumed.txt"
check "resumed line" "$(grep '^resumed:' "$TMP/resumed.txt")" \
	"resumed: $KEPT of the $N runs were in $DB already"
check "trace line" "$(grep '^trace:' "$TMP/resumed.txt")" "trace: $DB, runs $((KEPT + 1))..$N"
expect_run 1 "" -- sweep $ARGS "$TMP/clean.db"
check "closing table" "$(grep -v '^resumed:\|^trace:' "$TMP/resumed.txt")" \
	"$(grep -v '^trace:' "$TMP/out")"
check "integrity" "$(sqlite3 "$DB" "PRAGMA integrity_check")" ok
sqlite3 "$DB" .dump >"$TMP/resumed.sql"
sqlite3 "$TMP/clean.db" .dump >"$TMP/clean.sql"
CHECKS=$((CHECKS + 1))
cmp -s "$TMP/resumed.sql" "$TMP/clean.sql" ||
	fail "the resumed trace differs from an uninterrupted sweep's: $(diff "$TMP/resumed.sql" "$TMP/clean.sql" | head -5 | cut -c1-200)"
check "seed/digest pairs" \
	"$(sqlite3 "$DB" "SELECT group_concat(seed || ':' || digest) FROM run")" \
	"$(sqlite3 "$TMP/clean.db" "SELECT group_concat(seed || ':' || digest) FROM run")"

# Resuming a finished sweep runs nothing and prints the same table.
expect_run 1 "resumed: $N of the $N runs were in $DB already" -- sweep $ARGS "$DB" --resume
check "nothing new" "$(grep '^trace:' "$TMP/out")" "trace: $DB, no new runs"
check "finished: same table" "$(grep -v '^resumed:\|^trace:' "$TMP/out")" \
	"$(grep -v '^resumed:\|^trace:' "$TMP/resumed.txt")"
check "finished: no new run" "$(runs)" "$N"

# A batch is committed about a second after its first run even when no
# run finishes meanwhile: a slow run does not keep the finished ones
# uncommitted (and the write lock taken).
cat >"$TMP/slow.lua" <<'LUA'
local w = tlsim.world{ seed = arg.seed }
if arg.seed == 2 then local x = 0; for i = 1, 2e9 do x = x + i end end
w:expect(true, "ran")
LUA
DB="$TMP/slow.db"
"$TLSIM" sweep "$TMP/slow.lua" --seeds 1..2 --trace "$DB" --max-instructions 100000000000 -q \
	</dev/null >/dev/null 2>&1 &
pid=$!
wait_until more_runs "$DB" 0
check "seed 1 committed while seed 2 runs" "$(kill -0 $pid 2>/dev/null && echo running)" running
kill -KILL $pid
wait $pid
check "slow: runs" "$(runs)" 1

# Gaps anywhere (runs made by `tlsim run`, a seed twice, a run of other
# parameters, another shard), and race queries over old and new runs.
Q="$SRC/scripts/queries/msquic_close.sql"
G="$TMP/gaps.db"
for s in 3 17 17; do
	"$TLSIM" run "$RACE" --seed $s --set variant=tail --trace "$G" -q </dev/null >/dev/null 2>&1
done
"$TLSIM" run "$RACE" --seed 5 --trace "$G" -q </dev/null >/dev/null 2>&1
"$TLSIM" sweep "$RACE" --set variant=tail --seeds 20..25 --trace "$G" -q </dev/null >/dev/null 2>&1
expect_run 1 "resumed: 8 of the 40 runs" -- sweep "$RACE" --set variant=tail --seeds 1..40 --jobs 2 --trace "$G" --resume --query "$Q"
cp "$TMP/out" "$TMP/gaps.txt"
expect_run 1 "" -- sweep "$RACE" --set variant=tail --seeds 1..40 --trace "$TMP/clean40.db" --query "$Q"
check "gaps: same table" "$(grep -v '^resumed:\|^trace:' "$TMP/gaps.txt")" "$(grep -v '^trace:' "$TMP/out")"
check "gaps: seed/digest pairs" \
	"$(sqlite3 "$G" "SELECT group_concat(seed || ':' || digest) FROM (SELECT seed, digest FROM run WHERE params <> '' GROUP BY seed ORDER BY seed)")" \
	"$(sqlite3 "$TMP/clean40.db" "SELECT group_concat(seed || ':' || digest) FROM run")"
# A shard resumes its own seeds only.
"$TLSIM" sweep "$RACE" --set variant=tail --seeds 1..40 --shard 2/3 --trace "$TMP/sh.db" -q </dev/null >/dev/null 2>&1
expect_run 1 "resumed: 13 of the 13 runs" -- sweep "$RACE" --set variant=tail --seeds 1..40 --shard 2/3 --trace "$TMP/sh.db" --resume
expect_run 1 "resumed: 0 of the 14 runs" -- sweep "$RACE" --set variant=tail --seeds 1..40 --shard 1/3 --trace "$TMP/sh.db" --resume

# Refused, one line, exit 2, the trace untouched: a changed scenario,
# runs of another tlsim, no --trace.
bad() {
	re=$1
	shift
	expect_run 2 "$re" -- "$@"
	expect_one_line_error
}
cp "$SRC/scripts/scenarios/echo_basic.lua" "$TMP/s.lua"
"$TLSIM" sweep "$TMP/s.lua" --seeds 1..5 --trace "$TMP/s.db" -q </dev/null >/dev/null 2>&1
echo "-- changed" >>"$TMP/s.lua"
sum=$(cksum <"$TMP/s.db")
bad "^tlsim sweep: --resume: $TMP/s.db holds seed 1 of this sweep from another version of s.lua \(SHA-256 [0-9a-f]{16}\.\.\., now [0-9a-f]{16}\.\.\.\); sweep into a new trace$" \
	sweep "$TMP/s.lua" --seeds 1..8 --trace "$TMP/s.db" --resume
check "refused: trace untouched" "$(cksum <"$TMP/s.db")" "$sum"
# Seeds outside the changed scenario's runs are no conflict.
expect_run 0 "resumed: 0 of the 3 runs" -- sweep "$TMP/s.lua" --seeds 6..8 --trace "$TMP/s.db" --resume
cp "$SRC/scripts/scenarios/echo_basic.lua" "$TMP/s.lua"
sqlite3 "$TMP/s.db" "UPDATE run SET version = '0.0.1' WHERE seed = 2"
bad "^tlsim sweep: --resume: $TMP/s.db holds seed 2 of this sweep run by tlsim 0\.0\.1, this is tlsim [0-9.]+; resume with that one or sweep into a new trace$" \
	sweep "$TMP/s.lua" --seeds 1..5 --trace "$TMP/s.db" --resume
bad "^tlsim sweep: --resume needs --trace FILE" sweep "$TMP/s.lua" --seeds 1..5 --resume
finish
