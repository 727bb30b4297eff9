# tlsim shrink: a failure that needs some of a seed's random link faults
# shrinks to a few of them; the written schedule file runs with `tlsim
# run FILE` and fails the same way; removing any one of its faults makes
# the run pass (1-minimal); a tie-break failure shrinks to one choice; the
# result is the same with --jobs 2; bad input.
. "$2/tests/lib.sh"
E="$SRC/tests/scenarios/shrink_echo.lua"
M="$SRC/scripts/scenarios/msquic_shutdown_race.lua"

expect_run 1 "every ping is echoed within 250 ms" -- run "$E" --seed 2
expect_run 0 "link faults ([0-9]+) -> ([0-9]+), out-of-order choices 0 -> 0" -- shrink "$E" --seed 2 -o "$TMP/e.sched"
before=$(sed -n 's/.*link faults \([0-9]*\) -> \([0-9]*\).*/\1/p' "$TMP/out")
after=$(sed -n 's/.*link faults \([0-9]*\) -> \([0-9]*\).*/\2/p' "$TMP/out")
CHECKS=$((CHECKS + 1))
[ "$after" -ge 1 ] && [ "$after" -lt "$before" ] && [ "$before" -ge 20 ] ||
	fail "shrink: link faults $before -> $after"
CHECKS=$((CHECKS + 1))
[ "$(grep -c '^fault ' "$TMP/e.sched")" = "$after" ] || fail "the file does not hold the $after faults"
head -1 "$TMP/e.sched" | grep -q '^# tlsim schedule 1$' || fail "no magic line"
expect_run 1 "every ping is echoed within 250 ms" -- run "$TMP/e.sched"
expect_run 1 "reproduce: tlsim run $TMP/e.sched" -- run "$TMP/e.sched"
# 1-minimal: without any one of its faults the run passes.
grep -v '^fault ' "$TMP/e.sched" >"$TMP/head"
grep '^fault ' "$TMP/e.sched" >"$TMP/faults"
i=1
while [ "$i" -le "$after" ]; do
	{ cat "$TMP/head"; sed "${i}d" "$TMP/faults"; } >"$TMP/less.sched"
	expect_run 0 "" -- run "$TMP/less.sched" -q
	i=$((i + 1))
done
# Without any fault (and FIFO order) the scenario passes: the faults matter.
{ cat "$TMP/head"; } >"$TMP/none.sched"
expect_run 0 "" -- run "$TMP/none.sched" -q
# Same result with --jobs 2.
expect_run 0 "" -- shrink "$E" --seed 2 -o "$TMP/e2.sched" --jobs 2 -q
sed 1,4d "$TMP/e.sched" >"$TMP/a"
sed 1,4d "$TMP/e2.sched" >"$TMP/b"
CHECKS=$((CHECKS + 1))
cmp -s "$TMP/a" "$TMP/b" || fail "shrink --jobs 2 wrote a different schedule"
# The traced run of a schedule file stores its schedule.
expect_run 1 "" -- run "$TMP/e.sched" --trace "$TMP/t.db" -q
expect_run 0 "matches \(fail\)" -- replay "$TMP/t.db" --run 1
CHECKS=$((CHECKS + 1))
[ "$(sqlite3 "$TMP/t.db" "SELECT count(*) FROM run WHERE schedule LIKE '%faults forced%'")" = 1 ] ||
	fail "the run of a schedule file did not store its schedule"

# A tie-break failure: one out-of-order choice, no faults.
expect_run 0 "link faults 0 -> 0, out-of-order choices 1 -> 1" -- shrink "$M" --set variant=tail --seed 4 -o "$TMP/m.sched"
grep -q '^set variant=tail$' "$TMP/m.sched" || fail "the schedule file lost --set"
expect_run 1 "the server learns of the close" -- run "$TMP/m.sched"

# Bad input.
expect_run 2 "^tlsim shrink: .* seed 3 passes; nothing to shrink$" -- shrink "$M" --set variant=tail --seed 3 -o "$TMP/x.sched"
expect_one_line_error
CHECKS=$((CHECKS + 1))
[ ! -e "$TMP/x.sched" ] || fail "a passing seed wrote a file"
expect_run 2 "^tlsim shrink: missing --seed N" -- shrink "$M"
expect_run 2 "^tlsim: $TMP/nodir/x.sched: cannot write" -- shrink "$E" --seed 2 -o "$TMP/nodir/x.sched" -q
expect_run 2 "a schedule file fixes the seed" -- run "$TMP/m.sched" --seed 9
cp "$E" "$TMP/copy.lua"
sed "s|^scenario .*|scenario $TMP/copy.lua|" "$TMP/e.sched" >"$TMP/c.sched"
echo "-- changed" >>"$TMP/copy.lua"
expect_run 2 "copy.lua changed since .*c.sched was written" -- run "$TMP/c.sched"
expect_one_line_error
printf '# tlsim schedule 1\nseed 1\n' >"$TMP/noscen.sched"
expect_run 2 "noscen.sched:2: a schedule file needs 'scenario PATH' and 'seed N'" -- run "$TMP/noscen.sched"
expect_run 0 "usage: tlsim shrink" -- shrink --help
finish
