# A trace writer killed in the middle of its commit (the crash hook,
# sim_trace_set_crash_after) leaves the earlier runs intact and readable
# by another process, the interrupted run absent, and the file open to
# new runs. Checked with the sqlite3 CLI, an outside reader.
. "$2/tests/lib.sh"
H="$BUILD/tests/tlsim_tracecrash"
DB="$TMP/t.db"

check() {
	CHECKS=$((CHECKS + 1))
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

out=$("$H" write "$DB" 500) || fail "first run: $out"
check "first run id" "${out%% *}" 1
d1=${out#* }
check "stored digest" "$(sqlite3 "$DB" "SELECT digest FROM run WHERE id = 1")" "$d1"

# 80000 rows, killed after 70000 of them are inserted: more than SQLite's
# page cache, so uncommitted pages have reached the WAL when it dies.
CHECKS=$((CHECKS + 1))
"$H" write "$DB" 80000 70000 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 9 ] || fail "killed writer: exit $rc, want 9 (the crash hook)"
[ -s "$TMP/out" ] && fail "killed writer printed a result: $(cat "$TMP/out")"
walsize=$(wc -c <"$DB-wal" 2>/dev/null || echo 0)
CHECKS=$((CHECKS + 1))
[ "$walsize" -gt 1000000 ] || fail "the killed writer left only $walsize bytes of WAL; the test wants uncommitted pages in it"

check "integrity" "$(sqlite3 "$DB" "PRAGMA integrity_check")" "ok"
check "runs" "$(sqlite3 "$DB" "SELECT group_concat(id) FROM run")" "1"
check "rows of run 1" "$(sqlite3 "$DB" "SELECT ((SELECT count(*) FROM op) + (SELECT count(*) FROM packet) + (SELECT count(*) FROM node)) || ' ' || rows FROM run")" "500 500"
check "no rows of the killed run" "$(sqlite3 "$DB" "SELECT count(*) FROM op WHERE run <> 1")" "0"
check "recomputed digest" "$("$H" digest "$DB" 1)" "$d1"

# New runs append; the same rows give the same digest under a new id.
out=$("$H" write "$DB" 500) || fail "run after the crash: $out"
check "next run" "$out" "2 $d1"
check "integrity after" "$(sqlite3 "$DB" "PRAGMA integrity_check")" "ok"

# Killed right after sim_trace_end returned, the trace still open: the run
# it reported stored is in the file, whole (the writer's VFS gathers a
# commit's WAL frames in memory; they must all be written by then).
for rows in 500 30000; do
	out=$("$H" write-kill "$DB" $rows)
	rc=$?
	check "write-kill $rows: exit" "$rc" 137
	id=${out%% *}
	check "write-kill $rows: stored" "$(sqlite3 "$DB" "SELECT rows FROM run WHERE id = '$id'")" "$rows"
	check "write-kill $rows: digest" "$("$H" digest "$DB" "$id")" "${out#* }"
done
check "runs after the kills" "$(sqlite3 "$DB" "SELECT group_concat(id) FROM run")" "1,2,3,4"
check "integrity after the kills" "$(sqlite3 "$DB" "PRAGMA integrity_check")" "ok"
finish
