#!/bin/sh
# tests/cli/boringssl_determinism.sh: BoringSSL's TLS 1.3 handshake is a
# function of the run seed (sim/entropy.h, proto/pki.h), using the helper
# tlsim_tlshs (tests/helper_tlshs.c), which prints one line per run:
# "SHA256-of-transcript CIPHER VERSION".
#  - the same seed in two processes gives the same line;
#  - another seed gives another line;
#  - three runs of one seed in one process give that same line three times
#    (each run on a fresh thread; BoringSSL's start-up draws kept out);
#  - a wrong OPENSSL_ia32cap in the environment is replaced by the re-exec;
#  - certificate verification runs, at the virtual time;
#  - control: with the stream off (--no-stream, the kernel's getrandom) two
#    processes, and two runs in one process, differ, so the checks above
#    cannot pass by accident.
. "$2/tests/lib.sh"
H="$BUILD/tests/tlsim_tlshs"
if [ ! -x "$H" ]; then
	echo "FAIL: $H is not built" >&2
	exit 1
fi

# hs NAME ARGS...: runs the helper (env assignments may precede it via
# `env`), output in $TMP/NAME. Returns 1 (and counts a failure) if it fails.
hs() {
	name=$1
	shift
	CHECKS=$((CHECKS + 1))
	"$@" >"$TMP/$name" 2>"$TMP/$name.err" </dev/null
	rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$*: exit $rc"
		sed 's/^/  | /' "$TMP/$name.err" "$TMP/$name" >&2
		return 1
	fi
	return 0
}

line_re='^[0-9a-f]{64} TLS_[A-Z0-9_]+ TLSv1\.3$'

if hs a "$H" 1; then
	CHECKS=$((CHECKS + 1))
	if [ "$(wc -l <"$TMP/a")" -ne 1 ] || ! grep -Eq "$line_re" "$TMP/a"; then
		fail "tlsim_tlshs 1: want one line /$line_re/, got:"
		sed 's/^/  | /' "$TMP/a" >&2
	fi
fi
A=$(cat "$TMP/a" 2>/dev/null)
echo "seed 1: $A"

if hs b "$H" 1; then
	CHECKS=$((CHECKS + 1))
	if [ "$(cat "$TMP/b")" != "$A" ]; then
		fail "seed 1 differs between two processes:"
		echo "  | $A" >&2
		sed 's/^/  | /' "$TMP/b" >&2
	fi
fi

if hs c "$H" 2; then
	CHECKS=$((CHECKS + 1))
	if [ "$(cat "$TMP/c")" = "$A" ] || ! grep -Eq "$line_re" "$TMP/c"; then
		fail "seed 2 gives the same transcript as seed 1 (or a bad line):"
		sed 's/^/  | /' "$TMP/c" >&2
	fi
fi

if hs d "$H" 1 3; then
	CHECKS=$((CHECKS + 1))
	n=$(wc -l <"$TMP/d")
	same=$(grep -cxF -- "$A" "$TMP/d")
	if [ "$n" -ne 3 ] || [ "$same" -ne 3 ]; then
		fail "tlsim_tlshs 1 3: want 3 lines equal to the separate-process" \
			"line, got $n lines, $same equal:"
		echo "  | want $A" >&2
		sed 's/^/  | /' "$TMP/d" >&2
	fi
fi

# The helper re-executes itself with OPENSSL_ia32cap=~0x4200000000000000
# (RDRAND and AES-NI off). A different value must be replaced: with "0" kept, every
# CPU feature would be off and even the cipher would change.
for v in 0 '~0x0'; do
	if hs e env OPENSSL_ia32cap="$v" "$H" 1; then
		CHECKS=$((CHECKS + 1))
		if [ "$(cat "$TMP/e")" != "$A" ]; then
			fail "OPENSSL_ia32cap=$v in the environment changes the" \
				"transcript (re-exec did not replace it):"
			sed 's/^/  | /' "$TMP/e" >&2
		fi
	fi
done

# The client really verifies, at the virtual time: a clock two days past
# the certificate's notAfter (one day after the epoch) or two hours before
# the epoch (notBefore is one hour before) fails; a minute later succeeds
# but changes the bytes (the session tickets carry the virtual time).
for skew in 172800:'certificate has expired' -7200:'certificate is not yet valid'; do
	s=${skew%%:*}
	want=${skew#*:}
	CHECKS=$((CHECKS + 1))
	"$H" --skew "$s" 1 >"$TMP/v" 2>"$TMP/v.err" </dev/null
	rc=$?
	if [ "$rc" -ne 1 ] || ! grep -q "$want" "$TMP/v.err"; then
		fail "tlsim_tlshs --skew $s 1: exit $rc, want 1 and '$want':"
		sed 's/^/  | /' "$TMP/v.err" "$TMP/v" >&2
	fi
done
if hs w "$H" --skew 60 1; then
	CHECKS=$((CHECKS + 1))
	if [ "$(cat "$TMP/w")" = "$A" ]; then
		fail "moving the virtual clock by 60s does not change the" \
			"transcript: BoringSSL does not see the virtual clock"
	fi
fi

# Control: without the stream, nothing repeats.
if hs n1 "$H" --no-stream 1 && hs n2 "$H" --no-stream 1; then
	CHECKS=$((CHECKS + 1))
	N1=$(cat "$TMP/n1")
	N2=$(cat "$TMP/n2")
	if [ "$N1" = "$N2" ] || [ "$N1" = "$A" ]; then
		fail "with the entropy stream off, transcripts still repeat" \
			"(the checks above prove nothing):"
		echo "  | stream: $A" >&2
		echo "  | off #1: $N1" >&2
		echo "  | off #2: $N2" >&2
	fi
fi
if hs n3 "$H" --no-stream 1 2; then
	CHECKS=$((CHECKS + 1))
	if [ "$(sort -u "$TMP/n3" | wc -l)" -ne 2 ]; then
		fail "with the entropy stream off, two runs in one process repeat:"
		sed 's/^/  | /' "$TMP/n3" >&2
	fi
fi

finish
