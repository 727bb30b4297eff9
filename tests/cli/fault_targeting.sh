# Protocol-aware faults (l:fault): every case of
# scripts/scenarios/fault_targeting.lua passes, and the trace shows the
# rule acting on exactly the packets it names, with reason fault:NAME.
. "$2/tests/lib.sh"
F="$SRC/scripts/scenarios/fault_targeting.lua"
DB="$TMP/t.db"
n=0
for c in hs_drop fin_delay done_dup reorder corrupt tcp_fin tls_finished; do
	expect_run 0 "pass" -- run "$F" --set case=$c --trace "$DB"
	n=$((n + 1))
done
q() { sqlite3 "$DB" "$1"; }
check() { # check RUN WHAT WANT GOT
	CHECKS=$((CHECKS + 1))
	[ "$3" = "$4" ] || fail "run $1: $2: got '$4', want '$3'"
}
# 1 hs_drop: one datagram, the server's first with a Handshake packet, lost.
check 1 "dropped datagrams" "server|initial+handshake|lost" \
	"$(q "SELECT src || '|' || frames || '|' || fate FROM packet WHERE run = 1 AND parent IS NULL AND reason = 'fault:first server handshake'")"
check 1 "earlier server handshake datagrams" 0 \
	"$(q "SELECT count(*) FROM packet p WHERE run = 1 AND src = 'server' AND parent IS NULL AND id < (SELECT id FROM packet WHERE run = 1 AND reason LIKE 'fault:%' AND parent IS NULL) AND EXISTS (SELECT 1 FROM packet s WHERE s.run = 1 AND s.parent = p.id AND s.ptype = 'handshake')")"
# 2 fin_delay: every client datagram with Handshake CRYPTO delayed 300 ms,
# nothing else touched.
check 2 "delayed by 300 ms" 300000000 \
	"$(q "SELECT DISTINCT deliver_ns - send_ns - 20000000 FROM packet WHERE run = 2 AND parent IS NULL AND reason = 'fault:client finished'")"
check 2 "touched only the client's" "client" \
	"$(q "SELECT group_concat(DISTINCT src) FROM packet WHERE run = 2 AND reason LIKE 'fault:%'")"
# 3 done_dup: the HANDSHAKE_DONE datagram and one copy 1 ms later.
check 3 "duplicate" "1" \
	"$(q "SELECT count(*) FROM packet d JOIN packet o ON o.run = d.run AND o.id = d.dup_of WHERE d.run = 3 AND d.fate = 'duplicated' AND o.reason = 'fault:handshake done' AND d.deliver_ns - o.deliver_ns = 1000000")"
# 4 reorder: the held datagram arrives after two later ones that left.
check 4 "reordered" "1" \
	"$(q "SELECT count(*) FROM packet WHERE run = 4 AND parent IS NULL AND fate = 'reordered' AND reason = 'fault:first server 1-RTT'")"
# It arrives 1 ns after the second server datagram that left after it.
check 4 "released behind the second later datagram" 1 \
	"$(q "SELECT h.deliver_ns - (SELECT o.deliver_ns FROM packet o WHERE o.run = 4 AND o.parent IS NULL AND o.src = 'server' AND o.id > h.id ORDER BY o.id LIMIT 1 OFFSET 1) FROM packet h WHERE h.run = 4 AND h.parent IS NULL AND h.reason = 'fault:first server 1-RTT'")"
# 5 corrupt: the datagram corrupted (its rows keep the bytes as sent).
check 5 "corrupted" "corrupted" \
	"$(q "SELECT fate FROM packet WHERE run = 5 AND parent IS NULL AND reason = 'fault:server handshake bits'")"
# 6 tcp_fin: every segment with the client's FIN (retransmissions too).
check 6 "FIN segments lost" "0" \
	"$(q "SELECT count(*) FROM packet WHERE run = 6 AND src = 'client' AND ptype LIKE '%FIN%' AND NOT (fate = 'lost' AND reason = 'fault:client FIN')")"
CHECKS=$((CHECKS + 1))
[ "$(q "SELECT count(*) FROM packet WHERE run = 6 AND reason = 'fault:client FIN'")" -ge 3 ] || fail "tcp_fin: retransmitted FINs not dropped"
# 7 tls_finished: exactly the client's segment with its Finished (the
# segment's description names the TLS messages it carries), and its
# retransmission (the delay outlasts the RTO).
check 7 "delayed segments" "client|DATA|seq=251 ack=1134 len=64 tls=ChangeCipherSpec,Finished" \
	"$(q "SELECT DISTINCT src || '|' || ptype || '|' || replace(frames, ' rtx', '') FROM packet WHERE run = 7 AND reason = 'fault:client finished'")"
# Bad rules.
printf 'local w = tlsim.world{}\nlocal l = w:link{}\nl:fault{ action = "explode" }\n' >"$TMP/b1.lua"
expect_run 2 "b1.lua:3: l:fault: action must be drop, delay, dup, corrupt, reorder or at_timer, got 'explode'" -- run "$TMP/b1.lua"
printf 'local w = tlsim.world{}\nlocal l = w:link{}\nl:fault{ action = "delay" }\n' >"$TMP/b2.lua"
expect_run 2 "b2.lua:3: l:fault: action 'delay' needs by = a duration" -- run "$TMP/b2.lua"
printf 'local w = tlsim.world{}\nlocal l = w:link{}\nl:fault{ action = "drop", kind = "x" }\n' >"$TMP/b3.lua"
expect_run 2 "b3.lua:3: l:fault: unknown option 'kind'" -- run "$TMP/b3.lua"
printf 'local w = tlsim.world{}\nlocal l = w:link{}\nl:fault{ from = "x" }\n' >"$TMP/b4.lua"
expect_run 2 "b4.lua:3: l:fault: action is required" -- run "$TMP/b4.lua"
finish
