# Segmentation control: the TLS stream cut at chosen byte offsets (and, in
# a sweep, at every offset of the ClientHello), TLS fed one byte at a time,
# and QUIC without coalescing: every case completes the handshake and
# delivers its data byte-exact, and the trace shows the cuts.
. "$2/tests/lib.sh"
S="$SRC/scripts/scenarios/segmentation.lua"
DB="$TMP/t.db"
expect_run 0 "pass" -- run "$S" --set case=split --trace "$DB"
CHECKS=$((CHECKS + 1))
got=$(sqlite3 "$DB" "SELECT group_concat(frames, ';') FROM (SELECT frames FROM packet WHERE run = 1 AND src = 'client' AND ptype = 'DATA' ORDER BY id LIMIT 3)")
[ "$got" = "seq=1 ack=1 len=5 tls=ClientHello;seq=6 ack=1 len=95 tls=ClientHello;seq=101 ack=1 len=150 tls=ClientHello" ] || fail "split: client segments '$got'"
expect_run 0 "pass" -- run "$S" --set case=chunks --trace "$DB"
expect_run 0 "pass" -- run "$S" --set case=uncoalesced --trace "$DB"
CHECKS=$((CHECKS + 1))
[ "$(sqlite3 "$DB" "SELECT count(*) FROM packet d WHERE d.run = 3 AND d.src = 'server' AND d.parent IS NULL AND (SELECT count(*) FROM packet s WHERE s.run = 3 AND s.parent = d.id) <> 1")" = 0 ] ||
	fail "uncoalesced: a server datagram carries more than one QUIC packet"
CHECKS=$((CHECKS + 1))
[ "$(sqlite3 "$DB" "SELECT count(DISTINCT frames) FROM packet WHERE run = 3 AND src = 'server' AND parent IS NULL AND frames IN ('initial', 'handshake')")" = 2 ] ||
	fail "uncoalesced: the server's Initial and Handshake did not travel apart"
expect_run 0 "pass" -- run "$S" --set case=records --trace "$DB"
# Records of at most 512 bytes: the server's flight is 22 bytes longer
# than in one record (1133), a second record's header and tag.
check "records: the server's flight" "$(sqlite3 "$DB" "SELECT frames FROM packet WHERE run = 4 AND src = 'server' AND ptype = 'DATA' ORDER BY id LIMIT 1")" \
	"seq=1 ack=251 len=1155 tls=ServerHello,ChangeCipherSpec,EncryptedExtensions,Certificate,CertificateVerify,Finished"
# Every cut through the 250-byte ClientHello (and a little beyond).
expect_run 0 "pass +260 +100.0%" -- sweep "$S" --set case=split --seeds 1..260 --jobs 2
# split_in: the cut moves with the offset into the Certificate: the first
# segment of the server's flight is the Certificate's start plus N bytes,
# the same start for every N, and the next segment begins with the rest
# of the Certificate.
start=
for a in 1 2 37 500; do
	expect_run 0 "pass" -- run "$S" --set case=split_in --set at=$a --trace "$TMP/s$a.db"
	f=$(sqlite3 "$TMP/s$a.db" "SELECT frames FROM packet WHERE src = 'server' AND ptype = 'DATA' ORDER BY id LIMIT 1")
	len=$(printf '%s' "$f" | sed -n 's/.* len=\([0-9]*\) .*/\1/p')
	check "split_in at=$a: first segment's labels" "${f#* tls=}" "ServerHello,ChangeCipherSpec,EncryptedExtensions,Certificate"
	: "${start:=$((len - a))}"
	check "split_in at=$a: the Certificate starts at" "$((len - a))" "$start"
	check "split_in at=$a: next segment" "$(sqlite3 "$TMP/s$a.db" "SELECT frames FROM packet WHERE src = 'server' AND ptype = 'DATA' ORDER BY id LIMIT 1 OFFSET 1" | sed 's/.* tls=//')" "Certificate,CertificateVerify,Finished"
done
CHECKS=$((CHECKS + 1))
[ "$start" -gt 100 ] || fail "split_in: the Certificate starts at $start"
# Every cut through the first 400 bytes of the server's flight from its
# Certificate on.
expect_run 0 "pass +400 +100.0%" -- sweep "$S" --set case=split_in --seeds 1..400 --jobs 2
printf 'local w = tlsim.world{}\nw:link{}\nw:tls_server{ pki = w:pki{}, split_in = { msg = "Certificate", at = { 9, 3 } } }\n' >"$TMP/b3.lua"
expect_run 2 "b3.lua:3: w:tls_server: split_in: at must hold ascending offsets >= 1 into the message" -- run "$TMP/b3.lua"
printf 'local w = tlsim.world{}\nw:link{}\nw:tls_server{ pki = w:pki{}, split_in = { at = 3 } }\n' >"$TMP/b4.lua"
expect_run 2 "b4.lua:3: w:tls_server: split_in: msg must be a TLS message name" -- run "$TMP/b4.lua"
printf 'local w = tlsim.world{}\nw:link{}\nw:tls_client{ pki = w:pki{}, split_at = { 9, 3 } }\n' >"$TMP/b.lua"
expect_run 2 "b.lua:3: w:tls_client: split_at must hold ascending byte offsets >= 1" -- run "$TMP/b.lua"
printf 'local w = tlsim.world{}\nw:link{}\nw:tls_server{ pki = w:pki{}, max_record = 100 }\n' >"$TMP/b2.lua"
expect_run 2 "b2.lua:3: w:tls_server: max_record must be in \\[512, 16384\\], got 100" -- run "$TMP/b2.lua"
finish
