# What a run puts in the trace: run row, nodes, events, op steps with their
# causes, packets with fates, checks and logs, consistent with each other.
. "$2/tests/lib.sh"
DB="$TMP/t.db"
expect_run 0 "pass" -- run "$SRC/scripts/scenarios/echo_lossy.lua" --seed 5 --set loss=0.15 --trace "$DB"
q() { sqlite3 "$DB" "$1"; }
check() {
	CHECKS=$((CHECKS + 1))
	got=$(q "$2")
	[ "$got" = "$3" ] || fail "$1: got '$got', want '$3'"
}
check "run row" "SELECT outcome, seed, rtrim(params, char(10)), checks_failed FROM run" "pass|5|loss=0.15|0"
check "scenario hash" "SELECT length(scenario_sha256) FROM run" "64"
check "nodes" "SELECT group_concat(name || ':' || kind, ' ') FROM (SELECT * FROM node ORDER BY id)" \
	"world:world script:script server:echo_server client:echo_client"
check "events counted" "SELECT (SELECT count(*) FROM event) = events FROM run" "1"
check "event times never go back" \
	"SELECT count(*) FROM event a JOIN event b ON b.seq = a.seq + 1 WHERE b.time_ns < a.time_ns" "0"
check "start came from the script" \
	"SELECT cause_kind, action FROM op WHERE op_type = 'start' AND action LIKE 'enqueue%'" "api|enqueue"
check "every recv op names a delivered packet" \
	"SELECT count(*) FROM op o LEFT JOIN packet p ON p.id = o.cause_id WHERE o.op_type = 'recv' AND o.action = 'enqueue' AND (p.id IS NULL OR p.fate = 'lost')" "0"
check "every delivered packet became a recv op" \
	"SELECT count(*) FROM packet p WHERE p.fate <> 'lost' AND NOT EXISTS (SELECT 1 FROM op o WHERE o.op_type = 'recv' AND o.cause_id = p.id)" "0"
check "recv enqueued at delivery time" \
	"SELECT count(*) FROM op o JOIN packet p ON p.id = o.cause_id WHERE o.op_type = 'recv' AND o.action = 'enqueue' AND o.time_ns <> p.deliver_ns" "0"
check "every dequeue completes" \
	"SELECT (SELECT count(*) FROM op WHERE action = 'dequeue') = (SELECT count(*) FROM op WHERE action = 'complete')" "1"
check "losses happened" "SELECT count(*) > 10 FROM packet WHERE fate = 'lost' AND reason = 'loss'" "1"
check "packet bytes stored" "SELECT count(*) FROM packet WHERE length(data) <> len" "0"
check "checks recorded" "SELECT count(*) = (SELECT checks FROM run) FROM \"check\"" "1"
check "log has the done line" "SELECT count(*) FROM log WHERE node = 'script' AND text LIKE 'all 50 pings echoed%'" "1"
check "endpoint events logged" "SELECT count(*) FROM log WHERE node = 'client' AND text LIKE 'event echo seq=%'" "50"
finish
