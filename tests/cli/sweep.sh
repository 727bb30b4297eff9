# tlsim sweep and tlsim merge: the trace does not depend on --jobs, the
# closing table counts outcomes and names failed expectations with their
# seeds, a crashing child is recorded and the sweep goes on, a swept run
# is the run `tlsim run --seed S` makes (also when a child's arena runs
# out), an untraced sweep prints the same table, --query counts the runs
# a race query matches, merging two sweeps equals one sweep over the
# union, bad options are one-line errors.
. "$2/tests/lib.sh"
SC="$SRC/scripts/scenarios"
RACE="$SC/msquic_shutdown_race.lua"

check() {
	CHECKS=$((CHECKS + 1))
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

# variant=tail fails for some seeds and passes for others.
expect_run 1 "the server drains within 3 RTT of the client's call" -- sweep "$RACE" --set variant=tail --seeds 1..16 --trace "$TMP/j1.db"
cp "$TMP/out" "$TMP/table1"
expect_run 1 "" -- sweep "$RACE" --set variant=tail --seeds 1..16 --trace "$TMP/j2.db" --jobs 2
cp "$TMP/out" "$TMP/table2"
sqlite3 "$TMP/j1.db" .dump >"$TMP/j1.sql"
sqlite3 "$TMP/j2.db" .dump >"$TMP/j2.sql"
CHECKS=$((CHECKS + 1))
cmp -s "$TMP/j1.sql" "$TMP/j2.sql" || fail "--jobs 1 and --jobs 2 give different traces"
check "digests by seed" "$(sqlite3 "$TMP/j1.db" "SELECT group_concat(seed || ':' || digest) FROM run")" \
	"$(sqlite3 "$TMP/j2.db" "SELECT group_concat(seed || ':' || digest) FROM run")"
check "runs in seed order" "$(sqlite3 "$TMP/j1.db" "SELECT count(*) FROM run WHERE id = seed")" 16
check "same table" "$(grep -v "^trace:" "$TMP/table2")" "$(grep -v "^trace:" "$TMP/table1")"
pass=$(awk '$1 == "pass" { print $2 }' "$TMP/table1")
nfail=$(awk '$1 == "fail" { print $2 }' "$TMP/table1")
CHECKS=$((CHECKS + 1))
[ "${pass:-0}" -gt 0 ] && [ "${nfail:-0}" -gt 0 ] && [ $((pass + nfail)) -eq 16 ] ||
	fail "want pass and fail counts adding to 16, got pass '$pass' fail '$nfail'"
check "pass count in the trace" "$(sqlite3 "$TMP/j1.db" "SELECT count(*) FROM run WHERE outcome = 'pass'")" "$pass"
first=$(sqlite3 "$TMP/j1.db" "SELECT min(seed) FROM run WHERE outcome <> 'pass'")
CHECKS=$((CHECKS + 1))
grep -Eq "^ +seeds $first( |$)" "$TMP/table1" || fail "the table does not list seed $first"
check "reproduce line" "$(grep '^reproduce:' "$TMP/table1")" \
	"reproduce: tlsim run $RACE --seed $first --set variant=tail"
# The command it prints does fail.
expect_run 1 "expectation failed" -- run "$RACE" --seed "$first" --set variant=tail
CHECKS=$((CHECKS + 1))
ls "$TMP"/*.tmp* >/dev/null 2>&1 && fail "slot traces left behind: $(ls "$TMP"/*.tmp*)"
for id in 1 16; do
	check "stored digest of run $id" "$("$BUILD/tests/tlsim_tracecrash" digest "$TMP/j1.db" $id)" \
		"$(sqlite3 "$TMP/j1.db" "SELECT digest FROM run WHERE id = $id")"
done

# A sweep's runs are the runs `tlsim run --seed S --trace` makes (the
# children run on their main thread, sim_entropy_fresh_thread; `run` on
# a fresh one): QUIC over every seed of the sweep, and TLS.
for s in $(seq 1 16); do
	"$TLSIM" run "$RACE" --seed $s --set variant=tail --trace "$TMP/runs.db" -q </dev/null >/dev/null 2>&1
done
check "sweep digests = run digests" \
	"$(sqlite3 "$TMP/j1.db" "SELECT group_concat(seed || ':' || digest) FROM run")" \
	"$(sqlite3 "$TMP/runs.db" "SELECT group_concat(seed || ':' || digest) FROM run")"
# The same when a child's arena (sim/arena.h) runs out early in the run
# and glibc serves the rest, blocks of both kinds freed and reallocated.
TLSIM_TEST_ARENA_BYTES=65536 "$TLSIM" sweep "$RACE" --set variant=tail --seeds 1..4 --trace "$TMP/small.db" -q </dev/null >/dev/null 2>&1
check "sweep digests with a small arena = run digests" \
	"$(sqlite3 "$TMP/small.db" "SELECT group_concat(seed || ':' || digest) FROM run")" \
	"$(sqlite3 "$TMP/runs.db" "SELECT group_concat(seed || ':' || digest) FROM run WHERE seed <= 4")"
"$TLSIM" sweep "$SC/tls_basic.lua" --seeds 5..7 --jobs 2 --trace "$TMP/tls.db" -q </dev/null >/dev/null 2>&1
for s in 5 6 7; do
	"$TLSIM" run "$SC/tls_basic.lua" --seed $s --trace "$TMP/tlsrun.db" -q </dev/null >/dev/null 2>&1
done
check "TLS sweep digests = run digests" \
	"$(sqlite3 "$TMP/tls.db" "SELECT group_concat(seed || ':' || digest) FROM run")" \
	"$(sqlite3 "$TMP/tlsrun.db" "SELECT group_concat(seed || ':' || digest) FROM run")"

# Tracing off (no --trace): no rows are made, the same table (but for the
# trace line), for any --jobs.
for j in 1 2; do
	expect_run 1 "" -- sweep "$RACE" --set variant=tail --seeds 1..16 --jobs $j
	check "untraced table, --jobs $j" "$(cat "$TMP/out")" "$(grep -v "^trace:" "$TMP/table1")"
done

# Race queries: msquic_close.sql returns rows for every run of the buggy
# variant and for none of the fixed one; without --trace the runs go to a
# temporary trace that is deleted.
Q="$SRC/scripts/queries/msquic_close.sql"
mkdir "$TMP/qtmp"
TMPDIR="$TMP/qtmp" expect_run 1 "" -- sweep "$RACE" --set variant=buggy --seeds 1..6 --jobs 2 --query "$Q" --query "$SRC/scripts/queries/lost_packets.sql"
check "query section" "$(sed -n '/^race queries/,$p' "$TMP/out")" "race queries (runs with rows):
        6  100.0%  $Q
                  seeds 1 2 3 4 5 ...
        0    0.0%  $SRC/scripts/queries/lost_packets.sql
reproduce: tlsim run $RACE --seed 1 --set variant=buggy"
check "query temporary files" "$(ls -A "$TMP/qtmp")" ""
expect_run 0 "" -- sweep "$RACE" --set variant=fixed --seeds 1..4 --query "$Q" --trace "$TMP/fixed.db"
check "fixed: no run matches" "$(grep -F "$Q" "$TMP/out")" "        0    0.0%  $Q"
expect_run 1 "" -- sweep "$RACE" --set variant=tail --seeds 1..16 --query "$Q" --trace "$TMP/q16.db"
check "query counts the runs sqlite3 finds" "$(grep -F "$Q" "$TMP/out" | awk '{ print $1 }')" \
	"$(sqlite3 "$TMP/q16.db" <"$Q" | awk 'NR > 2 { print $1 }' | sort -u | wc -l)"

# Errors and crashes, traced and not: a script error after the world is
# made keeps its run (outcome error); one before it, and a crash, leave no
# run and are recorded with the exit status or signal.
FLAKY="$SRC/tests/scenarios/flaky.lua"
TLSIM_TEST_CRASH_SEED=5 expect_run 1 "" -- sweep "$FLAKY" --seeds 1..7 --trace "$TMP/flaky.db"
cp "$TMP/out" "$TMP/flaky_traced"
TLSIM_TEST_CRASH_SEED=5 expect_run 1 "" -- sweep "$FLAKY" --seeds 1..7 --jobs 3
check "flaky, untraced = traced" "$(cat "$TMP/out")" "$(grep -v '^trace:' "$TMP/flaky_traced")"
check "flaky table" "$(sed -n '2,$p' "$TMP/out" | grep -v '^reproduce')" "  outcome     runs       %
  pass           2   28.6%
  fail           2   28.6%
  error          2   28.6%
  crash          1   14.3%
failed expectations:
        2   28.6%  seed not a multiple of 3
                  seeds 3 6
errors, crashes and limits:
        1   14.3%  exit 2: $FLAKY:6: no world for seed 2
                  seeds 2
        1   14.3%  $FLAKY:8: boom at seed 4
                  seeds 4
        1   14.3%  signal 11 (SIGSEGV)
                  seeds 5"
check "flaky rows" "$(sqlite3 "$TMP/flaky.db" "SELECT group_concat(seed || ' ' || outcome, ',') FROM run")" \
	"1 pass,2 error,3 fail,4 error,5 crash,6 fail,7 pass"

# A passing scenario; without --trace nothing is left in TMPDIR.
mkdir "$TMP/tmpdir"
TMPDIR="$TMP/tmpdir" expect_run 0 "pass +20 +100.0%" -- sweep "$SC/echo_basic.lua" --seeds 1..20 --jobs 3
check "temporary files" "$(ls -A "$TMP/tmpdir")" ""

# A child killed by a signal (the TLSIM_TEST_CRASH_SEED test hook).
TLSIM_TEST_CRASH_SEED=3 expect_run 1 "signal 11 \(SIGSEGV\)" -- sweep "$SC/echo_basic.lua" --seeds 1..5 --jobs 2 --trace "$TMP/crash.db"
CHECKS=$((CHECKS + 1))
grep -Eq "^ +seeds 3$" "$TMP/out" || fail "the crash's seed is not listed"
check "crash rows" "$(sqlite3 "$TMP/crash.db" "SELECT group_concat(seed || ' ' || outcome || ' ' || ifnull(reason, '-'), ',') FROM run")" \
	"1 pass -,2 pass -,3 crash signal 11 (SIGSEGV),4 pass -,5 pass -"
check "crash run digest" "$("$BUILD/tests/tlsim_tracecrash" digest "$TMP/crash.db" 3)" \
	"$(sqlite3 "$TMP/crash.db" "SELECT digest FROM run WHERE id = 3")"

# Two sweeps merged equal one sweep over the union.
expect_run 1 "" -- sweep "$RACE" --set variant=tail --seeds 1..9 --trace "$TMP/a.db" --jobs 2 -q
expect_run 1 "" -- sweep "$RACE" --set variant=tail --seeds 10..16 --trace "$TMP/b.db" -q
CHECKS=$((CHECKS + 1))
[ -s "$TMP/out" ] && fail "-q printed: $(cat "$TMP/out")"
expect_run 0 "merged 16 runs into $TMP/u.db \(runs 1..16\), digests verified" -- merge "$TMP/u.db" "$TMP/a.db" "$TMP/b.db"
sqlite3 "$TMP/u.db" .dump >"$TMP/u.sql"
CHECKS=$((CHECKS + 1))
cmp -s "$TMP/j1.sql" "$TMP/u.sql" || fail "merged sweeps differ from one sweep over the union"
check "merged digests by seed" "$(sqlite3 "$TMP/u.db" "SELECT group_concat(seed || ':' || digest) FROM run")" \
	"$(sqlite3 "$TMP/j1.db" "SELECT group_concat(seed || ':' || digest) FROM run")"
# Appending again: new ids, same digests.
expect_run 0 "runs 17..21" -- merge "$TMP/u.db" "$TMP/crash.db"
check "appended" "$(sqlite3 "$TMP/u.db" "SELECT group_concat(seed) FROM run WHERE id > 16")" "1,2,3,4,5"

# Bad options and inputs: one line, exit 2.
bad() {
	re=$1
	shift
	expect_run 2 "$re" -- "$@"
	expect_one_line_error
}
bad "^tlsim sweep: --seeds needs A..B" sweep "$RACE" --seeds 5..2
bad "^tlsim sweep: --seeds needs A..B with A <= B and at most 10000000 seeds, got 'junk'" sweep "$RACE" --seeds junk
bad "^tlsim sweep: --seeds needs A..B" sweep "$RACE" --seeds 1..x
bad "^tlsim sweep: --seeds needs A..B" sweep "$RACE" --seeds 1..20000000
bad "^tlsim sweep: --jobs needs an integer from 1 to 256, got '0'" sweep "$RACE" --seeds 1..2 --jobs 0
bad "^tlsim sweep: --jobs needs an integer from 1 to 256, got '257'" sweep "$RACE" --seeds 1..2 --jobs 257
bad "^tlsim sweep: unknown option '--frobnicate'" sweep "$RACE" --seeds 1..2 --frobnicate
bad "^tlsim sweep: unknown option '--seed'" sweep "$RACE" --seeds 1..2 --seed 3
bad "^tlsim sweep: missing SCENARIO.lua" sweep --seeds 1..2
bad "^tlsim sweep: missing --seeds A..B" sweep "$RACE"
bad "^tlsim: cannot read scenario '$TMP/missing.lua'" sweep "$TMP/missing.lua" --seeds 1..2
printf 'just some text\n' >"$TMP/text.db"
bad "^tlsim: $TMP/text.db: not a tlsim trace" sweep "$RACE" --seeds 1..2 --trace "$TMP/text.db"
bad "^tlsim: $TMP/text.db: not a tlsim trace" merge "$TMP/m.db" "$TMP/text.db"
bad "^tlsim: $TMP/none.db: no such trace" merge "$TMP/m.db" "$TMP/none.db"
bad "^tlsim: $TMP/u.db: is the output trace" merge "$TMP/u.db" "$TMP/u.db"
bad "^tlsim merge: needs OUT.db and at least one IN.db" merge "$TMP/m.db"
bad "^tlsim merge: unknown option '-x'" merge -x "$TMP/m.db" "$TMP/u.db"
sqlite3 "$TMP/newer.db" .dump >/dev/null
cp "$TMP/a.db" "$TMP/newer.db"
sqlite3 "$TMP/newer.db" "PRAGMA user_version = 99"
bad "^tlsim: $TMP/newer.db: trace schema version 99 is newer than this tlsim" merge "$TMP/m.db" "$TMP/newer.db"
( printf 'BEGIN IMMEDIATE;\nSELECT 1;\n'; sleep 3; printf 'ROLLBACK;\n' ) | sqlite3 "$TMP/a.db" >/dev/null &
lockpid=$!
sleep 1
bad "^tlsim: $TMP/a.db: locked by another writer" merge "$TMP/m.db" "$TMP/a.db"
wait $lockpid
# Shards: three invocations cover 1..16 exactly once, and their merged
# traces hold the same seed/digest pairs as one sweep.
for i in 1 2 3; do
	"$TLSIM" sweep "$RACE" --seeds 1..16 --set variant=tail --shard $i/3 --trace "$TMP/sh$i.db" -q </dev/null >/dev/null 2>&1
done
"$TLSIM" merge "$TMP/shards.db" "$TMP/sh1.db" "$TMP/sh2.db" "$TMP/sh3.db" >/dev/null 2>&1 </dev/null
check "shard sizes" "$(for i in 1 2 3; do sqlite3 "$TMP/sh$i.db" "SELECT count(*) FROM run"; done | tr '\n' ' ')" "6 5 5 "
check "merged shards equal one sweep" \
	"$(sqlite3 "$TMP/shards.db" "SELECT group_concat(seed || ':' || digest) FROM (SELECT seed, digest FROM run ORDER BY seed)")" \
	"$(sqlite3 "$TMP/j1.db" "SELECT group_concat(seed || ':' || digest) FROM (SELECT seed, digest FROM run ORDER BY seed)")"
bad "^tlsim sweep: --query $TMP/none.sql: No such file or directory" sweep "$RACE" --seeds 1..2 --query "$TMP/none.sql"
bad "^tlsim sweep: --query needs a .sql file" sweep "$RACE" --seeds 1..2 --query
printf '.headers on\nSELECT seed FROM run;\n' >"$TMP/norun.sql"
bad "^tlsim sweep: --query $TMP/norun.sql: the first column of every statement must be the run id, named run \(got seed\)" sweep "$RACE" --seeds 1..2 --query "$TMP/norun.sql"
printf 'SELECT run FROM nosuchtable;\n' >"$TMP/badsql.sql"
bad "^tlsim sweep: --query $TMP/badsql.sql: no such table: nosuchtable" sweep "$RACE" --seeds 1..2 --query "$TMP/badsql.sql"
printf 'DELETE FROM run;\n' >"$TMP/writes.sql"
bad "^tlsim sweep: --query $TMP/writes.sql: a statement writes" sweep "$RACE" --seeds 1..2 --query "$TMP/writes.sql" --trace "$TMP/w.db"
check "a refused query writes nothing" "$(sqlite3 "$TMP/w.db" "SELECT count(*) FROM run")" 0
printf -- '-- nothing\n' >"$TMP/empty.sql"
bad "^tlsim sweep: --query $TMP/empty.sql: no SQL statement in it" sweep "$RACE" --seeds 1..2 --query "$TMP/empty.sql"
bad "^tlsim sweep: --shard needs I/N with 1 <= I <= N, got .4/3." sweep "$RACE" --seeds 1..4 --shard 4/3
bad "^tlsim sweep: --shard needs I/N with 1 <= I <= N, got .x." sweep "$RACE" --seeds 1..4 --shard x
bad "^tlsim sweep: bad jobs, seed range or shard \(a shard with no seeds\)" sweep "$RACE" --seeds 1..2 --shard 3/3
check "help lists sweep and merge" "$("$TLSIM" --help | grep -Ec '^  (sweep|merge) ')" 2

finish
