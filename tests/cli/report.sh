# tlsim report: the terminal report and the --html page of the MsQuic
# scenario (buggy and fixed), a lossy QUIC run and a TLS run. The ladder
# has one arrow per datagram/segment, one line per coalesced packet and
# one lost mark per lost datagram/segment, as the trace has rows; the race
# query msquic_close matches on buggy and not on fixed; the page renders
# in headless Chromium (Debian's chromium, installed by scripts/setup:
# missing, this test fails) with as many arrows and no console errors;
# hostile trace text stays text; errors are one line.
. "$2/tests/lib.sh"
S="$SRC/scripts/scenarios"
DB="$TMP/t.db"
export LC_ALL=C.UTF-8
unset COLUMNS NO_COLOR

expect_run 1 "" -- run "$S/msquic_shutdown_race.lua" --set variant=buggy --trace "$DB" -q
expect_run 0 "" -- run "$S/msquic_shutdown_race.lua" --set variant=fixed --trace "$DB" -q
expect_run 0 "" -- run "$S/quic_basic.lua" --seed 3 --set loss=0.1 --trace "$DB" -q
expect_run 1 "" -- run "$S/truncation_attack.lua" --set variant=buggy --trace "$DB" -q

q() { sqlite3 "$DB" "$1"; }

# check_ladder RUN: the terminal ladder of RUN draws every packet row.
check_ladder() {
	run=$1
	out="$TMP/report$run.txt"
	"$TLSIM" report "$DB" --run "$run" --width 100 >"$out" 2>"$TMP/err"
	rc=$?
	CHECKS=$((CHECKS + 1))
	[ "$rc" -eq 0 ] || fail "report --run $run: exit $rc: $(cat "$TMP/err")"
	arrows=$(grep -c '[├┤]' "$out")
	want=$(q "SELECT count(*) FROM packet WHERE run = $run AND parent IS NULL")
	[ "$arrows" -eq "$want" ] || fail "run $run: $arrows arrows, $want datagram/segment rows"
	subs=$(grep -Ec '│  · [a-z0-9_-]+ pn=[0-9]+' "$out")
	want=$(q "SELECT count(*) FROM packet WHERE run = $run AND parent IS NOT NULL")
	[ "$subs" -eq "$want" ] || fail "run $run: $subs coalesced-packet lines, $want rows"
	lost=$(grep -Ec '─X|X─' "$out")
	want=$(q "SELECT count(*) FROM packet WHERE run = $run AND parent IS NULL AND fate = 'lost'")
	[ "$lost" -eq "$want" ] || fail "run $run: $lost lost marks, $want lost rows"
	wide=$(wc -L <"$out")
	[ "$wide" -le 100 ] || fail "run $run: a line of $wide columns in --width 100"
	if grep -q "$(printf '\033')" "$out"; then
		fail "run $run: colour codes written to a file"
	fi
}
for r in 1 2 3 4; do
	check_ladder $r
done
[ "$(q "SELECT count(*) FROM packet WHERE run = 3 AND fate = 'lost'")" -gt 0 ] ||
	fail "the lossy run lost nothing: the lost-mark check proves nothing"

# The race and its verdicts: buggy matches, fixed does not.
R1="$TMP/report1.txt"
R2="$TMP/report2.txt"
grep -Eq '^  msquic_close +matches \(1 row\)$' "$R1" || fail "buggy: msquic_close does not match"
grep -Eq '^  msquic_close +no rows$' "$R2" || fail "fixed: msquic_close matches"
grep -Eq '^  outcome   fail:' "$R1" || fail "buggy: no outcome line"
grep -Eq '^  FAIL the server drains within 3 RTT' "$R1" || fail "buggy: no failed expectation"
grep -Eq '^expectations: 3 of 3 held$' "$R2" || fail "fixed: expectations"
grep -Eq '^  outcome   pass$' "$R2" || fail "fixed: no outcome line"
# The op order of the race, inline in the client's column.
front=$(grep -n 'shutdown \[op10\] enqueue_front(2) dequeue(1) complete(1)' "$R1" | cut -d: -f1)
later=$(grep -n 'validation_complete \[op9\] dequeue(0) complete(0)' "$R1" | cut -d: -f1)
CHECKS=$((CHECKS + 1))
[ -n "$front" ] && [ -n "$later" ] && [ "$front" -lt "$later" ] ||
	fail "buggy: shutdown is not shown running before validation_complete"
