# Per-endpoint clocks: clock_offset moves an endpoint's wall clock (its
# certificate checks), clock_drift its rate (timers and wall clock): every
# case of scripts/scenarios/clock_skew.lua holds, the fast client's idle
# timer event runs at its own 4 s (3.24 s of virtual time), and a drifting
# run is as deterministic as any other.
. "$2/tests/lib.sh"
S="$SRC/scripts/scenarios/clock_skew.lua"
expect_run 0 "case none: X.509 error 0, client open" -- run "$S"
expect_run 0 "case behind: X.509 error 9, " -- run "$S" --set case=behind
expect_run 0 "case ahead: X.509 error 10, " -- run "$S" --set case=ahead
expect_run 0 "client closed 3.24s \(its clock: 4.05s\), server 4.07s" -- run "$S" --set case=fast --trace "$TMP/a.db"
expect_run 0 "" -- run "$S" --set case=fast --trace "$TMP/b.db" -q
expect_run 0 "^no difference" -- diff "$TMP/a.db" "$TMP/b.db"
CHECKS=$((CHECKS + 1))
t=$(sqlite3 "$TMP/a.db" "SELECT min(time_ns) FROM event WHERE node = 'client' AND kind = 'timer' AND time_ns > 3000000000")
[ "$t" = 3240000000 ] || fail "the fast client's idle timer event ran at $t, want 3240000000"
printf 'local w = tlsim.world{}\nw:link{}\nw:quic_client{ pki = w:pki{}, clock_drift = 0.9 }\n' >"$TMP/b.lua"
expect_run 2 "b.lua:3: w:quic_client: clock_drift must be a number in \(-0.5, 0.5\)" -- run "$TMP/b.lua"
printf 'local w = tlsim.world{}\nw:link{}\nw:tls_client{ pki = w:pki{}, clock_offset = "soon" }\n' >"$TMP/c.lua"
expect_run 2 "c.lua:3: w:tls_client: clock_offset: bad duration 'soon'" -- run "$TMP/c.lua"
finish
