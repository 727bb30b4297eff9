# A trace on a tiny filesystem: a sweep that fills it stops with a one-line
# error naming the file (exit 2), and the batches it committed before are
# intact (integrity_check, every digest recomputes, the stored seeds are a
# prefix of the range); copied somewhere roomy, `--resume` completes it
# into the trace of one uninterrupted sweep. A full filesystem at the start
# refuses the trace before any run, for `sweep` and for `run`.
#
# The filesystem is a real tmpfs of 16 MiB, mounted without root in a user
# and mount namespace of the test's own (`unshare -rm`, util-linux): the
# kernel's own ENOSPC, not a simulated one (tests/test_trace.c's
# trace_disk_full fails SQLite's writes through a test VFS instead). Where
# user namespaces are not allowed the test fails and says so; it does not
# skip.
. "$2/tests/lib.sh"
RACE="$SRC/scripts/scenarios/msquic_shutdown_race.lua"
N=900

mkdir "$TMP/small" "$TMP/kept"
if ! unshare -rm sh -c "mount -t tmpfs -o size=1m tmpfs '$TMP/small'" 2>"$TMP/err"; then
	fail "cannot mount a tmpfs in a user namespace (unshare -rm: $(cat "$TMP/err")); this test needs unprivileged user namespaces (sysctl user.max_user_namespaces > 0)"
	finish
fi

# In the namespace: a 16 MiB tmpfs; the sweep fills it; what it left
# there (the trace, its -wal and -shm) is copied out before the
# namespace, and the tmpfs with it, goes away.
export TLSIM RACE N TMP
unshare -rm sh -s <<'EOF'
mount -t tmpfs -o size=16m tmpfs "$TMP/small" || exit 1
"$TLSIM" sweep "$RACE" --set variant=tail --seeds 1..$N --jobs 2 --trace "$TMP/small/t.db" -q \
	</dev/null >"$TMP/full.out" 2>"$TMP/full.err"
echo $? >"$TMP/full.rc"
cp "$TMP/small"/t.db* "$TMP/kept/"
# A filesystem full from the start.
rm -f "$TMP/small"/t.db*
head -c 17000000 /dev/zero >"$TMP/small/filler" 2>/dev/null
"$TLSIM" sweep "$RACE" --seeds 1..4 --trace "$TMP/small/u.db" -q </dev/null >/dev/null 2>"$TMP/open.err"
echo $? >"$TMP/open.rc"
"$TLSIM" run "$RACE" --trace "$TMP/small/v.db" -q </dev/null >/dev/null 2>"$TMP/run.err"
echo $? >"$TMP/run.rc"
EOF

DB="$TMP/kept/t.db"
check "exit status of the sweep that filled the disk" "$(cat "$TMP/full.rc")" 2
check "one line" "$(wc -l <"$TMP/full.err")" 1
kept=$(sqlite3 "$DB" "SELECT count(*) FROM run")
CHECKS=$((CHECKS + 1))
grep -Eq "^tlsim sweep: disk full writing $TMP/small/t.db; the $kept runs of this sweep committed before are kept, and --resume runs the others$" "$TMP/full.err" ||
	fail "disk full: $(cat "$TMP/full.err") (the trace holds $kept runs)"
echo "disk full after $kept of $N runs: $(cat "$TMP/full.err")"
CHECKS=$((CHECKS + 1))
[ "$kept" -gt 0 ] && [ "$kept" -lt "$N" ] || fail "want some runs kept, got $kept"
check "integrity" "$(sqlite3 "$DB" "PRAGMA integrity_check")" ok
check "the stored seeds are 1..$kept" \
	"$(sqlite3 "$DB" "SELECT min(seed) || ' ' || max(seed) || ' ' || count(DISTINCT seed) FROM run")" "1 $kept $kept"
check "rows of no run" "$(sqlite3 "$DB" "SELECT count(*) FROM op WHERE run NOT IN (SELECT id FROM run)")" 0
expect_run 0 "merged $kept runs into .* digests verified" -- merge "$TMP/verify.db" "$DB"

# Resumed where there is room: the trace of one uninterrupted sweep.
expect_run 1 "resumed: $kept of the $N runs" -- sweep "$RACE" --set variant=tail --seeds 1..$N --jobs 2 --trace "$DB" --resume
expect_run 1 "" -- sweep "$RACE" --set variant=tail --seeds 1..$N --jobs 2 --trace "$TMP/clean.db" -q
sqlite3 "$DB" .dump >"$TMP/resumed.sql"
sqlite3 "$TMP/clean.db" .dump >"$TMP/clean.sql"
CHECKS=$((CHECKS + 1))
cmp -s "$TMP/resumed.sql" "$TMP/clean.sql" || fail "the resumed trace differs from an uninterrupted sweep's"

# Full from the start: refused before any run, the file named.
check "sweep on a full disk: exit" "$(cat "$TMP/open.rc")" 2
check "sweep on a full disk" "$(cat "$TMP/open.err")" "tlsim: disk full writing $TMP/small/u.db"
check "run on a full disk: exit" "$(cat "$TMP/run.rc")" 2
CHECKS=$((CHECKS + 1))
grep -q "disk full writing $TMP/small/v.db" "$TMP/run.err" && [ "$(wc -l <"$TMP/run.err")" -eq 1 ] ||
	fail "run on a full disk: $(cat "$TMP/run.err")"
finish
