# Per-run caps: each --max-* cap, when reached, ends the run with outcome
# "limit" and a reason naming the cap and its option (exit 1), in the
# summary, in the trace (stored without its rows when the cap is the trace
# rows) and in a sweep's table; the reproduce line carries the cap; the
# trace keeps the caps (run.limits) and replay applies them; bad values
# are one-line usage errors.
. "$2/tests/lib.sh"
S="$SRC/scripts/scenarios"
E="$S/echo_lossy.lua"
M="$S/msquic_shutdown_race.lua"

expect_run 0 "pass" -- run "$E"
expect_run 1 "limit reached: events: 50 run \(--max-events\)" -- run "$E" --max-events 50
expect_run 1 "seed 1: limit, " -- run "$E" --max-events 50
expect_run 1 "reproduce: tlsim run .*echo_lossy.lua --seed 1 --max-events 50$" -- run "$E" --max-events 50
expect_run 1 "limit reached: virtual time: 300ms reached with events still due \(--max-time\)" -- run "$E" --max-time 300ms
expect_run 1 "limit reached: virtual time: 300ms" -- run "$E" --max-time 300000000ns
expect_run 1 "limit reached: packets in flight: more than 1 on link link0 \(--max-inflight\)" -- run "$E" --max-inflight 1
expect_run 1 "limit reached: queued operations: more than 1 in one queue \(--max-queued-ops\)" -- run "$M" --max-queued-ops 1
expect_run 0 "pass" -- run "$M" --max-queued-ops 2
# Trace rows: the run ends at the cap and is stored, outcome limit, without
# its rows; the trace stays usable.
expect_run 1 "limit reached: trace rows: more than 100 in the run \(--max-rows\)" -- run "$E" --max-rows 100 --trace "$TMP/t.db"
expect_run 0 "run 2 in" -- run "$E" --trace "$TMP/t.db"
CHECKS=$((CHECKS + 1))
got=$(sqlite3 "$TMP/t.db" "SELECT outcome || '|' || (reason LIKE '%trace rows: more than 100%') || '|' || (rows > 100) || '|' || (SELECT count(*) FROM event WHERE run = 1) FROM run WHERE id = 1")
[ "$got" = "limit|1|1|0" ] || fail "rows cap: run 1 is '$got', want limit, the reason, rows > 100 and no stored rows"
CHECKS=$((CHECKS + 1))
[ "$(sqlite3 "$TMP/t.db" "PRAGMA integrity_check")" = ok ] || fail "rows cap: integrity_check"
# A cap just above what the run needs changes nothing (same digest).
d1=$(sqlite3 "$TMP/t.db" "SELECT digest FROM run WHERE id = 2")
expect_run 0 "" -- run "$E" --max-events 100000 --max-time 1h --max-inflight 1000 --max-queued-ops 100 --max-rows 100000 --trace "$TMP/t.db" -q
CHECKS=$((CHECKS + 1))
[ "$(sqlite3 "$TMP/t.db" "SELECT digest FROM run WHERE id = 3")" = "$d1" ] || fail "generous caps changed the run"
# In a sweep: its own outcome row, reason in the errors list.
expect_run 1 "limit +3 +100.0%" -- sweep "$E" --seeds 1..3 --max-events 40
expect_run 1 "errors, crashes and limits:" -- sweep "$E" --seeds 1..3 --max-events 40
expect_run 1 "3 +100.0%  .*limit reached: events: 40 run \(--max-events\)" -- sweep "$E" --seeds 1..3 --max-events 40
expect_run 1 "reproduce: tlsim run .*--seed 1 --max-events 40" -- sweep "$E" --seeds 1..3 --max-events 40

# The caps a run ran under are kept with it (run.limits), so that replay
# ends it where it ended: without them the replayed run would go on past
# the cap and differ. Traced runs capped by events, time, in-flight
# packets, queued operations, trace rows and Lua instructions; a sweep's
# runs (stored by the sweep from its children's reports) too.
expect_run 1 "" -- run "$E" --max-events 50 --trace "$TMP/l.db"
expect_run 1 "" -- run "$E" --max-time 300ms --trace "$TMP/l.db"
expect_run 1 "" -- run "$E" --max-inflight 1 --trace "$TMP/l.db"
expect_run 1 "" -- run "$M" --max-queued-ops 1 --trace "$TMP/l.db"
expect_run 1 "" -- run "$E" --max-rows 100 --trace "$TMP/l.db"
expect_run 0 "" -- run "$E" --trace "$TMP/l.db"
check "limits column" "$(sqlite3 "$TMP/l.db" "SELECT group_concat(id || ':' || outcome || ':' || replace(ifnull(limits, '-'), char(10), ';'), ' ') FROM run")" \
	"1:limit:max-events=50; 2:limit:max-time=300000000; 3:limit:max-inflight=1; 4:limit:max-queued-ops=1; 5:limit:max-rows=100; 6:pass:-"
for r in 1 2 3 4 6; do
	expect_run 0 "^run $r of .* replayed: digest [0-9a-f]{16} matches \((limit|pass)\)" -- replay "$TMP/l.db" --run $r
done
# Run 5 was stored without its rows: replay says its digest cannot be
# recomputed, as for any run stored without rows.
expect_run 1 "" -- sweep "$E" --seeds 1..3 --max-events 40 --livelock-events 5000 --trace "$TMP/ls.db" -q
check "sweep limits" "$(sqlite3 "$TMP/ls.db" "SELECT DISTINCT replace(limits, char(10), ';') FROM run")" "livelock-events=5000;max-events=40;"
expect_run 0 "matches \(limit\)" -- replay "$TMP/ls.db" --run 2
# A resumed sweep counts only the runs made under the same caps.
expect_run 1 "resumed: 0 of the 3 runs" -- sweep "$E" --seeds 1..3 --max-events 41 --trace "$TMP/ls.db" --resume
expect_run 1 "resumed: 3 of the 3 runs" -- sweep "$E" --seeds 1..3 --max-events 40 --livelock-events 5000 --trace "$TMP/ls.db" --resume
# A limits value this build does not read is refused, not ignored.
cp "$TMP/l.db" "$TMP/bad.db"
sqlite3 "$TMP/bad.db" "UPDATE run SET limits = 'max-widgets=3' WHERE id = 1"
expect_run 2 "^tlsim: .*bad.db: run 1: unknown run limit 'max-widgets=3'$" -- replay "$TMP/bad.db" --run 1
expect_one_line_error

# Bad values.
expect_run 2 "^tlsim run: --max-events needs a positive integer, got '0'" -- run "$E" --max-events 0
expect_one_line_error
expect_run 2 "^tlsim run: --max-rows needs a positive integer, got 'x'" -- run "$E" --max-rows x
expect_run 2 "^tlsim sweep: --max-inflight needs a positive integer, got '-1'" -- sweep "$E" --seeds 1..2 --max-inflight -1
expect_run 2 "^tlsim run: --max-time needs a positive duration such as 60s or 500ms, got '-5s'" -- run "$E" --max-time -5s
expect_run 2 "^tlsim run: --max-time needs a positive duration" -- run "$E" --max-time=soon
finish
