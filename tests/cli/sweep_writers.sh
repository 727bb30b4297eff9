# Two writers on one trace. A trace is written in transactions that hold
# SQLite's write lock (a sweep: one batch, at most 256 runs or about 1 s):
# a second writer that finds the lock taken when it opens the trace fails
# at once, and one that finds it taken when it commits waits up to 2 s,
# then fails; either way with a one-line error naming the file (exit 2),
# keeping what it had committed, and the file is never corrupted.
#   1. An outside writer holds the lock: a sweep is refused before any run
#      and the file is left as it was.
#   2. An outside writer takes the lock in the middle of a sweep (during
#      a slow run, held past its end): the sweep waits for it and
#      completes.
#   3. Two sweeps and a series of `tlsim run`s on one trace at once: each
#      completes or fails with the lock message; then the file passes
#      PRAGMA integrity_check, every stored run digest-verifies, each
#      sweep's stored seeds are a prefix of its range, and `--resume`
#      completes both into the seed/digest pairs of one clean sweep.
. "$2/tests/lib.sh"
RACE="$SRC/scripts/scenarios/msquic_shutdown_race.lua"
X="$TMP/x.db"

runs() { trace_runs "$X"; }

# hold_lock SECONDS MARKER: sqlite3 takes the write lock (waiting for it
# up to 10 s), creates MARKER, holds the lock SECONDS, releases it.
hold_lock() {
	( printf '.timeout 10000\nBEGIN IMMEDIATE;\n.shell touch %s\n' "$2"; sleep "$1"; printf 'ROLLBACK;\n' ) |
		sqlite3 "$X" >/dev/null &
	holder=$!
	wait_until test -e "$2"
}

# lock_error FILE RC LABEL: RC is 2 and FILE the one-line lock message,
# or RC is 0 or 1 (the runs' outcomes) and FILE empty. Echoes what it saw.
lock_error() {
	CHECKS=$((CHECKS + 1))
	if [ "$2" -eq 2 ]; then
		[ "$(wc -l <"$1")" -eq 1 ] && grep -Eq "^tlsim( sweep)?: $X: locked by another writer" "$1" ||
			fail "$3: exit 2: $(cat "$1")"
		echo "locked out"
	elif [ "$2" -le 1 ]; then
		grep -q "locked" "$1" && fail "$3: exit $2 with: $(cat "$1")"
		echo "completed"
	else
		fail "$3: exit $2: $(cat "$1")"
	fi
}

"$TLSIM" sweep "$RACE" --set variant=tail --seeds 1..3 --trace "$X" -q </dev/null >/dev/null 2>&1

# 1. Refused at open.
sum=$(cksum <"$X")
hold_lock 2 "$TMP/held1"
expect_run 2 "^tlsim: $X: locked by another writer$" -- sweep "$RACE" --set variant=tail --seeds 4..10 --trace "$X"
expect_one_line_error
wait "$holder"
check "refused: file unchanged" "$(cksum <"$X")" "$sum"

# 2. A lock taken in the middle of a sweep. Seed 1 runs about a second;
# once the sweep has a run going it has opened the trace, and the lock is
# taken then and held 1.8 s, past the end of seed 1 (if the machine is
# not much slower): storing it waits for the lock (up to 2 s), then the
# sweep goes on.
cat >"$TMP/slow.lua" <<'LUA'
local w = tlsim.world{ seed = arg.seed }
if arg.seed == 1 then local x = 0; for i = 1, 1e8 do x = x + i end end
w:expect(true, "ran")
LUA
"$TLSIM" sweep "$TMP/slow.lua" --seeds 1..20 --trace "$X" --max-instructions 100000000000 -q \
	</dev/null >"$TMP/a.out" 2>"$TMP/a.err" &
sweep=$!
wait_until has_children $sweep
hold_lock 1.8 "$TMP/held2"
check "the lock was taken while the sweep ran" "$(runs) $(kill -0 $sweep 2>/dev/null && echo running)" "3 running"
wait "$holder"
wait "$sweep"
check "sweep around a lock: exit" "$?" 0
check "sweep around a lock: stderr" "$(cat "$TMP/a.err")" ""
check "sweep around a lock: runs" "$(runs)" 23

# 3. Two sweeps and some runs at once, on a fresh trace.
rm -f "$X" "$X-wal" "$X-shm"
"$TLSIM" sweep "$RACE" --set variant=tail --seeds 1..400 --trace "$X" -q \
	</dev/null >/dev/null 2>"$TMP/a.err" &
a=$!
wait_until more_runs "$X" 0
"$TLSIM" sweep "$RACE" --set variant=tail --seeds 401..600 --trace "$X" -q \
	</dev/null >/dev/null 2>"$TMP/b.err" &
b=$!
seen=""
for s in 1001 1002 1003 1004 1005 1006; do
	"$TLSIM" run "$RACE" --seed $s --set variant=tail --trace "$X" -q </dev/null >/dev/null 2>"$TMP/r.err"
	seen="$seen $(lock_error "$TMP/r.err" $? "run --seed $s")"
	sleep 0.1
done
wait "$b"
sb=$(lock_error "$TMP/b.err" $? "second sweep")
wait "$a"
sa=$(lock_error "$TMP/a.err" $? "first sweep")
echo "concurrent writers: first sweep $sa, second sweep $sb, runs:$seen"
check "integrity" "$(sqlite3 "$X" "PRAGMA integrity_check")" ok
n=$(runs)
expect_run 0 "merged $n runs into .* digests verified" -- merge "$TMP/verify.db" "$X"
for r in "1 400" "401 600"; do
	set -- $r
	k=$(sqlite3 "$X" "SELECT count(*) FROM run WHERE seed BETWEEN $1 AND $2")
	check "seeds $1..$2 stored: a prefix" \
		"$(sqlite3 "$X" "SELECT count(DISTINCT seed) || ' ' || ifnull(max(seed), $1 - 1) FROM run WHERE seed BETWEEN $1 AND $2")" \
		"$k $(($1 + k - 1))"
done
expect_run 1 "" -- sweep "$RACE" --set variant=tail --seeds 1..400 --jobs 2 --trace "$X" --resume -q
expect_run 1 "" -- sweep "$RACE" --set variant=tail --seeds 401..600 --jobs 2 --trace "$X" --resume -q
expect_run 1 "" -- sweep "$RACE" --set variant=tail --seeds 1..600 --jobs 2 --trace "$TMP/clean.db" -q
check "integrity after" "$(sqlite3 "$X" "PRAGMA integrity_check")" ok
sqlite3 "$X" "SELECT seed || ':' || digest FROM run WHERE seed <= 600 ORDER BY seed" >"$TMP/x.pairs"
sqlite3 "$TMP/clean.db" "SELECT seed || ':' || digest FROM run ORDER BY seed" >"$TMP/clean.pairs"
CHECKS=$((CHECKS + 1))
cmp -s "$TMP/x.pairs" "$TMP/clean.pairs" ||
	fail "seed/digest pairs differ from a clean sweep's: $(diff "$TMP/x.pairs" "$TMP/clean.pairs" | head -3)"
finish
