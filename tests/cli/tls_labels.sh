# The tls= labels of TLS-over-stream segments are exact: each segment
# names exactly the messages it has bytes of. The oracle is outside tlsim:
# tshark decrypts the exported capture (its Decryption Secrets Block) and
# says, record by record, the inner content type, the handshake messages
# (type, length) and the alerts; the record boundaries come from the
# segments' bytes in the trace. An awk walk places the messages in the
# records (a TLS 1.3 encrypted record is plaintext + content type + a
# 16-byte tag; the walk must consume exactly the messages tshark lists,
# which also proves BoringSSL adds no padding) and derives every segment's
# label, which must equal the trace's, for both endpoints. Cases: TLS 1.3
# with small segments (the server's flight over 12 segments), TLS 1.3 with
# 512-byte records (a message over two records, two messages in one
# record, both checked to occur), TLS 1.2 with ChaCha20-Poly1305, AES-GCM
# and AES-CBC over 20-byte segments, TLS 1.3 with a HelloRetryRequest.
# Then: the server's Finished labels
# only the flight's last segments, never the first Certificate segment.
. "$2/tests/lib.sh"
if ! command -v tshark >/dev/null 2>&1; then
	echo "FAIL: tshark not found; tests/cli/tls_labels.sh needs it (scripts/setup installs it)" >&2
	exit 1
fi
DB="$TMP/t.db"
cat >"$TMP/s.lua" <<'EOF'
local w = tlsim.world{ seed = arg.seed or 1 }
w:link{ latency = "20ms" }
local pki = w:pki{}
local srv = w:tls_server{ pki = pki, mss = tonumber(arg.smss),
                          max_record = tonumber(arg.rec),
                          ciphers = arg.ciphers, groups = arg.groups }
local cli = w:tls_client{ pki = pki, mss = tonumber(arg.cmss),
                          max_version = arg.v or "1.3" }
local body = ("0123456789"):rep(130)
srv:on("data", function(s) s:write(body); s:shutdown{} end)
cli:on("handshake_done", function(c) c:write("GET") end)
cli:on("close_notify", function(c) c:shutdown{} end)
cli:connect(); srv:accept()
w:run{ limit = "10s" }
w:expect(cli:received() == body, "the response arrives")
w:expect(cli:outcome() == "clean: close_notify exchanged", "clean close",
         cli:outcome())
EOF

