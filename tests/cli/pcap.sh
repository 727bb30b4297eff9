# tlsim pcap, with tshark as the outside oracle: the MsQuic (fixed and
# buggy), Boost.Asio and truncation-attack exports, and a lossy run with
# duplicates, corruption and reordering, have no malformed packets and no
# expert errors (IPv4, UDP and TCP checksums verified); the decrypted TLS
# handshake is listed for QUIC and for TLS over TCP (from the file's
# Decryption Secrets Block, and from --keylog once the block is stripped);
# the QUIC CONNECTION_CLOSE frame types, the TCP SYN/FIN/RST and the TCP
# sequence/ack numbers are the trace's; across QUIC key updates every
# 1-RTT packet decrypts in both key phases; a sender capture is in the
# order sent; the output is deterministic; and every refusal is a
# one-line error that leaves no file behind.
#
# tshark is required, not optional: without it this test fails (CI
# installs it through scripts/setup).
. "$2/tests/lib.sh"
if ! command -v tshark >/dev/null 2>&1; then
	echo "FAIL: tshark not found; tests/cli/pcap.sh needs it (scripts/setup installs it) and does not skip" >&2
	exit 1
fi
S="$SRC/scripts/scenarios"
DB="$TMP/t.db"
OPTS="-n -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE -o ip.check_checksum:TRUE -o tcp.reassemble_out_of_order:TRUE"

# shark FILE ARGS...: tshark on FILE; a tshark failure is a failed check.
shark() {
	f=$1
	shift
	# shellcheck disable=SC2086
	if ! tshark $OPTS -r "$f" "$@" 2>"$TMP/tshark.err"; then
		fail "tshark -r $f $*: exit status $?"
		sed 's/^/  | /' "$TMP/tshark.err" >&2
	fi
}

# same WHAT GOT WANT
same() {
	CHECKS=$((CHECKS + 1))
	if [ "$2" != "$3" ]; then
		fail "$1: tshark: '$2', want '$3'"
	fi
}

q() {
	sqlite3 "$DB" "$@"
}

# The rows d a receiver capture of run $1 holds (README); $ORDER is its
# order.
held() {
	echo "d.run = $1 AND d.parent IS NULL AND d.deliver_ns IS NOT NULL AND d.deliver_ns <= (SELECT end_ns FROM run WHERE id = $1) AND d.proto IN ('tcp', 'quic', 'echo', 'udp')"
}
cap() {
	echo "FROM packet d WHERE $(held "$1")"
}
ORDER="ORDER BY d.deliver_ns, d.send_ns, d.seq"

# hs_types FILE ADDR [TSHARK ARGS]: the handshake message types
# (tls.handshake.type) sent from ADDR, each once, in order of appearance.
hs_types() {
	f=$1
	a=$2
	shift 2
	shark "$f" "$@" -Y "ip.src == $a && tls.handshake.type" -T fields -e tls.handshake.type |
		tr ',' '\n' | awk 'NF && !seen[$0]++' | paste -sd' ' -
}

# check_common RUN FILE: tshark reads every packet, none malformed, no
# expert error.
check_common() {
	want=$(q "SELECT count(*) $(cap "$1")")
	got=$(shark "$2" -T fields -e frame.number | wc -l)
	same "run $1: packets" "$got" "$want"
	bad=$(shark "$2" -Y '_ws.malformed || _ws.expert.severity >= error')
	same "run $1: malformed packets or expert errors" "$bad" ""
	errs=$(shark "$2" -q -z expert,error | grep -c '^Errors' || true)
	same "run $1: expert errors" "$errs" "0"
}

# check_quic RUN FILE: CONNECTION_CLOSE frame types, as the trace's packet
# rows list them (a copy's packets are its original's).
check_quic() {
	want=$(q "SELECT substr(s.frames, instr(s.frames, 'CONNECTION_CLOSE(') + 17, 4) FROM packet d JOIN packet s ON s.run = d.run AND s.parent = coalesce(d.dup_of, d.id) WHERE $(held "$1") AND s.frames LIKE '%CONNECTION_CLOSE(%' $ORDER, s.seq" | paste -sd' ' -)
	got=$(shark "$2" -Y quic -T fields -e quic.frame_type | tr ',' '\n' |
		awk '$1 == 28 { print "0x1c" } $1 == 29 { print "0x1d" }' | paste -sd' ' -)
	same "run $1: CONNECTION_CLOSE frame types" "$got" "$want"
	CHECKS=$((CHECKS + 1))
	[ -n "$want" ] || fail "run $1: the trace has no CONNECTION_CLOSE"
}

