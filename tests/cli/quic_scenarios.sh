# The QUIC endpoint: the headline scenario under loss, the MsQuic shutdown
# race (SCENARIOS.md section 1) and the incomplete chain (section 3), each
# fixed variant passing, each buggy one failing the expectation that names
# the bug, with its query returning rows only on the buggy trace; and
# determinism of QUIC bytes across processes.
. "$2/tests/lib.sh"
S="$SRC/scripts/scenarios"
Q="$SRC/scripts/queries"
rows() {
	sed '/^\.headers/d; /^\.mode/d' "$Q/$1.sql" | sqlite3 -batch "$2" | wc -l
}
expect_rows() { # expect_rows QUERY DB none|some
	CHECKS=$((CHECKS + 1))
	n=$(rows "$1" "$2")
	case $3 in
	none) [ "$n" -eq 0 ] || fail "$1 on $2: $n rows, want none" ;;
	some) [ "$n" -gt 0 ] || fail "$1 on $2: no rows, want some" ;;
	esac
}
sql() { sqlite3 -batch "$1" "$2"; }
check() { # check NAME DB SQL WANT
	CHECKS=$((CHECKS + 1))
	got=$(sql "$2" "$3")
	[ "$got" = "$4" ] || fail "$1: got '$got', want '$4'"
}

# Loss becomes retransmission: byte-exact over many seeds.
for loss in 0 0.1 0.2; do
	for seed in $(seq 1 12); do
		expect_run 0 ": pass, 4/4" -- run "$S/quic_basic.lua" --set loss=$loss --seed $seed
	done
done
expect_run 0 ": pass, 4/4" -- run "$S/quic_basic.lua" --set alg=ed25519

# Section 1: MsQuic.
DB="$TMP/mb.db"
expect_run 0 ": pass, 3/3" -- run "$S/msquic_shutdown_race.lua" --trace "$TMP/mf.db"
expect_run 1 "expectation failed: the server learns of the close: server: handshake_timeout" -- \
	run "$S/msquic_shutdown_race.lua" --set variant=buggy --trace "$DB"
expect_rows msquic_close "$TMP/mf.db" none
expect_rows msquic_close "$DB" some
check "buggy: shutdown ran before validation_complete" "$DB" \
	"SELECT group_concat(op_type, ' ') FROM (SELECT op_type FROM op WHERE node = 'client' AND action = 'dequeue' AND op_type IN ('shutdown', 'validation_complete') ORDER BY seq)" \
	"shutdown validation_complete"
check "buggy: a 0x1d sent while unconfirmed, alone" "$DB" \
	"SELECT ptype || ' ' || hs_state FROM packet WHERE parent IS NOT NULL AND frames LIKE 'CONNECTION_CLOSE(0x1d)%'" \
	"1rtt keys=H,1 complete=0 confirmed=0 key_phase=0"
check "buggy: the server ends at its handshake timeout" "$DB" \
	"SELECT detail, time_ns BETWEEN 10000000000 AND 10100000000 FROM tls WHERE node = 'server' AND event = 'closed'" \
	"handshake_timeout|1"
check "fixed: 0x1c APPLICATION_ERROR in a Handshake packet" "$TMP/mf.db" \
	"SELECT count(*) FROM packet WHERE ptype = 'handshake' AND frames LIKE 'CONNECTION_CLOSE(0x1c)(0xc,%'" "1"
check "fixed: the server drains within 3 RTT of the call (1.04 s)" "$TMP/mf.db" \
	"SELECT time_ns - 1040000000 <= 120000000 FROM tls WHERE node = 'server' AND event = 'close_received'" "1"
check "fixed: coalesced with a 1-RTT copy" "$TMP/mf.db" \
	"SELECT count(DISTINCT parent) FROM packet WHERE frames LIKE 'CONNECTION_CLOSE%' AND src = 'client'" "1"
