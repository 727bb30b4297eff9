# docs/bad-input.md is executable: every row of its table is run here
# (command, exit status, the message in stderr's first line, and what the
# last column says is kept), so the table cannot drift from what tlsim
# does. Rows are counted: the table must have them all.
. "$2/tests/lib.sh"
DOC="$SRC/docs/bad-input.md"
T="$TMP/t"
mkdir -p "$T"
set -f
cd "$SRC" || exit 1
OK=scripts/scenarios/echo_basic.lua

# Fixtures, each with a pristine copy to prove "unchanged".
printf 'just some text\n' >"$T/text.db"
sqlite3 "$T/other.db" "CREATE TABLE customers(id INTEGER, name TEXT); INSERT INTO customers VALUES (1, 'x');"
"$TLSIM" run "$OK" --trace "$T/good.db" -q || fail "cannot make good.db"
cp "$T/good.db" "$T/corrupt.db"
size=$(wc -c <"$T/corrupt.db")
dd if=/dev/urandom of="$T/corrupt.db" bs=1 seek=4096 count=$((size - 4096)) conv=notrunc 2>/dev/null
cp "$T/good.db" "$T/newer.db"
sqlite3 "$T/newer.db" "PRAGMA user_version = 99"
cp "$T/good.db" "$T/locked.db"
for f in text other good corrupt newer locked; do
	cp "$T/$f.db" "$T/$f.orig"
done
FULL=0
mkdir -p "$T/full"
if mount -t tmpfs -o size=256k tmpfs "$T/full" 2>/dev/null; then
	FULL=1
	"$TLSIM" run "$OK" --trace "$T/full/t.db" -q || fail "cannot make full/t.db"
	trap 'umount "$T/full" 2>/dev/null; rm -rf "$TMP"' EXIT
fi

rows=0
grep '^| .*| `tlsim ' "$DOC" >"$TMP/rows"
while IFS= read -r line; do
	rows=$((rows + 1))
	cmd=$(printf '%s\n' "$line" | awk -F' [|] ' '{print $2}' | sed 's/^[^`]*`//; s/`.*//')
	msg=$(printf '%s\n' "$line" | awk -F' [|] ' '{print $3}' | sed 's/^`//; s/`$//')
	want=$(printf '%s\n' "$line" | awk -F' [|] ' '{print $4}')
	kept=$(printf '%s\n' "$line" | awk -F' [|] ' '{print $5}')
	cmd=$(printf '%s' "$cmd" | sed "s|\\\$T|$T|g; s|^tlsim ||")
	msg=$(printf '%s' "$msg" | sed "s|\\\$T|$T|g")
	case "$cmd" in
	*"$T/full/"*)
		if [ "$FULL" = 0 ]; then
			echo "note: no tmpfs here; the full-disk row is checked by tlsim_unit trace_disk_full" >&2
			CHECKS=$((CHECKS + 1))
			"$BUILD/tests/tlsim_unit" trace_disk_full >/dev/null 2>&1 ||
				fail "trace_disk_full failed"
			continue
		fi
		;;
	esac
	lockpid=
	case "$cmd" in
	*"$T/locked.db"*)
		(printf 'BEGIN IMMEDIATE;\nSELECT 1;\n'; sleep 3; printf 'ROLLBACK;\n') |
			sqlite3 "$T/locked.db" >/dev/null &
		lockpid=$!
		sleep 1
		;;
	esac
	CHECKS=$((CHECKS + 1))
	# shellcheck disable=SC2086
	"$TLSIM" $cmd >"$TMP/out" 2>"$TMP/err" </dev/null
	rc=$?
	[ -n "$lockpid" ] && wait "$lockpid"
	first=$(head -n 1 "$TMP/err")
	if [ "$rc" != "$want" ]; then
		fail "row '$cmd': exit $rc, the table says $want"
	elif ! printf '%s\n' "$first" | grep -qF -- "$msg"; then
		fail "row '$cmd': stderr's first line is '$first', the table says it contains '$msg'"
	fi
	case "$kept" in
	*unchanged*)
		f=$(printf '%s' "$kept" | sed 's/^`//; s/`.*//' | sed "s|\\\$T|$T|g")
		CHECKS=$((CHECKS + 1))
		cmp -s "$f" "${f%.db}.orig" || fail "row '$cmd': $f changed"
		;;
	*"keeps its earlier run"*)
		CHECKS=$((CHECKS + 1))
		[ "$(sqlite3 "$T/full/t.db" "SELECT count(*) FROM run")" = 1 ] &&
			[ "$(sqlite3 "$T/full/t.db" "PRAGMA integrity_check")" = ok ] ||
			fail "row '$cmd': the full disk's trace lost its run or is damaged"
		;;
	*"no \`"*)
		f=$(printf '%s' "$kept" | sed 's/^no `//; s/`.*//' | sed "s|\\\$T|$T|g")
		CHECKS=$((CHECKS + 1))
		[ ! -e "$f" ] || fail "row '$cmd': $f was written"
		;;
	esac
done <"$TMP/rows"
CHECKS=$((CHECKS + 1))
[ "$rows" -ge 27 ] || fail "the table has $rows rows, want at least 27"
[ "$FULL" = 1 ] && umount "$T/full"
finish