grep -q '1rtt pn=0 CONNECTION_CLOSE(0x1d)' "$R1" || fail "buggy: no 0x1d close in the ladder"
grep -q 'handshake pn=[0-9]* CONNECTION_CLOSE(0x1c)(0xc,' "$R2" || fail "fixed: no 0x1c close"
grep -q '◆ close_sent write 0x0' "$R1" || fail "buggy: no close_sent tls row"
grep -q '◆ handshake_done' "$TMP/report4.txt" || fail "tls: no handshake_done row"
grep -q '◆ close_notify_sent' "$TMP/report4.txt" || fail "tls: no close_notify row"
grep -q 'FIN seq=.* forged' "$TMP/report4.txt" || fail "tls: the forged FIN is not shown"

# Options.
expect_run 0 "^run 4 of .*t.db \(runs 1..4" -- report "$DB" --no-queries
expect_run 0 "race queries: none run \(--no-queries\)" -- report "$DB" --no-queries
expect_run 0 "^ +3 +3 pass .*quic_basic.lua --set loss=0.1$" -- report "$DB" --list
expect_run 0 "more rows after .* not shown \(--limit 10\)" -- report "$DB" --run 3 --limit 10
expect_run 0 "rows before 100.000 ms not shown \(--from\)" -- report "$DB" --run 3 --from 100
expect_run 0 "rows after 100.000 ms not shown \(--to\)" -- report "$DB" --run 3 --to 0.1s
expect_run 0 "TLS 1.3 client read_server_hello" -- report "$DB" --run 4 --states
expect_run 0 "" -- report "$DB" --run 1 --ascii
if LC_ALL=C grep -q '[^ -~]' "$TMP/out"; then
	fail "--ascii wrote a byte outside printable ASCII"
fi
expect_run 0 "" -- report "$DB" --run 1 --color always
grep -q "$(printf '\033')\[" "$TMP/out" || fail "--color always wrote no colour"
COLUMNS=60 "$TLSIM" report "$DB" --run 1 >"$TMP/out" 2>&1
CHECKS=$((CHECKS + 1))
[ "$(grep '│' "$TMP/out" | wc -L)" -eq 60 ] || fail "COLUMNS=60: the ladder is not 60 columns wide"
# Queries from another directory: dot-commands dropped, several
# statements add up, a broken one is a verdict, not a failure.
mkdir "$TMP/qs"
printf '.mode line\nSELECT run, id FROM packet WHERE fate = %s;\nSELECT run FROM op WHERE op_type = %s;\n' \
	"'lost'" "'shutdown'" >"$TMP/qs/mine.sql"
printf 'SELECT run FROM no_such_table;\n' >"$TMP/qs/broken.sql"
mine() {
	q "SELECT (SELECT count(*) FROM packet WHERE run = $1 AND fate = 'lost') +
	          (SELECT count(*) FROM op WHERE run = $1 AND op_type = 'shutdown')"
}
expect_run 0 "mine +matches \($(mine 3) rows\)" -- report "$DB" --run 3 --queries "$TMP/qs"
expect_run 0 "broken +error: no such table: no_such_table" -- report "$DB" --run 3 --queries "$TMP/qs"
expect_run 0 "mine +matches \($(mine 1) rows\)" -- report "$DB" --run 1 --queries "$TMP/qs"
[ "$(mine 1)" -gt 0 ] && [ "$(mine 3)" -gt "$(mine 1)" ] || fail "the query test proves nothing"

