# Protocol-aware faults (l:fault): every case of
# scripts/scenarios/fault_targeting.lua passes, and the trace shows the
# rule acting on exactly the packets it names, with reason fault:NAME.
. "$2/tests/lib.sh"
F="$SRC/scripts/scenarios/fault_targeting.lua"
DB="$TMP/t.db"
n=0
for c in hs_drop fin_delay done_dup reorder corrupt tcp_fin tls_finished tls_server_finished tcp_byte; do
	expect_run 0 "pass" -- run "$F" --set case=$c --trace "$DB"
	n=$((n + 1))
done
# Untraced (a sweep without --trace), the rules select the same packets:
# fin_delay's frame selector needs the frame summaries a sender used to
# fill only for the trace.
for c in fin_delay hs_drop done_dup; do
	expect_run 0 "pass +3 +100.0%" -- sweep "$F" --set case=$c --seeds 1..3
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
# retransmission (the delay outlasts the RTO); not the ChangeCipherSpec
# just before it, in a segment of its own.
check 7 "delayed segments" "client|DATA|seq=257 ack=1134 len=58 tls=Finished" \
	"$(q "SELECT DISTINCT src || '|' || ptype || '|' || replace(frames, ' rtx', '') FROM packet WHERE run = 7 AND reason = 'fault:client finished'")"
check 7 "ChangeCipherSpec on time" "seq=251 ack=1134 len=6 tls=ChangeCipherSpec|20000000|" \
	"$(q "SELECT frames || '|' || (deliver_ns - send_ns) || '|' || coalesce(reason, '') FROM packet WHERE run = 7 AND src = 'client' AND frames LIKE '%tls=ChangeCipherSpec%'")"
# 8 tls_server_finished: the server's flight in 100-byte segments; the
# rule drops the two that carry bytes of its Finished (the last carries
# the end of the Certificate and the CertificateVerify too), no
# Certificate-only segment, and their retransmissions pass.
check 8 "dropped segments" "seq=1001 ack=251 len=100 tls=Certificate,CertificateVerify,Finished|lost;seq=1101 ack=251 len=33 tls=Finished|lost" \
	"$(q "SELECT group_concat(frames || '|' || fate, ';') FROM packet WHERE run = 8 AND reason = 'fault:server finished'")"
check 8 "other server segments lost" 0 \
	"$(q "SELECT count(*) FROM packet WHERE run = 8 AND src = 'server' AND fate <> 'delivered' AND reason IS NOT 'fault:server finished'")"
check 8 "retransmissions delivered" "seq=1001 ack=251 len=100 rtx tls=Certificate,CertificateVerify,Finished|delivered;seq=1101 ack=251 len=33 rtx tls=Finished|delivered" \
	"$(q "SELECT group_concat(frames || '|' || fate, ';') FROM packet WHERE run = 8 AND src = 'server' AND frames LIKE '% rtx tls=%Finished%'")"
# 9 tcp_byte: one segment dropped, the server's, holding data byte 3000
# (sequence number 3001: the SYN takes 0), and the same bytes arrive in a
# retransmission.
check 9 "dropped once" "server|lost|1" \
	"$(q "SELECT src || '|' || fate || '|' || (CAST(substr(frames, 5) AS INTEGER) <= 3001 AND 3001 < CAST(substr(frames, 5) AS INTEGER) + CAST(substr(frames, instr(frames, 'len=') + 4) AS INTEGER)) FROM packet WHERE run = 9 AND reason = 'fault:server byte 3000'")"
check 9 "retransmitted and delivered" 1 \
	"$(q "SELECT count(*) FROM packet d, packet x WHERE d.run = 9 AND x.run = 9 AND x.reason = 'fault:server byte 3000' AND d.src = 'server' AND d.id > x.id AND d.fate = 'delivered' AND substr(d.frames, 1, instr(d.frames, ' ack=')) = substr(x.frames, 1, instr(x.frames, ' ack='))")"
# Bad rules.
printf 'local w = tlsim.world{}\nlocal l = w:link{}\nl:fault{ action = "explode" }\n' >"$TMP/b1.lua"
expect_run 2 "b1.lua:3: l:fault: action must be drop, delay, dup, corrupt, reorder or at_timer, got 'explode'" -- run "$TMP/b1.lua"
printf 'local w = tlsim.world{}\nlocal l = w:link{}\nl:fault{ action = "delay" }\n' >"$TMP/b2.lua"
expect_run 2 "b2.lua:3: l:fault: action 'delay' needs by = a duration" -- run "$TMP/b2.lua"
printf 'local w = tlsim.world{}\nlocal l = w:link{}\nl:fault{ action = "drop", kind = "x" }\n' >"$TMP/b3.lua"
expect_run 2 "b3.lua:3: l:fault: unknown option 'kind'" -- run "$TMP/b3.lua"
printf 'local w = tlsim.world{}\nlocal l = w:link{}\nl:fault{ from = "x" }\n' >"$TMP/b4.lua"
expect_run 2 "b4.lua:3: l:fault: action is required" -- run "$TMP/b4.lua"
printf 'local w = tlsim.world{}\nlocal l = w:link{}\nl:fault{ byte = -1, action = "drop" }\n' >"$TMP/b5.lua"
expect_run 2 "b5.lua:3: l:fault: byte" -- run "$TMP/b5.lua"
printf 'local w = tlsim.world{}\nlocal l = w:link{}\nl:fault{ action = "drop", key_phase = 2 }\n' >"$TMP/b6.lua"
expect_run 2 "b6.lua:3: l:fault: key_phase must be in \\[0, 1\\], got 2" -- run "$TMP/b6.lua"
printf 'local w = tlsim.world{}\nlocal l = w:link{}\nl:fault{ action = "drop", key_phase = "one" }\n' >"$TMP/b7.lua"
expect_run 2 "b7.lua:3: l:fault: key_phase must be an integer" -- run "$TMP/b7.lua"
finish