# check_tcp RUN FILE: SYN, SYN-ACK, FIN and RST counts and every segment's
# relative seq, ack and length, as the trace's rows say.
check_tcp() {
	want=$(q "SELECT sum(ptype = 'SYN') || ' ' || sum(ptype = 'SYN-ACK') || ' ' || sum(ptype IN ('FIN', 'DATA-FIN')) || ' ' || sum(ptype = 'RST') $(cap "$1") AND d.proto = 'tcp'")
	got=$(shark "$2" -Y tcp -T fields -e tcp.flags.str |
		awk '/S/ && !/A/ { s++ } /S/ && /A/ { sa++ } /F/ { f++ } /R/ { r++ } END { printf "%d %d %d %d", s, sa, f, r }')
	same "run $1: TCP SYN, SYN-ACK, FIN, RST" "$got" "$want"
	q "SELECT replace(replace(replace(replace(replace(CASE WHEN instr(d.frames, ' tls=') > 0 THEN substr(d.frames, 1, instr(d.frames, ' tls=') - 1) ELSE d.frames END, 'seq=', ''), 'ack=', ''), 'len=', ''), ' rtx', ''), ' forged', '') $(cap "$1") AND d.proto = 'tcp' $ORDER" >"$TMP/seq.want"
	shark "$2" -Y tcp -T fields -E separator=' ' -e tcp.seq -e tcp.ack -e tcp.len >"$TMP/seq.got"
	CHECKS=$((CHECKS + 1))
	if ! cmp -s "$TMP/seq.got" "$TMP/seq.want"; then
		fail "run $1: TCP seq/ack/len differ from the trace (tshark, then trace):"
		diff "$TMP/seq.got" "$TMP/seq.want" | head -10 | sed 's/^/  | /' >&2
	fi
}

# The MsQuic race (fixed and buggy), two Boost.Asio cases, a forged FIN
# and a forged RST.
expect_run 0 "" -- run "$S/msquic_shutdown_race.lua" --trace "$DB" -q
expect_run 1 "" -- run "$S/msquic_shutdown_race.lua" --set variant=buggy --trace "$DB" -q
expect_run 0 "" -- run "$S/asio_shutdown.lua" --set case=3 --trace "$DB" -q
expect_run 0 "" -- run "$S/asio_shutdown.lua" --set case=1 --trace "$DB" -q
expect_run 1 "" -- run "$S/truncation_attack.lua" --set variant=buggy --trace "$DB" -q
expect_run 0 "" -- run "$S/truncation_attack.lua" --set kind=rst --trace "$DB" -q
# 7: a QUIC and a TLS pair on two faulty links (the TLS pair is 10.0.0.3
# and .4, so its TCP checksums are recomputed).
cat >"$TMP/faults.lua" <<'EOF'
local w = tlsim.world{ seed = arg.seed or 1 }
local f = { latency = "20ms", jitter = "2ms", loss = 0.05, dup = 0.2,
            corrupt = 0.02, reorder = 0.05, reorder_delay = "5ms" }
