# QUIC key update (RFC 9001 6) and the key_phase fault selector:
# scripts/scenarios/key_update.lua passes in each variant, and its trace
# shows packets of both key phases from both ends, the selector acting on
# exactly the datagrams it names, the key update's tls rows, the refusals,
# and the transfer completing; the same seed gives the same trace.
. "$2/tests/lib.sh"
S="$SRC/scripts/scenarios/key_update.lua"
DB="$TMP/t.db"
expect_run 0 ": pass, 8/8" -- run "$S" --trace "$DB"                        # run 1
expect_run 0 ": pass, 8/8" -- run "$S" --set old=late --trace "$DB"         # run 2
expect_run 0 ": pass, 5/5" -- run "$S" --set update=none --trace "$DB"      # run 3
expect_run 0 ": pass, 5/5" -- run "$S" --set update=every --trace "$DB"     # run 4
q() { sqlite3 "$DB" "$1"; }
# kp RUN NODE PHASE: the node's 1-RTT packet rows of that key phase.
kp() {
	q "SELECT count(*) FROM packet WHERE run = $1 AND src = '$2' AND ptype = '1rtt' AND hs_state LIKE '% key_phase=$3'"
}
upd="(SELECT time_ns FROM tls WHERE run = 1 AND node = 'client' AND event = 'key_update')"

# Run 1. Packets of both phases, from both ends.
for node in client server; do
	for phase in 0 1; do
		CHECKS=$((CHECKS + 1))
		[ "$(kp 1 $node $phase)" -gt 0 ] || fail "run 1: no $node 1-RTT packet in key phase $phase"
	done
done
# Every 1-RTT row says its phase, and the client's phase 1 packets all
# follow its phase 0 ones: one update, at the key_update row.
check "run 1: 1-RTT rows without a key phase" \
	"$(q "SELECT count(*) FROM packet WHERE run = 1 AND ptype = '1rtt' AND hs_state NOT GLOB '* key_phase=[01]'")" 0
check "run 1: client phase 0 after phase 1" \
	"$(q "SELECT max(id) < (SELECT min(id) FROM packet WHERE run = 1 AND src = 'client' AND ptype = '1rtt' AND hs_state LIKE '% key_phase=1') FROM packet WHERE run = 1 AND src = 'client' AND ptype = '1rtt' AND hs_state LIKE '% key_phase=0'")" 1
check "run 1: client phase 1 before the update" \
	"$(q "SELECT count(*) FROM packet WHERE run = 1 AND src = 'client' AND ptype = '1rtt' AND hs_state LIKE '% key_phase=1' AND send_ns < $upd")" 0
# The selector: two datagrams touched, each the one its rule names.
check "run 1: datagrams a fault acted on" \
	"$(q "SELECT group_concat(reason || '|' || fate, ' ') FROM (SELECT reason, fate FROM packet WHERE run = 1 AND parent IS NULL AND reason LIKE 'fault:%' ORDER BY id)")" \
	"fault:old phase|reordered fault:first phase 1|lost"
check "run 1: first phase 1 is the client's first phase 1 datagram" \
	"$(q "SELECT id FROM packet WHERE run = 1 AND parent IS NULL AND reason = 'fault:first phase 1'")" \
	"$(q "SELECT min(parent) FROM packet WHERE run = 1 AND src = 'client' AND ptype = '1rtt' AND hs_state LIKE '% key_phase=1'")"
check "run 1: old phase is the client's first phase 0 datagram from the update on" \
	"$(q "SELECT id FROM packet WHERE run = 1 AND parent IS NULL AND reason = 'fault:old phase'")" \
	"$(q "SELECT min(parent) FROM packet WHERE run = 1 AND src = 'client' AND ptype = '1rtt' AND hs_state LIKE '% key_phase=0' AND send_ns >= $upd")"
# The held phase 0 datagram arrives behind phase 1 ones, after the server
# moved its read keys on and before it discarded the old ones.
check "run 1: old phase arrives behind phase 1, while the old keys are kept" \
	"$(q "SELECT h.deliver_ns > (SELECT min(p.deliver_ns) FROM packet p JOIN packet s ON s.run = p.run AND s.parent = p.id WHERE p.run = 1 AND p.src = 'client' AND p.fate = 'delivered' AND s.hs_state LIKE '% key_phase=1') AND h.deliver_ns >= (SELECT time_ns FROM tls WHERE run = 1 AND node = 'server' AND event = 'keys_updated' AND direction = 'read') AND h.deliver_ns < (SELECT time_ns FROM tls WHERE run = 1 AND node = 'server' AND event = 'keys_discarded' AND level = 'application') FROM packet h WHERE h.run = 1 AND h.parent IS NULL AND h.reason = 'fault:old phase'")" 1
# The key update's tls rows, in order, with the phase as code.
check "run 1: key update rows" \
	"$(q "SELECT group_concat(node || ':' || event || ':' || direction || ':' || code, ' ') FROM (SELECT * FROM tls WHERE run = 1 AND level = 'application' AND event IN ('key_update', 'keys_updated', 'keys_discarded') ORDER BY seq)")" \
	"client:key_update:write:1 client:keys_updated:write:1 server:keys_updated:read:1 server:keys_updated:write:1 client:keys_updated:read:1 server:keys_discarded:read:0 client:keys_discarded:read:0"
