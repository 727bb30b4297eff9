# tests/lib.sh: helpers for the shell-driven tests in tests/cli/.
# Usage: . "$SRC/tests/lib.sh" after setting TLSIM, SRC, BUILD from $1 $2 $3.
set -u
TLSIM=$1
SRC=$2
BUILD=$3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tlsim-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
FAILS=0
CHECKS=0

fail() {
	echo "FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}

# expect_run WANT_RC STDERR_REGEX -- ARGS...: runs tlsim ARGS, checks the
# exit code and that stderr (or stdout) matches the extended regex.
expect_run() {
	want_rc=$1
	want_re=$2
	shift 3
	CHECKS=$((CHECKS + 1))
	"$TLSIM" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
	rc=$?
	if [ "$rc" -ne "$want_rc" ]; then
		fail "tlsim $*: exit $rc, want $want_rc"
		sed 's/^/  | /' "$TMP/err" "$TMP/out" >&2
		return
	fi
	if [ -n "$want_re" ] && ! cat "$TMP/err" "$TMP/out" | grep -Eq -- "$want_re"; then
		fail "tlsim $*: output does not match /$want_re/"
		sed 's/^/  | /' "$TMP/err" "$TMP/out" >&2
	fi
}

# one_line: the last expect_run printed exactly one line on stderr.
expect_one_line_error() {
	n=$(wc -l <"$TMP/err")
	if [ "$n" -ne 1 ]; then
		fail "expected a one-line error, got $n lines:"
		sed 's/^/  | /' "$TMP/err" >&2
	fi
}

finish() {
	if [ "$FAILS" -ne 0 ]; then
		echo "$FAILS of $CHECKS checks failed" >&2
		exit 1
	fi
	if [ "$CHECKS" -eq 0 ]; then
		echo "no checks ran" >&2
		exit 1
	fi
	echo "$CHECKS checks passed"
	exit 0
}