f.name = "q"
local lq = w:link(f)
f.name = "t"
local lt = w:link(f)
local pki = w:pki{}
local qs = w:quic_server{ pki = pki, link = lq }
local qc = w:quic_client{ pki = pki, link = lq }
local ts = w:tls_server{ pki = pki, link = lt, name = "tserver" }
local tc = w:tls_client{ pki = pki, link = lt, name = "tclient" }
local body = string.rep("0123456789abcdef", 1500)
qs:on("data", function(s, ev) if ev.fin == 1 then s:send(body, true) end end)
qc:on("connected", function(c) c:send("GET /\r\n", true) end)
qc:on("data", function(c, ev) if ev.fin == 1 then c:shutdown(0) end end)
ts:on("data", function(s, ev) s:write(body); s:shutdown{ wait = true } end)
tc:on("handshake_done", function(c) c:write("GET /\r\n") end)
tc:on("close_notify", function(c) c:shutdown{} end)
ts:accept(); tc:connect(); qc:start()
w:run{ limit = "120s" }
EOF
expect_run 0 "" -- run "$TMP/faults.lua" --seed 6 --trace "$DB" -q
q "SELECT count(*) FROM packet WHERE run = 7 AND parent IS NULL GROUP BY fate ORDER BY fate" | paste -sd' ' - >"$TMP/fates"
CHECKS=$((CHECKS + 1))
# corrupted, delivered, duplicated, lost, reordered: every fate present
[ "$(wc -w <"$TMP/fates")" -eq 5 ] || fail "run 7 should have every fate, has counts $(cat "$TMP/fates")"

for r in 1 2 3 4 5 6 7; do
	expect_run 0 "^run $r of .*: [0-9]+ packets at the receiver to .*r$r.pcapng" -- pcap "$DB" --run $r -o "$TMP/r$r.pcapng" --keylog "$TMP/r$r.keys"
	check_common $r "$TMP/r$r.pcapng"
done
for r in 1 2 7; do
	check_quic $r "$TMP/r$r.pcapng"
done
for r in 3 4 5 6 7; do
	check_tcp $r "$TMP/r$r.pcapng"
done
# The decrypted handshake: ClientHello from the client; ServerHello,
# EncryptedExtensions, Certificate, CertificateVerify, Finished from the
# server; over TCP the client's Finished too.
for r in 1 2; do
	same "run $r: QUIC client handshake" "$(hs_types "$TMP/r$r.pcapng" 10.0.0.1)" "1"
	same "run $r: QUIC server handshake" "$(hs_types "$TMP/r$r.pcapng" 10.0.0.2)" "2 8 11 15 20"
done
for r in 3 4 5 6; do
	same "run $r: TLS client handshake" "$(hs_types "$TMP/r$r.pcapng" 10.0.0.1)" "1 20"
	same "run $r: TLS server handshake" "$(hs_types "$TMP/r$r.pcapng" 10.0.0.2 | cut -d' ' -f1-5)" "2 8 11 15 20"
done
# MsQuic: fixed, 0x1c in the Handshake packet (and a 1-RTT 0x1d); buggy,
# only the 1-RTT 0x1d the server cannot read yet.
same "run 1: close" "$(shark "$TMP/r1.pcapng" -Y 'quic.frame_type == 0x1c' -T fields -e quic.long.packet_type | tr -d '\n')" "2"
same "run 2: close" "$(shark "$TMP/r2.pcapng" -Y 'quic.frame_type == 0x1c' -T fields -e frame.number)" ""

# The key log file: each distinct line of the run's tls rows, in order;
# with the Decryption Secrets Block stripped, tshark decrypts with it and
# only with it.
for r in 1 3; do
	q "SELECT detail FROM tls WHERE run = $r AND event IN ('keys', 'keylog') AND detail GLOB '[A-Z]*_* [0-9a-f]* [0-9a-f]*' ORDER BY seq" | awk '!seen[$0]++' >"$TMP/keys.want"
	CHECKS=$((CHECKS + 1))
	cmp -s "$TMP/r$r.keys" "$TMP/keys.want" || fail "run $r: --keylog file differs from the trace's key lines"
	CHECKS=$((CHECKS + 1))
	[ "$(wc -l <"$TMP/r$r.keys")" -ge 5 ] || fail "run $r: fewer than 5 key log lines"
	editcap --discard-all-secrets "$TMP/r$r.pcapng" "$TMP/nodsb.pcapng" 2>/dev/null
	same "run $r: without secrets" "$(hs_types "$TMP/nodsb.pcapng" 10.0.0.2)" "2"
	same "run $r: with --keylog" "$(hs_types "$TMP/nodsb.pcapng" 10.0.0.2 -o "tls.keylog_file:$TMP/r$r.keys" | cut -d' ' -f1-5)" "2 8 11 15 20"
done

