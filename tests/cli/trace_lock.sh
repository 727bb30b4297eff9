# Another process holding the trace's write lock: a writer that opens the
# trace then fails at once, one line naming the file, leaving it as it
# was; a writer already open waits at commit for a short lock and gets in;
# a reader only delays a writer that creates the trace.
. "$2/tests/lib.sh"
H="$BUILD/tests/tlsim_tracecrash"
DB="$TMP/t.db"

wait_for() { wait_until test -e "$1"; }

# hold_lock SECONDS MARKER: sqlite3 takes the write lock, creates MARKER,
# holds the lock SECONDS, releases it.
hold_lock() {
	( printf 'BEGIN IMMEDIATE;\n.shell touch %s\n' "$2"; sleep "$1"; printf 'ROLLBACK;\n' ) |
		sqlite3 "$DB" >/dev/null &
	holder=$!
	wait_for "$2"
}

out=$("$H" write "$DB" 100) || fail "first run: $out"
d1=${out#* }
sum=$(cksum <"$DB")

hold_lock 1 "$TMP/locked1"
CHECKS=$((CHECKS + 1))
"$H" write "$DB" 100 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 2 ] || fail "open while locked: exit $rc, want 2"
grep -q "^tlsim_tracecrash: error -[0-9]*: $DB: locked by another writer\$" "$TMP/err" ||
	fail "open while locked: $(cat "$TMP/err")"
check "one line" "$(wc -l <"$TMP/err")" 1
wait "$holder"
check "file unchanged" "$(cksum <"$DB")" "$sum"
check "runs" "$(sqlite3 "$DB" "SELECT count(*) FROM run")" 1

# Open first, then the lock is taken; released within the 2 s the commit
# waits: the run gets in.
"$H" write-when "$DB" 100 "$TMP/ready" "$TMP/go" >"$TMP/out2" 2>"$TMP/err2" &
writer=$!
wait_for "$TMP/ready"
hold_lock 0.5 "$TMP/locked2"
touch "$TMP/go"
wait "$writer"
rc=$?
wait "$holder"
CHECKS=$((CHECKS + 1))
[ "$rc" -eq 0 ] || fail "commit after a short lock: exit $rc: $(cat "$TMP/err2")"
set -- $(cat "$TMP/out2")
check "run id" "${1:-}" 2
check "digest" "${2:-}" "$d1"
echo "commit waited ${3:-?} ms for the lock"
check "runs after" "$(sqlite3 "$DB" "SELECT group_concat(id) FROM run")" "1,2"
check "integrity" "$(sqlite3 "$DB" "PRAGMA integrity_check")" "ok"

# A reader, not a writer: sqlite3 in a read transaction on an empty file
# (a trace about to be created, in rollback mode until the writer
# switches it to WAL) while a writer creates the trace. The writer waits
# for the reader's shared lock (it used to fail at once, "locked by
# another writer", when a sweep was watched from its first moment).
NEW="$TMP/new.db"
: >"$NEW"
( printf 'BEGIN;\nSELECT count(*) FROM sqlite_master;\n.shell touch %s\n' "$TMP/reading"; sleep 0.5; printf 'COMMIT;\n' ) |
	sqlite3 "$NEW" >/dev/null &
reader=$!
wait_for "$TMP/reading"
CHECKS=$((CHECKS + 1))
out=$("$H" write "$NEW" 100 2>&1) || fail "create under a reader: $out"
wait "$reader"
check "created under a reader" "${out%% *}" 1
check "integrity of the new trace" "$(sqlite3 "$NEW" "PRAGMA integrity_check")" "ok"
finish
