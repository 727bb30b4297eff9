# The committed golden digests are reproduced by this build.
. "$2/tests/lib.sh"
cd "$SRC"
grep -v '^#' tests/golden/digests | {
	while read -r scenario seed want; do
		CHECKS=$((CHECKS + 1))
		rm -f "$TMP/g.db"*
		"$TLSIM" run "$scenario" --seed "$seed" -q --trace "$TMP/g.db" >/dev/null 2>&1
		got=$(sqlite3 "$TMP/g.db" "SELECT digest FROM run")
		[ "$got" = "$want" ] || fail "$scenario seed $seed: digest $got, golden $want (scripts/regen-golden if intended)"
	done
	finish
}
