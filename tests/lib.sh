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

# check LABEL GOT WANT: one check, GOT must equal WANT (long values are
# cut to 300 bytes in the message).
check() {
	CHECKS=$((CHECKS + 1))
	[ "$2" = "$3" ] ||
		fail "$1: got '$(printf %s "$2" | head -c 300)', want '$(printf %s "$3" | head -c 300)'"
}

# wait_until CMD...: runs CMD every 10 ms until it succeeds; after 60 s
# fails the check and returns 1.
wait_until() {
	wu_i=0
	while ! "$@"; do
		wu_i=$((wu_i + 1))
		if [ "$wu_i" -gt 6000 ]; then
			fail "timed out waiting for: $*"
			return 1
		fi
		sleep 0.01
	done
}

# trace_runs DB: the runs in the trace DB, read read-only (0 while it has
# no run table yet). more_runs DB N: it holds more than N runs.
trace_runs() {
	sqlite3 -readonly "$1" "SELECT count(*) FROM run" 2>/dev/null || echo 0
}
more_runs() { [ "$(trace_runs "$1")" -gt "$2" ]; }

# children PID: the processes whose parent is PID (/proc/P/stat: pid
# (comm) state ppid ...; tlsim's comm has no spaces). has_children PID.
children() {
	awk -v pp="$1" '$4 == pp { print $1 }' /proc/[0-9]*/stat 2>/dev/null
}
has_children() { [ -n "$(children "$1")" ]; }

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