# Errors: one line, naming the file or option, exit 2.
printf 'not a database\n' >"$TMP/junk.db"
expect_run 2 "^tlsim: .*junk.db: not a tlsim trace" -- report "$TMP/junk.db"
expect_one_line_error
expect_run 2 "^tlsim: .*t.db: no run 9 \(runs 1..4\)$" -- report "$DB" --run 9
expect_one_line_error
expect_run 2 "^tlsim: .*missing.db: no such trace" -- report "$TMP/missing.db"
expect_one_line_error
expect_run 2 "^tlsim: .*/nodir/r.html: cannot write the report: No such file or directory$" -- report "$DB" --html "$TMP/nodir/r.html"
expect_one_line_error
: >"$TMP/afile"
expect_run 2 "^tlsim: .*/afile/r.html: cannot write the report: Not a directory$" -- report "$DB" --html "$TMP/afile/r.html"
expect_one_line_error
mkdir "$TMP/adir"
expect_run 2 "^tlsim: .*/adir: cannot write the report: Is a directory$" -- report "$DB" --html "$TMP/adir"
expect_one_line_error
[ -z "$(ls "$TMP" | grep 'adir\.')" ] || fail "a temporary file was left behind"
expect_run 2 "^tlsim report: --run needs a run id, got 'x'" -- report "$DB" --run x
expect_run 2 "^tlsim report: --color needs auto, always or never" -- report "$DB" --color sometimes
expect_run 2 "^tlsim report: --from needs a time" -- report "$DB" --from soon
expect_run 2 "^tlsim: --queries: cannot open directory .*noqueries" -- report "$DB" --queries "$TMP/noqueries"
expect_run 0 "usage: tlsim report" -- report --help

# The page: self-contained and deterministic.
H1="$TMP/r1.html"
expect_run 0 "written to .*r1.html" -- report "$DB" --run 1 --html "$H1"
expect_run 0 "" -- report "$DB" --run 1 --html "$TMP/again.html"
cmp -s "$H1" "$TMP/again.html" || fail "--html: the same report gave different bytes"
if grep -Eq 'https?://' "$H1"; then
	fail "--html: the page names a URL"
fi
if grep -Eiq '<(link|img|iframe|object|embed)[ >]|<script[^>]* src=|url\(' "$H1"; then
	fail "--html: the page loads a resource"
fi
expect_run 0 "" -- report "$DB" --run 3 --html "$TMP/r3.html"

# Headless Chromium: rendered arrows, no console errors, a screenshot.
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
	fail "chromium is not installed (scripts/setup installs it): the page cannot be checked"
	finish