# The tail variant: the tie-break decides; some seeds fail, some pass.
pass=0 failn=0
for seed in $(seq 1 16); do
	"$TLSIM" run "$S/msquic_shutdown_race.lua" --set variant=tail --seed $seed -q >/dev/null 2>&1 </dev/null
	case $? in 0) pass=$((pass + 1)) ;; 1) failn=$((failn + 1)) ;; esac
done
CHECKS=$((CHECKS + 1))
[ $pass -gt 0 ] && [ $failn -gt 0 ] && [ $((pass + failn)) -eq 16 ] ||
	fail "msquic tail variant: $pass passed, $failn failed of 16 (want both kinds)"

# Section 3 over QUIC.
expect_run 0 ": pass" -- run "$S/quic_incomplete_chain.lua" --trace "$TMP/cf.db"
expect_run 0 ": pass" -- run "$S/quic_incomplete_chain.lua" --set chain=leaf --set trust=root+intermediate
expect_run 1 "expectation failed: the handshake succeeds" -- \
	run "$S/quic_incomplete_chain.lua" --set variant=buggy --trace "$TMP/cb.db"
# The AIA fetch racing the check (verification at 20 ms).
expect_run 0 ": pass" -- run "$S/quic_incomplete_chain.lua" --set chain=leaf --set aia=15ms
expect_run 1 "expectation failed: the handshake succeeds" -- \
	run "$S/quic_incomplete_chain.lua" --set chain=leaf --set aia=25ms
expect_rows quic_chain "$TMP/cf.db" none
expect_rows quic_chain "$TMP/cb.db" some
check "buggy chain: error 20, closed with 0x130" "$TMP/cb.db" \
	"SELECT code FROM tls WHERE event = 'verify_done'; SELECT printf('0x%x', code) FROM tls WHERE event = 'close_sent'" \
	"20
0x130"

# Asynchronous certificate check (ssl_verify_retry), rejection, and a
# corrupting, duplicating, reordering link.
T="$SRC/tests/scenarios"
expect_run 0 ": pass, 3/3" -- run "$T/quic_async.lua"
expect_run 0 ": pass, 1/1" -- run "$T/quic_async.lua" --set reject=1
for seed in $(seq 1 15); do
	expect_run 0 ": pass, 3/3" -- run "$T/quic_async.lua" --set corrupt=0.1 --seed $seed
done

# Determinism of QUIC bytes across processes; seeds differ.
for i in 1 2; do
	"$TLSIM" run "$S/quic_basic.lua" --seed 5 --trace "$TMP/d$i.db" -q </dev/null >/dev/null 2>&1
done
"$TLSIM" run "$S/quic_basic.lua" --seed 6 --trace "$TMP/d3.db" -q </dev/null >/dev/null 2>&1
CHECKS=$((CHECKS + 2))
sqlite3 "$TMP/d1.db" .dump >"$TMP/d1.sql"
sqlite3 "$TMP/d2.db" .dump >"$TMP/d2.sql"
cmp -s "$TMP/d1.sql" "$TMP/d2.sql" || fail "quic_basic seed 5: .dump differs between processes"
[ "$(sql "$TMP/d1.db" 'SELECT digest FROM run')" != "$(sql "$TMP/d3.db" 'SELECT digest FROM run')" ] ||
	fail "quic_basic seeds 5 and 6 have the same digest"
check "Initial datagrams are 1200 bytes" "$TMP/d1.db" \
	"SELECT count(*) FROM packet p WHERE p.ptype = 'datagram' AND p.frames LIKE '%initial%' AND p.len <> 1200 AND p.fate <> 'duplicated'" "0"
check "every QUIC packet row has its datagram" "$TMP/d1.db" \
	"SELECT count(*) FROM packet s LEFT JOIN packet d ON d.id = s.parent AND d.run = s.run WHERE s.parent IS NOT NULL AND d.id IS NULL" "0"
finish
