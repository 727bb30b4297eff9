# tlsim explore: on the MsQuic tail variant (shutdown and
# validation_complete from two timers at the same time) exploration of one
# passing seed finds the failing order; every failing schedule is saved with
# its choices and `tlsim replay` reproduces it; the result does not depend
# on --jobs; exhaustive search is complete within its depth; run
# --schedule and bad arguments.
. "$2/tests/lib.sh"
S="$SRC/scripts/scenarios/msquic_shutdown_race.lua"

# Seed 1 passes as the seed orders things...
expect_run 0 "" -- run "$S" --set variant=tail --seed 1 -q
# ...exhaustive search one choice away finds the failing order.
DB="$TMP/ex.db"
expect_run 1 "3 choice points in the seed's run, 4 schedules run" -- explore "$S" --set variant=tail --seed 1 --strategy exhaustive --trace "$DB"
expect_run 1 "every schedule within 1 deviation from the seed's was run" -- explore "$S" --set variant=tail --seed 1 --strategy exhaustive --trace "$TMP/ex1b.db"
expect_run 1 "the server learns of the close" -- explore "$S" --set variant=tail --seed 1 --strategy exhaustive --trace "$TMP/ex1c.db"
# Depth 3 covers all 2^3 orders of the three binary choice points.
expect_run 1 "8 schedules run" -- explore "$S" --set variant=tail --seed 1 --strategy exhaustive --depth 3 --trace "$TMP/ex3.db"
saved=$(sqlite3 "$DB" "SELECT count(*) FROM run WHERE outcome = 'fail' AND schedule LIKE '%choice %'")
CHECKS=$((CHECKS + 1))
[ "$saved" -ge 1 ] || fail "exhaustive: no failing schedule saved with its choices ($saved)"
# Each saved run replays to its digest, and forcing its schedule by hand
# gives the same failure.
for id in $(sqlite3 "$DB" "SELECT id FROM run"); do
	expect_run 0 "digest [0-9a-f]{16} matches \(fail\)" -- replay "$DB" --run "$id"
done
sqlite3 "$DB" "SELECT schedule FROM run WHERE id = 1" >"$TMP/plan"
expect_run 1 "the server learns of the close" -- run "$S" --set variant=tail --seed 1 --schedule "$TMP/plan"
# The same seed without the schedule passes: the schedule made the difference.
expect_run 0 "" -- run "$S" --set variant=tail --seed 1 -q --trace "$TMP/plain.db"
CHECKS=$((CHECKS + 1))
[ "$(sqlite3 "$TMP/plain.db" "SELECT count(*) FROM run WHERE schedule IS NULL")" = 1 ] ||
	fail "a plain run stored a schedule"

# Random and PCT find it too, and --jobs does not change the result.
for strat in random pct; do
	expect_run 1 "failing .*distinct schedule" -- explore "$S" --set variant=tail --seed 1 --strategy $strat --runs 30 --trace "$TMP/$strat.1.db"
	sed "s/$strat\.1\.db/T/g" "$TMP/out" >"$TMP/$strat.1.out"
	expect_run 1 "" -- explore "$S" --set variant=tail --seed 1 --strategy $strat --runs 30 --jobs 2 --trace "$TMP/$strat.2.db"
	sed "s/$strat\.2\.db/T/g" "$TMP/out" >"$TMP/$strat.2.out"
	CHECKS=$((CHECKS + 1))
	cmp -s "$TMP/$strat.1.out" "$TMP/$strat.2.out" || fail "$strat: --jobs 2 printed a different table"
	a=$(sqlite3 "$TMP/$strat.1.db" "SELECT group_concat(digest || schedule, '|') FROM run")
	b=$(sqlite3 "$TMP/$strat.2.db" "SELECT group_concat(digest || schedule, '|') FROM run")
	CHECKS=$((CHECKS + 1))
	[ -n "$a" ] && [ "$a" = "$b" ] || fail "$strat: --jobs 2 saved different runs"
done
# --stop-first stops at the first failing schedule (schedule 1 here).
expect_run 1 "stopped at the first failing schedule" -- explore "$S" --set variant=tail --seed 1 --strategy exhaustive --stop-first --trace "$TMP/stop.db"
CHECKS=$((CHECKS + 1))
[ "$(sqlite3 "$TMP/stop.db" "SELECT count(*) FROM run")" = 1 ] || fail "--stop-first saved more than one run"
# The fixed variant has no failing order within depth 3.
expect_run 0 "every schedule within 3 deviations" -- explore "$S" --set variant=fixed --seed 1 --strategy exhaustive --depth 3 --trace "$TMP/fixed.db"

# Bad input.
expect_run 2 "^tlsim explore: --strategy must be random, pct or exhaustive, got 'dfs'" -- explore "$S" --strategy dfs
expect_one_line_error
expect_run 2 "^tlsim explore: --depth needs an integer from 1 to 16, got '0'" -- explore "$S" --depth 0
expect_run 2 "^tlsim explore: --runs and --max-runs need an integer" -- explore "$S" --runs -3
expect_run 2 "^tlsim explore: unknown option '--seeds'" -- explore "$S" --seeds 1..2
printf 'choice 1\n' >"$TMP/bad.plan"
expect_run 2 "^tlsim: .*bad.plan:1: choice: expected POINT INDEX" -- run "$S" --schedule "$TMP/bad.plan"
expect_one_line_error
printf 'order keys\nbogus 1\n' >"$TMP/bad2.plan"
expect_run 2 "bad2.plan:2: unknown directive 'bogus'" -- run "$S" --schedule "$TMP/bad2.plan"
printf 'fault 0 xy 1 lost loss\n' >"$TMP/bad3.plan"
expect_run 2 "bad3.plan:1: fault: direction must be ab or ba" -- run "$S" --schedule "$TMP/bad3.plan"
expect_run 2 "^tlsim: cannot read schedule '$TMP/none.plan'" -- run "$S" --schedule "$TMP/none.plan"
expect_run 0 "usage: tlsim explore" -- explore --help
finish