# At the sender: every packet sent, lost ones commented, no link copies.
expect_run 0 "at the sender" -- pcap "$DB" --run 7 --at sender -o "$TMP/s7.pcapng"
want=$(q "SELECT count(*) FROM packet WHERE run = 7 AND parent IS NULL AND dup_of IS NULL")
same "run 7 at the sender: packets" "$(shark "$TMP/s7.pcapng" -T fields -e frame.number | wc -l)" "$want"
want=$(q "SELECT count(*) FROM packet WHERE run = 7 AND parent IS NULL AND dup_of IS NULL AND fate = 'lost'")
same "run 7 at the sender: lost" "$(shark "$TMP/s7.pcapng" -Y 'frame.comment contains "never delivered; lost"' -T fields -e frame.number | wc -l)" "$want"
same "run 7 at the sender: errors" "$(shark "$TMP/s7.pcapng" -Y '_ws.malformed || _ws.expert.severity >= error')" ""
want=$(q "SELECT count(*) $(cap 7) AND d.dup_of IS NOT NULL")
same "run 7 at the receiver: link copies" "$(shark "$TMP/r7.pcapng" -Y 'frame.comment contains "copy of packet"' -T fields -e frame.number | wc -l)" "$want"

# QUIC key updates (scripts/scenarios/key_update.lua): Wireshark follows
# them from the traffic secrets alone, deriving each next phase's keys,
# so every 1-RTT packet decrypts, in both key phases, from both ends
# (STREAM frames read after the update too). At the receiver the capture
# must be in key phase order: Wireshark keeps no previous keys, so the
# scenario's reordered phase 0 packet breaks it; without the faults (a
# single update, and updates every few packets) or at the sender it is.
# keyphases FILE: "failed phase0 phase1" short-header counts per address.
keyphases() {
	for a in 10.0.0.1 10.0.0.2; do
		printf '%s %s %s %s\n' "$a" \
			"$(shark "$1" -Y "ip.src == $a && quic.decryption_failed" -T fields -e frame.number | wc -l)" \
			"$(shark "$1" -Y "ip.src == $a && quic.key_phase == 0 && quic.frame" -T fields -e frame.number | wc -l)" \
			"$(shark "$1" -Y "ip.src == $a && quic.key_phase == 1 && quic.stream.stream_id == 0" -T fields -e frame.number | wc -l)"
	done
}
KU="$TMP/ku.db"
expect_run 0 "" -- run "$S/key_update.lua" --set faults=0 --trace "$KU" -q
expect_run 0 "" -- run "$S/key_update.lua" --set faults=0 --set update=every --trace "$KU" -q
expect_run 0 "" -- run "$S/key_update.lua" --trace "$KU" -q
for r in 1 2 3; do
	at=receiver
	[ $r -lt 3 ] || at=sender
	expect_run 0 "" -- pcap "$KU" --run $r --at $at -o "$TMP/ku$r.pcapng" -q
	if [ $at = receiver ]; then
		saved=$DB
		DB=$KU
		check_common $r "$TMP/ku$r.pcapng"
		DB=$saved
	fi
	keyphases "$TMP/ku$r.pcapng" >"$TMP/kp"
	CHECKS=$((CHECKS + 1))
	awk '$2 != 0 || $3 == 0 || $4 == 0 { bad = 1 } END { exit bad }' "$TMP/kp" ||
		fail "key update run $r at the $at: address, failed, phase 0 packets, phase 1 with STREAM: $(paste -sd';' "$TMP/kp")"
done

# At the sender, packets in the order sent, even one the link held back
# (a reorder fault writes its row when it leaves): the IPv4
# identification, the tlsim packet id, only grows.
expect_run 0 "" -- run "$S/fault_targeting.lua" --set case=reorder --trace "$TMP/held.db" -q
expect_run 0 "at the sender" -- pcap "$TMP/held.db" --at sender -o "$TMP/held.pcapng"
shark "$TMP/held.pcapng" -T fields -e ip.id | while read -r id; do printf '%d\n' "$id"; done >"$TMP/ids"
CHECKS=$((CHECKS + 1))
[ -s "$TMP/ids" ] && sort -n "$TMP/ids" | cmp -s - "$TMP/ids" ||
	fail "held packet: the sender capture is not in the order sent: $(paste -sd' ' "$TMP/ids")"