check "run 1: who initiated" \
	"$(q "SELECT group_concat(node || ': ' || detail, '; ') FROM (SELECT * FROM tls WHERE run = 1 AND event IN ('key_update', 'keys_updated') AND direction = 'write' ORDER BY seq)")" \
	"client: requested by the application; client: key phase 1 (update 1), initiated; server: key phase 1 (update 1), answering the peer"
check "run 1: old keys kept 3 PTO" \
	"$(q "SELECT group_concat(node || ': ' || detail, '; ') FROM (SELECT * FROM tls WHERE run = 1 AND event = 'keys_discarded' AND level = 'application' ORDER BY seq)")" \
	"server: key phase 0 (update 0), 3 PTO after the update; client: key phase 0 (update 0), 3 PTO after the update"
check "run 1: refused updates" \
	"$(q "SELECT group_concat(text, '; ') FROM (SELECT text FROM log WHERE run = 1 AND node = 'client' AND text LIKE 'event error %' ORDER BY seq)")" \
	"event error op=key_update reason=handshake not confirmed; event error op=key_update reason=previous key update not acknowledged"
# The transfer completed: every expectation held (the bytes), both ends
# closed cleanly.
check "run 1: outcome" "$(q "SELECT outcome || ' ' || checks || ' ' || checks_failed FROM run WHERE id = 1")" "pass 8 0"
check "run 1: closes" \
	"$(q "SELECT group_concat(node || ':' || detail, ' ') FROM (SELECT * FROM tls WHERE run = 1 AND event = 'closed' ORDER BY node)")" \
	"client:closed server:closed"
check "run 1: byte-exact" \
	"$(q "SELECT group_concat(ok, '') FROM (SELECT ok FROM \"check\" WHERE run = 1 AND message LIKE '%byte-exact%' ORDER BY seq)")" "11"

# Run 2 (old=late): the phase 0 datagram, delayed, arrives after the
# server discarded its phase 0 keys; it is the only one touched besides
# the first phase 1.
check "run 2: datagrams a fault acted on" \
	"$(q "SELECT group_concat(reason || '|' || fate, ' ') FROM (SELECT reason, fate FROM packet WHERE run = 2 AND parent IS NULL AND reason LIKE 'fault:%' ORDER BY id)")" \
	"fault:old phase|delivered fault:first phase 1|lost"
check "run 2: the late one is phase 0 and arrives after the discard" \
	"$(q "SELECT s.hs_state LIKE '% key_phase=0' AND h.deliver_ns > (SELECT time_ns FROM tls WHERE run = 2 AND node = 'server' AND event = 'keys_discarded' AND level = 'application') FROM packet h JOIN packet s ON s.run = h.run AND s.parent = h.id WHERE h.run = 2 AND h.parent IS NULL AND h.reason = 'fault:old phase'")" 1
check "run 2: outcome" "$(q "SELECT outcome FROM run WHERE id = 2")" "pass"

# Run 3 (update=none): phase 0 only, no key update rows, the phase 1
# rule never fires.
check "run 3: phase 1 packets" "$(q "SELECT count(*) FROM packet WHERE run = 3 AND hs_state LIKE '% key_phase=1'")" 0
check "run 3: key update rows" "$(q "SELECT count(*) FROM tls WHERE run = 3 AND event IN ('key_update', 'keys_updated') OR (run = 3 AND event = 'keys_discarded' AND level = 'application')")" 0
check "run 3: first phase 1 fired" "$(q "SELECT count(*) FROM packet WHERE run = 3 AND reason = 'fault:first phase 1'")" 0

# Run 4 (update=every): many updates, both phases from both ends, and
# every update's write row followed by the peer's read row.
for node in client server; do
	for phase in 0 1; do
		CHECKS=$((CHECKS + 1))
		[ "$(kp 4 $node $phase)" -gt 0 ] || fail "run 4: no $node 1-RTT packet in key phase $phase"
	done
done
CHECKS=$((CHECKS + 1))
[ "$(q "SELECT count(*) FROM tls WHERE run = 4 AND event = 'key_update'")" -ge 2 ] || fail "run 4: fewer than 2 key updates"

# The same seed gives the same trace, in another process.
CHECKS=$((CHECKS + 1))
"$TLSIM" run "$S" --trace "$TMP/again.db" -q || fail "run again failed"
[ "$(q "SELECT digest FROM run WHERE id = 1")" = "$(sqlite3 "$TMP/again.db" "SELECT digest FROM run")" ] ||
	fail "same seed, different digest"

# Bad uses.
printf 'local w = tlsim.world{}\nw:link{}\nlocal c = w:tls_client{ pki = w:pki{} }\nc:key_update()\n' >"$TMP/b1.lua"
expect_run 2 "b1.lua:4: key_update: tls_client is not a QUIC endpoint" -- run "$TMP/b1.lua"
printf 'local w = tlsim.world{}\nw:link{}\nw:quic_client{ pki = w:pki{}, key_update_every = -1 }\n' >"$TMP/b2.lua"
expect_run 2 "b2.lua:3: w:quic_client: key_update_every must be in \\[0, 1000000000\\], got -1" -- run "$TMP/b2.lua"
finish
