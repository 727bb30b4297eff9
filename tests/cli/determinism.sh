# Determinism: the same scenario and seed, in separate processes, give
# identical digests and identical `sqlite3 .dump` output; the digest does not
# depend on whether rows are stored; other seeds give other traces.
. "$2/tests/lib.sh"
S="$SRC/scripts/scenarios/echo_lossy.lua"

for i in 1 2; do
	CHECKS=$((CHECKS + 1))
	"$TLSIM" run "$S" --seed 3 --trace "$TMP/a$i.db" -q || fail "run $i failed"
	sqlite3 "$TMP/a$i.db" .dump >"$TMP/a$i.sql"
done
cmp -s "$TMP/a1.sql" "$TMP/a2.sql" || fail "same seed, different .dump"
d1=$(sqlite3 "$TMP/a1.db" "SELECT digest FROM run")
d2=$(sqlite3 "$TMP/a2.db" "SELECT digest FROM run")
[ -n "$d1" ] && [ "$d1" = "$d2" ] || fail "same seed, digests '$d1' and '$d2'"
rows=$(sqlite3 "$TMP/a1.db" "SELECT count(*) FROM packet")
[ "$rows" -gt 100 ] || fail "suspiciously few packet rows: $rows"

# Without --trace the summary still shows the same digest.
CHECKS=$((CHECKS + 1))
short=$(printf '%.16s' "$d1")
"$TLSIM" run "$S" --seed 3 >"$TMP/notrace.out" 2>&1
grep -q "digest $short" "$TMP/notrace.out" || { fail "digest without a trace differs"; cat "$TMP/notrace.out" >&2; }

# Different seeds: different loss patterns, different digests.
CHECKS=$((CHECKS + 1))
"$TLSIM" run "$S" --seed 4 --trace "$TMP/b.db" -q || fail "seed 4 failed"
d3=$(sqlite3 "$TMP/b.db" "SELECT digest FROM run")
[ "$d3" != "$d1" ] || fail "seeds 3 and 4 gave the same digest"
l1=$(sqlite3 "$TMP/a1.db" "SELECT group_concat(id) FROM packet WHERE fate = 'lost'")
l3=$(sqlite3 "$TMP/b.db" "SELECT group_concat(id) FROM packet WHERE fate = 'lost'")
[ "$l1" != "$l3" ] || fail "seeds 3 and 4 lost the same packets"

# Many runs in one trace, each with its own digest; the stored digest is
# what the rows recompute to.
CHECKS=$((CHECKS + 1))
"$TLSIM" run "$S" --seed 3 --trace "$TMP/a1.db" -q || fail "appending a run failed"
n=$(sqlite3 "$TMP/a1.db" "SELECT count(DISTINCT id) || ' ' || count(DISTINCT digest) FROM run")
[ "$n" = "2 1" ] || fail "two runs of seed 3 in one trace: got '$n' (runs, digests)"
# pairs() order is the same in every process (Lua's own order over string
# keys follows a per-process hash seed).
P="$SRC/tests/scenarios/pairs_order.lua"
CHECKS=$((CHECKS + 1))
for i in 1 2 3; do
	"$TLSIM" run "$P" -q --trace "$TMP/p$i.db" || fail "pairs_order run $i failed"
	sqlite3 "$TMP/p$i.db" "SELECT text FROM log" >"$TMP/p$i.log"
done
cmp -s "$TMP/p1.log" "$TMP/p2.log" && cmp -s "$TMP/p1.log" "$TMP/p3.log" ||
	fail "pairs() order differs between processes"
finish