# oracle RUN SRC ADDR TLS12: compares the trace's labels of SRC's data
# segments with the oracle's; prints the oracle's summary.
oracle() {
	run=$1 src=$2 addr=$3 tls12=$4
	sqlite3 "$DB" "SELECT group_concat(h, '') FROM (SELECT hex(substr(data, 29)) AS h FROM packet WHERE run = $run AND src = '$src' AND ptype LIKE 'DATA%' AND frames NOT LIKE '% rtx%' ORDER BY id)" >"$TMP/hex"
	sqlite3 -separator '|' "$DB" "SELECT substr(frames, 5, instr(frames, ' ') - 5) - 1, len - 28, CASE WHEN instr(frames, ' tls=') > 0 THEN substr(frames, instr(frames, ' tls=') + 5) ELSE '' END FROM packet WHERE run = $run AND src = '$src' AND ptype LIKE 'DATA%' ORDER BY id" >"$TMP/segs"
	tshark -n -r "$TMP/r$run.pcapng" -Y "ip.src == $addr && tls" -T fields \
		-E separator='|' -E aggregator=',' -e tls.record.content_type \
		-e tls.record.length -e tls.handshake.type -e tls.handshake.length \
		-e tls.alert_message.desc >"$TMP/tsh" 2>"$TMP/tsh.err" ||
		fail "run $run: tshark failed: $(cat "$TMP/tsh.err")"
	awk -v tls12="$tls12" -f - "$TMP/hex" "$TMP/tsh" "$TMP/segs" <<'EOF'
function byte(i) {
	return (index(HEX, substr(hex, 2 * i + 1, 1)) - 1) * 16 + index(HEX, substr(hex, 2 * i + 2, 1)) - 1
}
function piece(from, to, name) {
	np++; pf[np] = from; pt[np] = to; pn[np] = name
	pr[np] = r
}
function bad(msg) { print "ORACLE: " msg; errors++ }
BEGIN {
	HEX = "0123456789ABCDEF"
	split("1 ClientHello 2 ServerHello 4 NewSessionTicket 8 EncryptedExtensions 11 Certificate 12 ServerKeyExchange 13 CertificateRequest 14 ServerHelloDone 15 CertificateVerify 16 ClientKeyExchange 20 Finished 24 KeyUpdate", kv, " ")
	for (i = 1; i in kv; i += 2) name[kv[i]] = kv[i + 1]
}
FILENAME == ARGV[1] { hex = hex $0; next }
FILENAME == ARGV[2] {
	split($0, f, "|")
	n = split(f[1], a, ","); for (i = 1; i <= n; i++) ct[++nct] = a[i]
	n = split(f[2], a, ","); for (i = 1; i <= n; i++) rl[++nrl] = a[i]
	n = split(f[3], a, ","); split(f[4], b, ",")
	for (i = 1; i <= n; i++) { nhs++; hs[nhs] = name[a[i]]; hl[nhs] = b[i] + 4 }
	n = split(f[5], a, ","); for (i = 1; i <= n; i++) ad[++nad] = a[i]
	next
}
{ nseg++; sa[nseg] = $0 }
END {
	pos = 0; r = 0; mi = 1; hoff = 0; ai = 0; ccs = 0
	total = length(hex) / 2
	while (pos < total) {
		o = byte(pos); L = byte(pos + 3) * 256 + byte(pos + 4)
		s = pos; e = pos + 5 + L; r++
		if (rl[r] != L) bad("record " r ": tshark length " rl[r] ", bytes " L)
		t = ct[r]
		if (t == 22) {
			if (o == 23) plen = L - 17
			else if (tls12 && ccs) plen = hl[mi] - hoff
			else plen = L
			p = s + 5; left = plen; first = 1; pieces = 0
			while (left > 0 && mi <= nhs) {
				take = hl[mi] - hoff; if (take > left) take = left
				piece(first ? s : p, left == take ? e : p + take, hs[mi])
				pieces++
				if (hoff > 0) spanned++
				p += take; left -= take; hoff += take; first = 0
				if (hoff == hl[mi]) { mi++; hoff = 0 }
			}
			if (left > 0) bad("record " r ": " left " bytes beyond the messages")
			if (pieces > 1) packed++
		} else if (t == 21) {
			ai++; piece(s, e, ad[ai] == 0 ? "close_notify" : "alert")
		} else if (t == 20) {
			piece(s, e, "ChangeCipherSpec"); ccs = 1
		} else if (t == 23) {
			piece(s, e, "ApplicationData")
		}
		pos = e
	}
	if (r != nrl) bad(r " records in the bytes, " nrl " from tshark")
	if (mi != nhs + 1 || hoff != 0) bad("handshake messages left over: " mi "/" nhs " +" hoff)
	for (k = 1; k <= nseg; k++) {
		split(sa[k], f, "|"); lo = f[1]; hi = f[1] + f[2]
		want = ""; delete seen
		for (i = 1; i <= np; i++) {
			if (pf[i] < hi && pt[i] > lo && !(pn[i] in seen)) {
				seen[pn[i]] = 1; want = want (want == "" ? "" : ",") pn[i]
			}
		}
		if (want != f[3]) bad("segment at " lo " len " f[2] ": trace '" f[3] "', oracle '" want "'")
	}
	printf "records=%d messages=%d segments=%d packed=%d spanned=%d errors=%d\n", r, nhs, nseg, packed + 0, spanned + 0, errors + 0
}
EOF
}

