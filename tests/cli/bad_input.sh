# Bad input: each case asserts the exit code and the message.
. "$2/tests/lib.sh"
B="$SRC/tests/scenarios/bad"

expect_run 2 "^$B/syntax.lua:3: unexpected symbol near 'then'" -- run "$B/syntax.lua"
expect_one_line_error
expect_run 2 "^$B/runtime.lua:3: attempt to index a nil value \(local 't'\)" -- run "$B/runtime.lua"
expect_run 2 "runaway.lua:3: instruction budget exceeded" -- run "$B/runaway.lua" --max-instructions 1000000
expect_run 2 "memory limit exceeded" -- run "$B/membomb.lua" --max-memory 32M
expect_run 2 "callback_error.lua:5: handler exploded at seq 0" -- run "$B/callback_error.lua"
expect_run 2 "loss.lua:2: w:link: loss must be in \[0, 1\], got 1.5" -- run "$B/loss.lua"
expect_run 2 "latency.lua:2: w:link: latency: duration '-1ms' is negative" -- run "$B/latency.lua"
expect_run 2 "unknown_key.lua:2: w:link: unknown option 'lossy'" -- run "$B/unknown_key.lua"
expect_run 2 "never created a world" -- run "$B/no_world.lua"
expect_run 2 "sandbox.lua:2: attempt to index a nil value \(global 'io'\)" -- run "$B/sandbox.lua"
expect_run 2 "sandbox_load.lua:2: attempt to call a nil value \(global 'load'\)" -- run "$B/sandbox_load.lua"
expect_run 1 "livelock at 5ms: 10000 events without virtual time advancing; the loop is node 'script' event 'script' \(5001 of the last 5001 events\)" -- run "$B/livelock.lua" --livelock-events 10000
expect_run 1 "expect_fail.lua:8: expectation failed: finished within 10ms: 50ms" -- run "$B/expect_fail.lua"
expect_run 1 "reproduce: tlsim run .*expect_fail.lua --seed 1" -- run "$B/expect_fail.lua"

# Usage errors: one line, exit 2.
expect_run 2 "^tlsim run: unknown option '--frobnicate'" -- run "$B/expect_fail.lua" --frobnicate
expect_one_line_error
expect_run 2 "^tlsim run: --seed needs a non-negative integer, got 'abc'" -- run x.lua --seed abc
expect_run 2 "^tlsim run: --set needs KEY=VALUE, got 'novalue'" -- run x.lua --set novalue
expect_run 2 "^tlsim run: missing SCENARIO.lua" -- run
expect_run 2 "^tlsim: unknown command 'frob'" -- frob
expect_run 2 "^tlsim: cannot read scenario '$TMP/missing.lua': No such file or directory" -- run "$TMP/missing.lua"
expect_one_line_error

# Trace files: not a tlsim trace, corrupt, locked, unwritable: one line,
# exit 2, and the file is left exactly as it was.
OK="$SRC/scripts/scenarios/echo_basic.lua"
printf 'just some text\n' >"$TMP/text.db"
cp "$TMP/text.db" "$TMP/text.orig"
expect_run 2 "$TMP/text.db" -- run "$OK" --trace "$TMP/text.db"
expect_one_line_error
cmp -s "$TMP/text.db" "$TMP/text.orig" || fail "a text file given as --trace was modified"

sqlite3 "$TMP/other.db" "CREATE TABLE customers(id INTEGER, name TEXT); INSERT INTO customers VALUES (1, 'x');"
cp "$TMP/other.db" "$TMP/other.orig"
expect_run 2 "$TMP/other.db: not a tlsim trace" -- run "$OK" --trace "$TMP/other.db"
expect_one_line_error
cmp -s "$TMP/other.db" "$TMP/other.orig" || fail "another application's database was modified"

expect_run 2 "$TMP/nodir/t.db: cannot create trace: directory .* does not exist" -- run "$OK" --trace "$TMP/nodir/t.db"
expect_one_line_error
# Unwritable: /proc refuses new files even to root; a read-only directory
# does the same for everyone else.
expect_run 2 "/proc/tlsim-test.db: cannot open trace" -- run "$OK" --trace /proc/tlsim-test.db
expect_one_line_error
if [ "$(id -u)" -ne 0 ]; then
	mkdir "$TMP/ro" && chmod 555 "$TMP/ro"
	expect_run 2 "$TMP/ro/t.db: cannot create trace: directory .* is not writable" -- run "$OK" --trace "$TMP/ro/t.db"
fi

# A good trace, then a corrupted copy.
expect_run 0 "pass" -- run "$OK" --trace "$TMP/good.db"
cp "$TMP/good.db" "$TMP/corrupt.db"
size=$(wc -c <"$TMP/corrupt.db")
if [ "$size" -gt 8192 ]; then
	dd if=/dev/urandom of="$TMP/corrupt.db" bs=1 seek=4096 count=$((size - 4096)) conv=notrunc 2>/dev/null
	cp "$TMP/corrupt.db" "$TMP/corrupt.orig"
	expect_run 2 "$TMP/corrupt.db" -- run "$OK" --trace "$TMP/corrupt.db"
	expect_one_line_error
	cmp -s "$TMP/corrupt.db" "$TMP/corrupt.orig" || fail "a corrupt trace was modified"
else
	fail "the good trace is unexpectedly small ($size bytes)"
fi

# Locked: another process holds the write lock.
expect_run 0 "pass" -- run "$OK" --trace "$TMP/locked.db"
( printf 'BEGIN IMMEDIATE;\nSELECT 1;\n'; sleep 3; printf 'ROLLBACK;\n' ) | sqlite3 "$TMP/locked.db" >/dev/null &
lockpid=$!
sleep 1
expect_run 2 "$TMP/locked.db: locked by another writer" -- run "$OK" --trace "$TMP/locked.db"
expect_one_line_error
wait $lockpid
runs=$(sqlite3 "$TMP/locked.db" "SELECT count(*) FROM run")
[ "$runs" = 1 ] || fail "locked trace: want 1 run kept, got $runs"

finish
