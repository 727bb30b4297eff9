# Tracing must not change what a run does: for every scenario and its
# cases, an untraced sweep of seeds 1..4 (no rows written at all) prints
# the same closing table, outcome by outcome and failed expectation by seed, as a
# traced one. A sender that skipped metadata when untraced once made
# fault rules select nothing (fault_targeting case=fin_delay failed 3/3
# untraced).
. "$2/tests/lib.sh"
SC="$SRC/scripts/scenarios"
n=0
same() { # same SCENARIO [--set K=V]...
	f=$1
	shift
	"$TLSIM" sweep "$SC/$f" "$@" --seeds 1..4 </dev/null >"$TMP/off" 2>/dev/null
	rc_off=$?
	rm -f "$TMP/t.db" "$TMP/t.db-wal" "$TMP/t.db-shm"
	"$TLSIM" sweep "$SC/$f" "$@" --seeds 1..4 --trace "$TMP/t.db" </dev/null >"$TMP/on" 2>/dev/null
	rc_on=$?
	CHECKS=$((CHECKS + 1))
	grep -q '^  outcome  *runs' "$TMP/off" || fail "$f $*: no closing table"
	CHECKS=$((CHECKS + 1))
	n=$((n + 1))
	grep -v '^ *trace:' "$TMP/off" >"$TMP/off.t"
	grep -v '^ *trace:' "$TMP/on" >"$TMP/on.t"
	if [ "$rc_off" != "$rc_on" ] ||
	   ! diff "$TMP/off.t" "$TMP/on.t" >"$TMP/diff" 2>&1; then
		fail "$f $*: untraced and traced sweeps differ (exit $rc_off vs $rc_on)"
		sed 's/^/  | /' "$TMP/diff" >&2
	fi
}
for c in hs_drop fin_delay done_dup reorder corrupt tcp_fin tcp_byte tls_finished tls_server_finished; do
	same fault_targeting.lua --set case=$c
done
for c in split split_in chunks records uncoalesced; do
	same segmentation.lua --set case=$c
done
for c in none ahead behind fast; do
	same clock_skew.lua --set case=$c
done
for v in fixed buggy tail; do
	same msquic_shutdown_race.lua --set variant=$v
done
for v in call every none; do
	same key_update.lua --set update=$v
done
same timer_edge.lua
same timer_edge.lua --set timer=close_notify
for v in fixed buggy; do
	same rustls_acceptor_alert.lua --set variant=$v
	same truncation_attack.lua --set variant=$v
done
same go_handshake_deadline.lua --set variant=fixed
same quic_incomplete_chain.lua --set variant=buggy
same tls_incomplete_chain.lua --set variant=buggy
same asio_shutdown.lua --set case=2
for f in quic_basic.lua tls_basic.lua echo_lossy.lua echo_partition.lua; do
	same "$f"
done
echo "$n scenarios compared"
finish
