# Causality and tlsim races: on the MsQuic scenario with shutdown queued at
# the tail from a second timer, the sweep's failing and passing seeds are
# separated by the order of two concurrent operations, and races names it
# on its first line with a seed of each kind; op_concurrent holds that pair
# in every tail run and no such pair when both calls come from one
# callback (program order); event.parent and op.event make the chain from
# an operation back to the script's timer a query.
. "$2/tests/lib.sh"
M="$SRC/scripts/scenarios/msquic_shutdown_race.lua"
DB="$TMP/sw.db"
expect_run 1 "" -- sweep "$M" --set variant=tail --seeds 1..16 --trace "$DB" -q
expect_run 0 "^ 1\. shutdown before validation_complete on client: 100% of failing runs \(([0-9]+)/\1\), 0% of passing \(0/[0-9]+\)$" -- races "$DB"
expect_run 0 "^    failing: seed [0-9]+ \(run [0-9]+\); passing with validation_complete first: seed [0-9]+ \(run [0-9]+\)$" -- races "$DB"
CHECKS=$((CHECKS + 1))
! grep -q '^ 2\.' "$TMP/out" || fail "races: a second line that separates nothing"
# The seeds it names reproduce their group.
fs=$(sed -n 's/^    failing: seed \([0-9]*\) .*/\1/p' "$TMP/out")
ps=$(sed -n 's/.*passing with validation_complete first: seed \([0-9]*\) .*/\1/p' "$TMP/out")
expect_run 1 "" -- run "$M" --set variant=tail --seed "$fs" -q
expect_run 0 "" -- run "$M" --set variant=tail --seed "$ps" -q
# --check: failing by an expectation's name; --runs: a part of the trace.
expect_run 0 "^ 1\. shutdown before validation_complete on client" -- races "$DB" --check "learns of the close"
expect_run 0 "runs \(failing: an expectation matching --check failed\)" -- races "$DB" --check "learns of the close"
expect_run 0 "^sw.db|failing and" -- races "$DB" --runs 1..8
# --query: failing = the runs a race query finds; here the symptom, a
# server that never receives the client's close: the same groups, the
# same first line.
Q="$TMP/no_close.sql"
cat >"$Q" <<'SQL'
.headers on
-- runs where the server never received a CONNECTION_CLOSE
SELECT r.id AS run, r.seed FROM run r
WHERE NOT EXISTS (SELECT 1 FROM tls t WHERE t.run = r.id
                  AND t.node = 'server' AND t.event = 'close_received');
SQL
nf=$(sqlite3 "$DB" "SELECT count(*) FROM run WHERE outcome <> 'pass'")
expect_run 0 "^ 1\. shutdown before validation_complete on client: 100% of failing runs \(([0-9]+)/\1\), 0% of passing \(0/[0-9]+\)$" -- races "$DB" --query "$Q"
expect_run 0 "^.*sw.db: $nf failing and $((16 - nf)) passing runs \(failing: --query returns rows for the run\)$" -- races "$DB" --query "$Q"
# A query that matches every run leaves no passing group.
printf 'SELECT id AS run FROM run;\n' >"$TMP/all.sql"
expect_run 2 "^tlsim: .*sw.db: 16 failing and 0 passing runs \(by --query\)" -- races "$DB" --query "$TMP/all.sql"
printf 'SELECT 1 AS nope;\n' >"$TMP/bad.sql"
expect_run 2 "^tlsim: tlsim races: --query .*bad.sql: the first column of every statement must be the run id, named run \(got nope\)$" -- races "$DB" --query "$TMP/bad.sql"
expect_run 2 "^tlsim: tlsim races: --query .*none.sql: No such file or directory$" -- races "$DB" --query "$TMP/none.sql"
expect_run 2 "give --check or --query, not both" -- races "$DB" --query "$Q" --check x
# op_concurrent: the pair is in every tail run, in the order the run took.
CHECKS=$((CHECKS + 1))
n=$(sqlite3 "$DB" "SELECT count(DISTINCT run) FROM op_concurrent WHERE a_type || b_type IN ('validation_completeshutdown', 'shutdownvalidation_complete')")
[ "$n" = 16 ] || fail "op_concurrent: the pair is in $n of 16 runs"
CHECKS=$((CHECKS + 1))
bad=$(sqlite3 "$DB" "SELECT count(*) FROM op_concurrent c JOIN run r ON r.id = c.run WHERE c.a_type <> c.b_type AND c.first_type = 'shutdown' AND r.outcome = 'pass'")
[ "$bad" = 0 ] || fail "a passing run ran shutdown first ($bad)"
# One callback makes both calls: program order, no concurrent pair.
expect_run 1 "" -- run "$M" --set variant=buggy --trace "$TMP/b.db" -q
CHECKS=$((CHECKS + 1))
[ "$(sqlite3 "$TMP/b.db" "SELECT count(*) FROM op_concurrent WHERE a_type <> b_type")" = 0 ] ||
	fail "buggy variant: calls from one callback reported concurrent"
# Causality columns: the shutdown's enqueue ran in a script timer event
# whose parent is the event that delivered the certificate's callback.
CHECKS=$((CHECKS + 1))
k=$(sqlite3 "$TMP/b.db" "SELECT e.kind || '<' || p.kind FROM op o JOIN event e ON e.run = o.run AND e.seq = o.event JOIN event p ON p.run = e.run AND p.seq = e.parent WHERE o.op_type = 'shutdown' AND o.action LIKE 'enqueue%'")
[ "$k" = "script<drain" ] || fail "shutdown's enqueue event chain is '$k', want script<drain"
CHECKS=$((CHECKS + 1))
[ "$(sqlite3 "$TMP/b.db" "SELECT count(*) FROM event WHERE parent >= seq")" = 0 ] ||
	fail "an event's parent is not an earlier event"
# Bad input.
expect_run 0 "" -- sweep "$SRC/scripts/scenarios/echo_basic.lua" --seeds 1..3 --trace "$TMP/p.db" -q
expect_run 2 "^tlsim: .*p.db: 0 failing and 3 passing runs; races compares the two groups" -- races "$TMP/p.db"
expect_one_line_error
printf 'x\n' >"$TMP/x.db"
expect_run 2 "^tlsim: .*x.db: not a tlsim trace" -- races "$TMP/x.db"
expect_run 2 "^tlsim races: --top needs an integer from 1 to 1000, got '0'" -- races "$DB" --top 0
expect_run 2 "^tlsim races: missing TRACE.db" -- races
expect_run 0 "usage: tlsim races" -- races --help
finish