# Deterministic: the same run gives the same bytes, from a copy of the
# trace too.
expect_run 0 "" -- pcap "$DB" --run 2 -o "$TMP/again.pcapng" -q
sqlite3 "$DB" ".backup '$TMP/copy.db'"
expect_run 0 "" -- pcap "$TMP/copy.db" --run 2 -o "$TMP/copy.pcapng" -q
CHECKS=$((CHECKS + 1))
cmp -s "$TMP/r2.pcapng" "$TMP/again.pcapng" && cmp -s "$TMP/r2.pcapng" "$TMP/copy.pcapng" ||
	fail "the same run exported twice differs"

# Refusals: one line naming the file or option, exit 2, no output left.
echo old >"$TMP/old.pcapng"
expect_run 2 "^tlsim: .*t\.db: no run 99 \(--run\)$" -- pcap "$DB" --run 99 -o "$TMP/old.pcapng"
expect_one_line_error
CHECKS=$((CHECKS + 1))
[ "$(cat "$TMP/old.pcapng")" = old ] || fail "a failed export replaced the old output"
expect_run 2 "^tlsim: .*t\.db: holds 7 runs; say which with --run ID$" -- pcap "$DB" -o "$TMP/x.pcapng"
expect_one_line_error
echo "not a database" >"$TMP/text.db"
expect_run 2 "^tlsim: .*text\.db: not a tlsim trace" -- pcap "$TMP/text.db" -o "$TMP/x.pcapng"
expect_one_line_error
expect_run 2 "^tlsim: .*missing\.db: no such trace" -- pcap "$TMP/missing.db" -o "$TMP/x.pcapng"
printf 'local w = tlsim.world{}\nw:expect(true, "nothing sent")\n' >"$TMP/quiet.lua"
expect_run 0 "" -- run "$TMP/quiet.lua" --trace "$TMP/quiet.db" -q
expect_run 2 "^tlsim: .*quiet\.db: run 1 has no packets$" -- pcap "$TMP/quiet.db" -o "$TMP/x.pcapng"
expect_one_line_error
expect_run 2 "^tlsim: cannot write pcapng .*/nodir/x\.pcapng: No such file or directory$" -- pcap "$DB" --run 1 -o "$TMP/nodir/x.pcapng"
expect_one_line_error
expect_run 2 "^tlsim: cannot write pcapng /proc/x\.pcapng: " -- pcap "$DB" --run 1 -o /proc/x.pcapng
expect_run 2 "^tlsim: cannot write pcapng /dev/null: not a regular file$" -- pcap "$DB" --run 1 -o /dev/null
expect_run 2 "^tlsim: cannot write pcapng .*t\.db: it is the trace being read$" -- pcap "$DB" --run 1 -o "$DB"
expect_run 2 "^tlsim: cannot write key log .*/nodir/k: No such file or directory$" -- pcap "$DB" --run 1 -o "$TMP/x.pcapng" --keylog "$TMP/nodir/k"
expect_run 2 "^tlsim: --keylog .*x\.pcapng is also the pcapng output" -- pcap "$DB" --run 1 -o "$TMP/x.pcapng" --keylog "$TMP/x.pcapng"
CHECKS=$((CHECKS + 1))
[ ! -e "$TMP/x.pcapng" ] || fail "a refused export left $TMP/x.pcapng"
CHECKS=$((CHECKS + 1))
ls "$TMP" | grep -q 'tmp' && fail "temporary files left: $(ls "$TMP" | grep tmp)"
expect_run 2 "^tlsim pcap: needs TRACE.db and -o FILE" -- pcap "$DB" --run 1
expect_run 2 "^tlsim pcap: --at needs receiver or sender, got 'middle'" -- pcap "$DB" --run 1 -o "$TMP/x.pcapng" --at middle
expect_run 2 "^tlsim pcap: --run needs a run id, got '0'" -- pcap "$DB" --run 0 -o "$TMP/x.pcapng"
expect_run 2 "^tlsim pcap: unknown option '--bogus'" -- pcap "$DB" --bogus
expect_run 0 "usage: tlsim pcap" -- pcap --help
expect_run 0 "pcap TRACE.db -o OUT.pcapng" -- --help
finish
