# tlsim replay: a recorded run re-runs to the same digest; a trace whose
# run no longer matches names the first differing row; a changed scenario
# is refused; bad arguments are one-line errors.
. "$2/tests/lib.sh"
S="$SRC/scripts/scenarios"
DB="$TMP/t.db"
expect_run 0 "" -- run "$S/quic_basic.lua" --seed 3 --set loss=0.1 --trace "$DB" -q
expect_run 1 "" -- run "$S/rustls_acceptor_alert.lua" --set variant=buggy --set failure=group --trace "$DB" -q
expect_run 0 "" -- run "$S/echo_lossy.lua" --seed 9 --trace "$DB" -q
for r in 1 2 3; do
	expect_run 0 "^run $r of .* replayed: digest [0-9a-f]{16} matches" -- replay "$DB" --run $r
done
expect_run 0 "matches \(fail\)" -- replay "$DB" --run 2
# A run whose rows and digest no longer match what the scenario makes.
cp "$DB" "$TMP/bad.db"
sqlite3 "$TMP/bad.db" "UPDATE packet SET frames = 'tampered' WHERE run = 1 AND seq = 3; UPDATE run SET digest = '00' || substr(digest, 3) WHERE id = 1"
expect_run 1 "first difference at [0-9.]+s, row [0-9]+ of the timeline: frames" -- replay "$TMP/bad.db" --run 1
expect_run 1 "  recorded: packet seq=3 .*frames='tampered'" -- replay "$TMP/bad.db" --run 1
expect_run 1 "  replayed: packet seq=3 " -- replay "$TMP/bad.db" --run 1
# A scenario changed after recording is refused.
cp "$S/echo_basic.lua" "$TMP/s.lua"
expect_run 0 "" -- run "$TMP/s.lua" --trace "$TMP/c.db" -q
echo "-- changed" >>"$TMP/s.lua"
expect_run 2 "^tlsim: .*s.lua changed since run 1 was recorded" -- replay "$TMP/c.db" --run 1
expect_one_line_error
expect_run 2 "^tlsim: .*: no run 9$" -- replay "$DB" --run 9
expect_one_line_error
expect_run 2 "^tlsim replay: --run needs a run id, got 'x'" -- replay "$DB" --run x
expect_run 2 "^tlsim replay: needs TRACE.db and --run ID" -- replay "$DB"
expect_run 2 "^tlsim replay: unknown option '--bogus'" -- replay "$DB" --run 1 --bogus
expect_run 0 "usage: tlsim replay" -- replay --help
finish