# case RUN TLS12 ARGS...: run the scenario with ARGS, export the capture,
# check both endpoints against the oracle; sets SUMMARY_S (the server's).
n=0
case_run() {
	n=$((n + 1))
	tls12=$1
	shift
	expect_run 0 "pass" -- run "$TMP/s.lua" --trace "$DB" "$@"
	"$TLSIM" pcap "$DB" --run "$n" -o "$TMP/r$n.pcapng" >/dev/null 2>&1 ||
		fail "run $n: tlsim pcap failed"
	for side in "server 10.0.0.2" "client 10.0.0.1"; do
		set -- $side
		out=$(oracle "$n" "$1" "$2" "$tls12")
		CHECKS=$((CHECKS + 1))
		case $out in
		*"errors=0") ;;
		*) fail "run $n $1: labels differ from the oracle:"
		   printf '%s\n' "$out" | head -12 | sed 's/^/  | /' >&2 ;;
		esac
		[ "$1" = server ] && SUMMARY_S=$out
		echo "run $n $1: $out"
	done
}

# 1: TLS 1.3, the server's flight in 100-byte segments.
case_run 0 --set smss=100 --set cmss=40
check "run 1: server summary" "$SUMMARY_S" \
	"records=6 messages=7 segments=31 packed=2 spanned=0 errors=0"
# The server's Finished: only in the last two segments of its flight
# (bytes 1082..1133), not in the first Certificate segment, which carries
# ServerHello's tail, the ChangeCipherSpec and EncryptedExtensions too.
check "run 1: server segments with Finished" \
	"$(sqlite3 "$DB" "SELECT group_concat(frames, ';') FROM packet WHERE run = 1 AND src = 'server' AND frames LIKE '%tls=%Finished%'")" \
	"seq=1001 ack=251 len=100 tls=Certificate,CertificateVerify,Finished;seq=1101 ack=251 len=33 tls=Finished"
check "run 1: first Certificate segment" \
	"$(sqlite3 "$DB" "SELECT frames FROM packet WHERE run = 1 AND src = 'server' AND frames LIKE '%Certificate%' ORDER BY id LIMIT 1")" \
	"seq=101 ack=251 len=100 tls=ServerHello,ChangeCipherSpec,EncryptedExtensions,Certificate"
# 2: TLS 1.3 with 512-byte records: EncryptedExtensions and the first
# part of the Certificate in one record, the Certificate's rest in the
# next (and the response in three records).
case_run 0 --set smss=100 --set cmss=40 --set rec=512
case $SUMMARY_S in
*"packed=0"* | *"spanned=0"*) fail "run 2: no record with two messages or no message over two records: $SUMMARY_S" ;;
esac
CHECKS=$((CHECKS + 1))
# 3-5: TLS 1.2 (ChaCha20-Poly1305 by default, then AES-GCM and AES-CBC).
case_run 1 --set smss=20 --set cmss=20 --set v=1.2
case_run 1 --set smss=20 --set cmss=20 --set v=1.2 --set ciphers=ECDHE-ECDSA-AES128-GCM-SHA256
case_run 1 --set smss=20 --set cmss=20 --set v=1.2 --set ciphers=ECDHE-ECDSA-AES128-SHA
# 6: TLS 1.3 with a HelloRetryRequest (the server takes P-256 only, the
# client's first key share is X25519): plaintext handshake records after
# both ends' ChangeCipherSpec.
case_run 0 --set smss=100 --set cmss=40 --set groups=P-256
check "HelloRetryRequest" "$(sqlite3 "$DB" "SELECT group_concat(src || ' ' || frames, ';') FROM packet WHERE run = 6 AND frames LIKE '%tls=%ChangeCipherSpec%'")" \
	"server seq=1 ack=251 len=99 tls=ServerHello,ChangeCipherSpec;client seq=251 ack=100 len=40 tls=ChangeCipherSpec,ClientHello"
check "ciphers" "$(sqlite3 "$DB" "SELECT group_concat(detail, ';') FROM tls WHERE node = 'client' AND event = 'handshake_done'")" \
	"TLSv1.3 TLS_CHACHA20_POLY1305_SHA256 X25519;TLSv1.3 TLS_CHACHA20_POLY1305_SHA256 X25519;TLSv1.2 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 X25519;TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 X25519;TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA X25519;TLSv1.3 TLS_CHACHA20_POLY1305_SHA256 P-256"
finish
