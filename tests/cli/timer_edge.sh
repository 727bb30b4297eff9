# Timer edges (l:fault action at_timer): a datagram aimed 1 ns before the
# server's idle deadline keeps the connection, 1 ns after finds it closed;
# aimed at the deadline itself, the delivery and the timer tie, so seeds
# split and exhaustive exploration of one seed finds both orders.
. "$2/tests/lib.sh"
S="$SRC/scripts/scenarios/timer_edge.lua"
expect_run 0 "edge -1ns: server $" -- run "$S" --trace "$TMP/t.db"
expect_run 0 "edge \+1ns: server idle_timeout" -- run "$S" --set edge=+1ns --trace "$TMP/t.db"
CHECKS=$((CHECKS + 1))
got=$(sqlite3 "$TMP/t.db" "SELECT group_concat(p.deliver_ns - s.deliver_ns, ',') FROM packet p JOIN (SELECT run, max(deliver_ns) AS deliver_ns FROM packet WHERE dst = 'server' AND deliver_ns < 2000000000 AND parent IS NULL AND fate = 'delivered' GROUP BY run) s ON s.run = p.run WHERE p.reason LIKE 'fault:last ping,at idle%' AND p.parent IS NULL ORDER BY p.run")
[ "$got" = "1999999999,2000000001" ] || fail "aimed deliveries relative to the server's last receipt: $got, want 1999999999,2000000001"
# At the deadline: the seed decides.
expect_run 1 "" -- sweep "$S" --set edge=0ns --set expect=open --seeds 1..12 --trace "$TMP/s.db"
CHECKS=$((CHECKS + 1))
n=$(sqlite3 "$TMP/s.db" "SELECT count(*) FROM run WHERE outcome = 'fail'")
[ "$n" -ge 1 ] && [ "$n" -le 11 ] || fail "edge=0ns: $n of 12 seeds failed, want some but not all"
expect_run 1 "every schedule within 1 deviation" -- explore "$S" --set edge=0ns --set expect=open --seed 1 --strategy exhaustive --trace "$TMP/e.db"
expect_run 1 "failing .*distinct schedules?\)" -- explore "$S" --set edge=0ns --set expect=open --seed 1 --strategy exhaustive --trace "$TMP/e2.db"
# TLS: the server's close_notify aimed at the client's shutdown timeout.
expect_run 0 "edge -1ns: client clean: close_notify exchanged" -- run "$S" --set timer=close_notify
expect_run 0 "edge \+1ns: client timeout: no close_notify from the peer" -- run "$S" --set timer=close_notify --set edge=+1ns
expect_run 1 "" -- sweep "$S" --set timer=close_notify --set edge=0ns --set expect=open --seeds 1..8 --trace "$TMP/c.db"
CHECKS=$((CHECKS + 1))
n=$(sqlite3 "$TMP/c.db" "SELECT count(*) FROM run WHERE outcome = 'fail'")
[ "$n" -ge 1 ] && [ "$n" -le 7 ] || fail "close_notify edge=0ns: $n of 8 seeds failed, want some but not all"
printf 'local w = tlsim.world{}\nlocal l = w:link{}\nl:fault{ action = "at_timer" }\n' >"$TMP/b.lua"
expect_run 2 "b.lua:3: l:fault: action 'at_timer' needs timer = a timer name" -- run "$TMP/b.lua"
finish
