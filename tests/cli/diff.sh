# tlsim diff: two runs compared as they happened (one timeline by virtual
# time): equal runs (same seed, two files) have no difference; a changed
# row is found with the rows before it and what it belongs to; two seeds
# differ; --ignore; run selection and bad arguments.
. "$2/tests/lib.sh"
S="$SRC/scripts/scenarios"
M="$S/msquic_shutdown_race.lua"
expect_run 0 "" -- run "$M" --set variant=tail --seed 1 --trace "$TMP/a.db" -q
expect_run 0 "" -- run "$M" --set variant=tail --seed 1 --trace "$TMP/b.db" -q
expect_run 0 "^no difference \([0-9]+ rows\)$" -- diff "$TMP/a.db" "$TMP/b.db"
expect_run 0 "^no difference" -- diff "$TMP/a.db:1" "$TMP/b.db:1"
# An op row changed in a copy: found, with context and its operation.
cp "$TMP/b.db" "$TMP/c.db"
seq=$(sqlite3 "$TMP/c.db" "SELECT seq FROM op WHERE op_type = 'shutdown' AND action = 'dequeue'")
sqlite3 "$TMP/c.db" "UPDATE op SET depth = 99 WHERE seq = $seq"
expect_run 1 "^first difference at 1\.040000s, row [0-9]+ of the timeline: depth$" -- diff "$TMP/a.db" "$TMP/c.db" --context 3
expect_run 1 "  before it \(the same in both\):" -- diff "$TMP/a.db" "$TMP/c.db" --context 3
expect_run 1 "  $TMP/c.db:1: op seq=$seq .*op_type='shutdown' action='dequeue' depth=99" -- diff "$TMP/a.db" "$TMP/c.db"
expect_run 1 "\(operation #[0-9]+ \(shutdown\) on client, caused by api\)" -- diff "$TMP/a.db" "$TMP/c.db"
n=$(grep -c '^    [0-9.]*s ' "$TMP/out")
CHECKS=$((CHECKS + 1))
[ "$n" = 5 ] || fail "default context: $n rows shown, want 5"
expect_run 1 "" -- diff "$TMP/a.db" "$TMP/c.db" --context 0
CHECKS=$((CHECKS + 1))
! grep -q 'before it' "$TMP/out" || fail "--context 0 showed rows"
# Two seeds: the ciphertext differs at once; without it, later.
expect_run 1 "" -- run "$M" --set variant=tail --seed 4 --trace "$TMP/a.db" -q
expect_run 1 "first difference at 0\.000000s, row [0-9]+ of the timeline: data" -- diff "$TMP/a.db:1" "$TMP/a.db:2"
expect_run 1 "of the timeline: (len|frames|time_ns|op_type|detail|\(a different)" -- diff "$TMP/a.db:1" "$TMP/a.db:2" --ignore data
expect_run 1 "" -- diff "$TMP/a.db:1" "$TMP/a.db:2" -q
CHECKS=$((CHECKS + 1))
[ ! -s "$TMP/out" ] || fail "-q printed the difference"
# Bad arguments.
expect_run 2 "^tlsim: $TMP/a.db holds 2 runs; name one as $TMP/a.db:RUN$" -- diff "$TMP/a.db" "$TMP/b.db"
expect_one_line_error
expect_run 2 "^tlsim: $TMP/b.db: no run 9$" -- diff "$TMP/a.db:1" "$TMP/b.db:9"
printf 'text\n' >"$TMP/t.txt"
expect_run 2 "^tlsim: $TMP/t.txt: not a tlsim trace" -- diff "$TMP/t.txt" "$TMP/b.db"
expect_run 2 "^tlsim diff: --context needs an integer from 0 to 50, got '99'" -- diff "$TMP/a.db:1" "$TMP/b.db" --context 99
expect_run 2 "^tlsim diff: needs two runs" -- diff "$TMP/a.db:1"
expect_run 0 "usage: tlsim diff" -- diff --help
finish