fi
browse() { # browse FILE OUT ERR [ARGS...]: chromium on FILE, --dump-dom default
	page=$1 out=$2 err=$3
	shift 3
	[ $# -gt 0 ] || set -- --dump-dom
	timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
		--user-data-dir="$TMP/chrome" --enable-logging=stderr --v=0 \
		"$@" "file://$page" >"$out" 2>"$err" </dev/null
}
# check_page FILE RUN: the page of RUN drew every packet row, no errors.
check_page() {
	page=$1 run=$2
	CHECKS=$((CHECKS + 1))
	browse "$page" "$TMP/dom" "$TMP/chrome.err" || {
		fail "chromium failed on $page: $(tail -3 "$TMP/chrome.err")"
		return
	}
	status=$(grep -o '<span id="status"[^>]*>' "$TMP/dom")
	attr() { echo "$status" | sed -n "s/.* $1=\"\([^\"]*\)\".*/\1/p"; }
	[ "$(attr data-errors)" = 0 ] || fail "$page: script errors: $(attr data-errors): $(grep -o 'script errors:[^<]*' "$TMP/dom")"
	if grep -q ':CONSOLE' "$TMP/chrome.err"; then
		fail "$page: console messages: $(grep ':CONSOLE' "$TMP/chrome.err" | head -3)"
	fi
	want=$(q "SELECT count(*) FROM packet WHERE run = $run AND parent IS NULL")
	[ "$(attr data-arrows)" = "$want" ] || fail "$page: $(attr data-arrows) arrows drawn, $want rows"
	want=$(q "SELECT count(*) FROM packet WHERE run = $run")
	[ "$(attr data-packets)" = "$want" ] || fail "$page: $(attr data-packets) packets drawn, $want rows"
	want=$(q "SELECT count(*) FROM packet WHERE run = $run AND parent IS NULL AND fate = 'lost'")
	[ "$(attr data-lost)" = "$want" ] || fail "$page: $(attr data-lost) lost drawn, $want rows"
	[ "$(grep -c '<g class="arrow' "$TMP/dom")" -ge 1 ] || fail "$page: no arrow in the DOM"
}
check_page "$H1" 1
check_page "$TMP/r3.html" 3
# The filter box and zoom, set from the link: only the datagram with the
# 0x1d close matches, at any zoom.
browse "$H1#filter=connection_close(0x1d)&zoom=0.3" "$TMP/dom" "$TMP/chrome.err"
CHECKS=$((CHECKS + 1))
grep -q 'data-errors="0" data-arrows="1" data-packets="2" data-lost="0" data-ops="0" data-tls="0"' "$TMP/dom" ||
	fail "filter: $(grep -o '<span id="status"[^>]*>[^<]*' "$TMP/dom")"
CHECKS=$((CHECKS + 1))
PNG="$TMP/r1.png"
browse "$H1" "$TMP/shot.out" "$TMP/shot.err" --hide-scrollbars --window-size=1280,900 --screenshot="$PNG" ||
	fail "chromium --screenshot failed: $(tail -3 "$TMP/shot.err")"
if [ -s "$PNG" ]; then
	magic=$(od -An -tx1 -N8 "$PNG" | tr -d ' \n')
	dims=$(od -An -tu1 -j16 -N8 "$PNG" | tr -s ' ' | sed 's/^ //')
	size=$(wc -c <"$PNG")
	[ "$magic" = 89504e470d0a1a0a ] || fail "screenshot: not a PNG ($magic)"
	[ "$dims" = "0 0 5 0 0 0 3 132" ] || fail "screenshot: not 1280x900 ($dims)"
	# A blank 1280x900 page is about 5 KB; the ladder is far more.
	[ "$size" -gt 30000 ] || fail "screenshot: only $size bytes: blank?"
else
	fail "screenshot: no PNG written"
fi

# Hostile text: markup, terminal escapes, bad UTF-8 and bidi overrides in
# a scenario's name, log lines and expectations stay text everywhere.
EVIL="$TMP/x<b>&'q.lua"
cat >"$EVIL" <<'EOF'
local w = tlsim.world{ seed = 1 }
w:link{ latency = "10ms", loss = 0.2 }
local srv = w:echo_server{}
local cli = w:echo_client{ count = 4, interval = "10ms", rto = "50ms" }
cli:start()
w:log("</script><script>document.title='pwned'</script><img src=x onerror=alert(1)>")
w:log("esc \27[31mred\27[0m bad \xff\xfe bidi \u{202e}evil\u{2028}sep & \"q\" <!-- ]]>")
w:run{ limit = "10s" }
w:expect(false, "</script><!-- <b>bold</b>", "\27]0;title\7 \xff")
EOF
expect_run 1 "" -- run "$EVIL" --trace "$TMP/evil.db" -q
"$TLSIM" report "$TMP/evil.db" --color always >"$TMP/evil.txt" 2>&1
CHECKS=$((CHECKS + 1))
grep -q 'esc \\x1b\[31mred\\x1b\[0m bad \\xff\\xfe bidi \\u{202e}evil\\u{2028}sep' "$TMP/evil.txt" ||
	fail "hostile text: not shown escaped in the terminal"
if grep -q "$(printf '\033')\]" "$TMP/evil.txt"; then
	fail "hostile text: a terminal escape from the trace reached the terminal"
fi
expect_run 0 "" -- report "$TMP/evil.db" --html "$TMP/evil.html"
DB="$TMP/evil.db"
check_page "$TMP/evil.html" 1
[ "$(grep -o '<script' "$TMP/dom" | wc -l)" -eq 2 ] || fail "hostile text: a script element was injected"
grep -q '<title>tlsim report: run 1 of ' "$TMP/dom" || fail "hostile text: the title changed"
if grep -q '<img' "$TMP/dom"; then
	fail "hostile text: an element was injected"
fi
finish
