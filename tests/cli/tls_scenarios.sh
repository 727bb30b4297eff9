# The TLS bug scenarios (SCENARIOS.md sections 2-5): each fixed variant
# passes, each buggy variant fails the expectation that names the bug, and
# each bug's query returns rows on the buggy trace and none on the fixed.
. "$2/tests/lib.sh"
S="$SRC/scripts/scenarios"
Q="$SRC/scripts/queries"

# rows QUERY DB: the number of result rows the query prints (no headers).
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

# The headline scenario: versions, key types, heavy loss.
expect_run 0 ": pass, 3/3" -- run "$S/tls_basic.lua" --set version=1.2
expect_run 0 ": pass, 3/3" -- run "$S/tls_basic.lua" --set alg=ed25519
for seed in 1 2 3 4 5; do
	expect_run 0 ": pass, 3/3" -- run "$S/tls_basic.lua" --set loss=0.25 --seed $seed
done

# Section 2: rustls acceptor alert, for each failure.
for f in version group junk truncated; do
	expect_run 0 ": pass" -- run "$S/rustls_acceptor_alert.lua" --set failure=$f --trace "$TMP/rf.db"
	expect_run 1 "expectation failed: the client learns why: [a-z_]+\([0-9]+\): eof during handshake: no alert" -- \
		run "$S/rustls_acceptor_alert.lua" --set failure=$f --set variant=buggy --trace "$TMP/rb.db"
done
expect_run 0 "client: alert_received name=protocol_version code=70" -- run -v "$S/rustls_acceptor_alert.lua"
expect_rows rustls_alert "$TMP/rf.db" none
expect_rows rustls_alert "$TMP/rb.db" some

# Section 3 over TLS: incomplete chain.
expect_run 0 ": pass" -- run "$S/tls_incomplete_chain.lua"
expect_run 0 ": pass" -- run "$S/tls_incomplete_chain.lua" --set chain=leaf --set trust=root+intermediate
expect_run 0 ": pass" -- run "$S/tls_incomplete_chain.lua" --set alg=ed25519
expect_run 1 "expectation failed: the handshake succeeds: alert sent: unknown_ca\(48\)" -- \
	run "$S/tls_incomplete_chain.lua" --set variant=buggy
expect_run 1 "X.509 result 20" -- run "$S/tls_incomplete_chain.lua" --set variant=buggy --set alg=ed25519

# The AIA fetch racing the check (verification at 40 ms).
expect_run 0 ": pass" -- run "$S/tls_incomplete_chain.lua" --set chain=leaf --set aia=35ms
expect_run 1 "expectation failed: the handshake succeeds: alert sent: unknown_ca\(48\)" -- \
	run "$S/tls_incomplete_chain.lua" --set chain=leaf --set aia=45ms

# Section 4: Go handshake deadline and Close.
expect_run 0 ": pass" -- run "$S/go_handshake_deadline.lua" --trace "$TMP/gf.db"
expect_run 0 ": pass" -- run "$S/go_handshake_deadline.lua" --set who=server --trace "$TMP/gf.db"
expect_run 1 "livelock.*client.*(drain|handshake)" -- run "$S/go_handshake_deadline.lua" --set variant=buggy --trace "$TMP/gb.db"
expect_run 1 "expectation failed: the peer sees the transport close \(FIN\): established" -- \
	run "$S/go_handshake_deadline.lua" --set variant=buggy_close --trace "$TMP/gb.db"
expect_run 0 ": pass" -- run "$S/go_handshake_deadline.lua" --set silence=blackhole
expect_run 1 "livelock at 5s: 10000 events without virtual time advancing; the loop is node 'client'" -- \
	run "$S/go_handshake_deadline.lua" --set silence=blackhole --set variant=buggy
expect_run 1 "expectation failed: the client closes its transport: syn_sent" -- \
	run "$S/go_handshake_deadline.lua" --set silence=blackhole --set variant=buggy_close
expect_rows go_deadline "$TMP/gf.db" none
expect_rows go_deadline "$TMP/gb.db" some

# Section 5: the Asio matrix, one run per row, both sides asserted.
for c in 1 2 3 4; do
	expect_run 0 ": pass" -- run "$S/asio_shutdown.lua" --set case=$c
done
# The truncation attack at every byte offset of the response's records.
for off in $(seq 0 7 1100) 1 2 3 4 5 6 1079 1080 1081; do
	"$TLSIM" run "$S/truncation_attack.lua" --set offset=$off -q >"$TMP/out" 2>&1 </dev/null
	rc=$?
	CHECKS=$((CHECKS + 1))
	if [ $rc -ne 0 ]; then
		fail "truncation at offset $off: exit $rc"
		sed 's/^/  | /' "$TMP/out" >&2
	fi
done
expect_run 0 ": pass" -- run "$S/truncation_attack.lua" --set kind=rst --trace "$TMP/tf.db"
# Forged at a time while the client waits for the response (it is sent at
# 50 ms): the client's stream ends before the response arrives.
expect_run 0 ": pass" -- run "$S/truncation_attack.lua" --set at=45ms
expect_run 0 ": pass" -- run "$S/truncation_attack.lua" --set at=45ms --set kind=rst
expect_run 1 "expectation failed: the attack cut the response: 1024 bytes" -- \
	run "$S/truncation_attack.lua" --set at=55ms
expect_run 1 "expectation failed: the client reports truncation, never a clean end: clean: end of stream" -- \
	run "$S/truncation_attack.lua" --set variant=buggy --trace "$TMP/tb.db"
expect_rows truncation "$TMP/tf.db" none
expect_rows truncation "$TMP/tb.db" some
finish
