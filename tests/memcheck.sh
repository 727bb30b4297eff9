#!/bin/sh
# tests/memcheck.sh TLSIM SOURCE_DIR: valgrind's memcheck over a
# representative subset of tlsim (CTest valgrind.memcheck, in the build
# without sanitizers: valgrind cannot run an ASan binary):
#   tlsim run of a TLS and of a QUIC scenario (traced),
#   tlsim sweep of 20 seeds of the MsQuic race (forked children, traced,
#   with a race query), and the readers on the traces: report, pcap,
#   replay.
# Any memcheck error, or any definitely lost block at exit, in any process
# (tlsim re-executes itself once, sim/entropy.c, and a sweep forks a child
# per run: --trace-children=yes and a log file per process) fails the
# test, and the logs are printed. No suppressions are needed: there is no
# suppressions file, so none hides a report. Fails, never skips, without
# valgrind (scripts/setup installs it).
set -eu
tlsim=$1
src=$2
if ! command -v valgrind >/dev/null 2>&1; then
	echo "memcheck: valgrind is not installed (scripts/setup installs it)" >&2
	exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tlsim-memcheck.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir "$tmp/logs"

vg() { # vg EXPECTED-STATUSES TLSIM-ARGS...: run under memcheck
	ok=$1
	shift
	rc=0
	valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite --show-leak-kinds=definite \
		--trace-children=yes -q --log-file="$tmp/logs/vg.%p.%n" \
		"$tlsim" "$@" >"$tmp/out" 2>&1 || rc=$?
	case " $ok " in
	*" $rc "*) ;;
	*)
		echo "memcheck: tlsim $* exited $rc (expected $ok):" >&2
		cat "$tmp/out" >&2
		failed=1
		;;
	esac
}

failed=0
scen=$src/scripts/scenarios
vg 0 run "$scen/tls_basic.lua" -q
vg 0 run "$scen/quic_basic.lua" -q --trace "$tmp/q.db"
# Some seeds of the tail variant fail (the race): exit 1.
vg "0 1" sweep "$scen/msquic_shutdown_race.lua" --set variant=tail \
	--seeds 1..20 --jobs 2 --trace "$tmp/s.db" \
	--query "$src/scripts/queries/msquic_close.sql" -q
vg 0 report "$tmp/q.db" --run 1 --width 100 --html "$tmp/q.html"
vg 0 pcap "$tmp/s.db" --run 4 -o "$tmp/s.pcapng" --keylog "$tmp/s.keys" -q
vg 0 replay "$tmp/q.db" --run 1 -q

logs=$(find "$tmp/logs" -type f -size +0 | wc -l)
if [ "$logs" -ne 0 ]; then
	echo "memcheck: reports from $logs process(es):" >&2
	for f in "$tmp"/logs/*; do
		[ -s "$f" ] && cat "$f" >&2
	done
	failed=1
fi
procs=$(find "$tmp/logs" -type f | wc -l)
if [ "$failed" -eq 0 ]; then
	echo "memcheck: no errors and no definite leaks in $procs processes"
fi
exit "$failed"
