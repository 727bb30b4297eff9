# The TLS endpoint's trace and robustness: async hooks as pending
# operations with their tls rows, keys per level and direction, TLS
# determinism across processes, and hostile bytes ending in an alert or an
# error (never a crash or a hang) over many seeds.
. "$2/tests/lib.sh"
T="$SRC/tests/scenarios"
DB="$TMP/a.db"
expect_run 0 ": pass" -- run "$T/tls_async.lua" --trace "$DB"
for r in verify sign hello; do
	expect_run 0 ": pass" -- run "$T/tls_async.lua" --set reject=$r
done
q() { sqlite3 "$DB" "$1"; }
check() {
	CHECKS=$((CHECKS + 1))
	got=$(q "$2")
	[ "$got" = "$3" ] || fail "$1: got '$got', want '$3'"
}
check "async steps in order" \
	"SELECT group_concat(node || ':' || event, ' ') FROM (SELECT * FROM tls WHERE event LIKE '%pending' OR event LIKE '%_done' AND event <> 'handshake_done' ORDER BY seq)" \
	"server:client_hello_pending server:client_hello_done server:sign_pending server:sign_done client:verify_pending client:verify_done"
check "keys per level and direction" \
	"SELECT group_concat(node || ':' || level || ':' || direction, ' ') FROM (SELECT * FROM tls WHERE event = 'keys' ORDER BY node, level, direction)" \
	"client:application:read client:application:write client:handshake:read client:handshake:write server:application:read server:application:write server:handshake:read server:handshake:write"
check "key log lines for decryption" \
	"SELECT count(*) FROM tls WHERE event = 'keys' AND detail GLOB '*_SECRET* [0-9a-f]* [0-9a-f]*'" "8"
check "completions are API operations" \
	"SELECT group_concat(op_type || ':' || cause_kind, ' ') FROM (SELECT * FROM op WHERE action = 'enqueue' AND op_type LIKE '%complete' ORDER BY seq)" \
	"client_hello_complete:api sign_complete:api validation_complete:api"
check "the write queued while the check was pending ran before it completed" \
	"SELECT (SELECT min(seq) FROM op WHERE op_type = 'write' AND action = 'complete') < (SELECT min(seq) FROM op WHERE op_type = 'validation_complete' AND action = 'dequeue')" "1"
check "segments are packet rows" \
	"SELECT count(*) > 0 FROM packet WHERE proto = 'tcp' AND ptype = 'SYN'" "1"
check "the handshake_done rows" \
	"SELECT group_concat(node, ' ') FROM (SELECT * FROM tls WHERE event = 'handshake_done' ORDER BY seq)" "client server"

for c in ok expired future expiring; do
	expect_run 0 ": pass, 2/2" -- run "$T/tls_validity.lua" --set cert=$c
done
expect_run 0 ": pass, 2/2" -- run "$T/tls_validity.lua" --set cert=expiring --set alg=ed25519

# Determinism of TLS bytes: same seed, two processes: same digest and dump.
for i in 1 2; do
	"$TLSIM" run "$SRC/scripts/scenarios/tls_basic.lua" --seed 11 --trace "$TMP/d$i.db" -q </dev/null >/dev/null 2>&1
done
"$TLSIM" run "$SRC/scripts/scenarios/tls_basic.lua" --seed 12 --trace "$TMP/d3.db" -q </dev/null >/dev/null 2>&1
CHECKS=$((CHECKS + 2))
d1=$(sqlite3 "$TMP/d1.db" "SELECT digest FROM run")
d2=$(sqlite3 "$TMP/d2.db" "SELECT digest FROM run")
d3=$(sqlite3 "$TMP/d3.db" "SELECT digest FROM run")
[ -n "$d1" ] && [ "$d1" = "$d2" ] || fail "tls_basic seed 11: digests differ: $d1 $d2"
[ "$d1" != "$d3" ] || fail "tls_basic seeds 11 and 12 have the same digest"
CHECKS=$((CHECKS + 1))
sqlite3 "$TMP/d1.db" .dump >"$TMP/d1.sql"
sqlite3 "$TMP/d2.db" .dump >"$TMP/d2.sql"
cmp -s "$TMP/d1.sql" "$TMP/d2.sql" || fail "tls_basic seed 11: .dump differs between processes"
CHECKS=$((CHECKS + 1))
n=$(sqlite3 "$TMP/d1.db" "SELECT count(*) FROM packet p JOIN packet q ON p.id <> q.id AND p.data = q.data AND p.run = q.run WHERE p.ptype = 'DATA' AND p.dup_of = -1 AND q.dup_of = -1 AND p.frames NOT LIKE '%rtx%' AND q.frames NOT LIKE '%rtx%'")
[ "$n" = 0 ] || fail "distinct data segments with identical bytes: $n"

# Hostile bytes and a corrupting link, over many seeds.
for when in before after link; do
	for s in $(seq 1 25); do
		CHECKS=$((CHECKS + 1))
		"$TLSIM" run "$T/tls_garbage.lua" --set when=$when --seed $s -q >"$TMP/out" 2>&1 </dev/null
		rc=$?
		if [ $rc -ne 0 ]; then
			fail "tls_garbage when=$when seed $s: exit $rc"
			sed 's/^/  | /' "$TMP/out" >&2
		fi
	done
done
finish
