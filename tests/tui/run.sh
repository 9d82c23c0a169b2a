#!/bin/sh
# tests/tui/run.sh — the TUI driven for real: `heapscope view` (and `run`, when
# it opens the TUI) inside tmux, keys sent with send-keys, the screen read back
# with capture-pane. $HEAPSCOPE names the binary. Each check prints one line;
# the script fails at the end if any check failed. About 10 s (35 s under
# AddressSanitizer), 2 s of it recording the session it views.
#
# Every wait polls the screen (wait_for) instead of sleeping a fixed time, so a
# slow machine makes the run slower, not flaky.
set -u
HS=${HEAPSCOPE:?set HEAPSCOPE to the heapscope binary}
case $HS in /*) ;; *) HS=$(pwd)/$HS ;; esac
tmp=$(mktemp -d)
sock="hs-tui-test-$$"
T() { tmux -L "$sock" -f "$tmp/tmux.conf" "$@"; }
cleanup() { tmux -L "$sock" kill-server 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
failures=0

pass() { printf '  PASS %s\n' "$1"; }
fail() {
	printf '  FAIL %s\n' "$1"
	[ -s "$tmp/screen" ] && sed 's/^/    | /' "$tmp/screen" | head -30
	failures=$((failures + 1))
}

if ! command -v tmux >/dev/null 2>&1; then
	echo "  SKIP tui tests: tmux is not installed"
	exit 0
fi

# A UTF-8 locale for the glyph runs, if the machine has one.
utf8=$(locale -a 2>/dev/null | grep -i -m1 -E '^(C|en_US)\.utf-?8$')
term=screen
infocmp tmux-256color >/dev/null 2>&1 && term=tmux-256color
printf 'set -g status off\nset -g default-terminal %s\nset -g escape-time 0\n' "$term" >"$tmp/tmux.conf"

# --- without a screen: the one-line errors --------------------------

"$HS" run --workload demo --duration 2 --headless -o "$tmp/s.db" >"$tmp/out" 2>&1 </dev/null ||
	{ cp "$tmp/out" "$tmp/screen"; fail "record a session for the tests"; exit 1; }
db="$tmp/s.db"

# expect_error NAME PATTERN ARGS...: exit 2, exactly one line on stderr, nothing on stdout.
expect_error() {
	name=$1 pat=$2
	shift 2
	"$HS" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	st=$?
	cat "$tmp/out" "$tmp/err" >"$tmp/screen"
	if [ $st -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ ! -s "$tmp/out" ] && grep -q -- "$pat" "$tmp/err"; then
		pass "$name"
	else
		fail "$name (exit $st)"
	fi
}
expect_error "unknown session: one line, exit 2" "no session 99" view "$db" --session 99
expect_error "missing file: one line, exit 2" "cannot open" view "$tmp/nope.db"
expect_error "bad --at: one line, exit 2" "--at takes" view "$db" --at xyz
expect_error "no terminal: one line, exit 2" "no terminal" view "$db"

# --- in tmux ------------------------------------------------------------------------------

# start NAME COLS ROWS ENV... -- ARGS...: heapscope in a new detached session;
# its exit status goes to $tmp/NAME.exit.
start() {
	name=$1 cols=$2 rows=$3
	shift 3
	envs=""
	while [ "$1" != "--" ]; do envs="$envs $1"; shift; done
	shift
	args=""
	for a in "$@"; do args="$args '$a'"; done
	T new-session -d -s "$name" -x "$cols" -y "$rows" \
		"env -u NO_COLOR $envs '$HS' $args; echo \$? >'$tmp/$name.exit'; sleep 60"
}

screen() { T capture-pane -p -t "$1" >"$tmp/screen"; }
keys() { s=$1; shift; T send-keys -t "$s" "$@"; }
types() { T send-keys -t "$1" -l "$2"; } # literal text (send-keys reads 0x... as a key code)

# wait_until SESSION CONDITION [SECONDS]: until the shell CONDITION holds for a
# fresh capture in $tmp/screen. ncurses may be part-way through a redraw when
# the pane is captured, so a check on the whole screen must poll too.
wait_until() {
	i=0 lim=$((${3:-5} * 10))
	while [ $i -lt $lim ]; do
		screen "$1"
		eval "$2" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# wait_for SESSION PATTERN [SECONDS]: until the screen shows PATTERN (grep -E).
wait_for() { want=$2; wait_until "$1" 'grep -q -E -- "$want" "$tmp/screen"' "${3:-5}"; }

# wait_count SESSION PATTERN N: until exactly N lines match PATTERN; the
# count seen last is left in $count.
wait_count() {
	want=$2 n=$3
	wait_until "$1" 'count=$(grep -c -E -- "$want" "$tmp/screen"); [ "$count" -eq "$n" ]'
}

# exit_status SESSION: heapscope's exit status in that session, waiting up to
# 30 s for it (a live run commits and closes its store after q, and a loaded
# disk can hold up the fsync); empty if it has not exited.
exit_status() {
	i=0
	while [ ! -f "$tmp/$1.exit" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	cat "$tmp/$1.exit" 2>/dev/null
}

check() { # check NAME SESSION PATTERN [SECONDS]
	if wait_for "$2" "$3" "${4:-5}"; then pass "$1"; else fail "$1 (no /$3/)"; fi
}

# The screen holds no byte outside ASCII.
ascii_only() { [ "$(LC_ALL=C tr -d '\000-\177' <"$tmp/screen" | wc -c)" -eq 0 ]; }

LOC=${utf8:-C}
S=main
start $S 80 24 LANG=$LOC LC_ALL=$LOC -- view "$db" --paused
check "start-up: header and first pane" $S 'heapscope REPLAY.*s\.db session 1'
check "start-up: the six tabs" $S '1 Summary +2 Chunks +3 Spans +4 Statistics +5 Scavenger +6 Timeline'
check "start-up: paused at the start" $S 'paused .*seq start/'

# Go somewhere with a heap: seek to the middle of the session.
last=$(sed -n 's/.*seq start\/\([0-9]*\).*/\1/p' "$tmp/screen" | head -1)
mid=$(( ${last:-2000} / 2 ))
keys $S g
check "seek: the prompt" $S 'seek to \(sequence number'
types $S "$mid"
keys $S Enter
check "seek: g to a sequence number moves the position" $S "seq $mid/$last"
check "summary pane: levels over the in-use range" $S '^L0 .*' 
if wait_for $S '^L4 4M ' && wait_for $S 'cursor L0 index 0x[0-9a-f]+' && wait_for $S 'starts free'; then
	pass "summary pane: level rows, cursor and legend"
else
	fail "summary pane: level rows, cursor and legend"
fi

# Zoom: cursor down to L3, Enter zooms into its children, Backspace returns.
keys $S j j j
check "summary: cursor moves down a level" $S 'cursor L3 index'
keys $S Enter
check "summary: Enter zooms into the entry" $S 'zoom L3 index 0x[0-9a-f]+: [0-9]+ chunks'
check "summary: the cursor is on a child" $S 'cursor L4 index'
keys $S BSpace
check "summary: Backspace zooms out a level" $S 'zoom L2 index 0x[0-9a-f]+: [0-9]+ chunks'
check "summary: the cursor is back on the entry" $S 'cursor L3 index'
keys $S BSpace BSpace BSpace
check "summary: Backspace at the top shows the whole heap" $S 'whole heap: [0-9]+ chunks'

# Tab cycles every pane, Shift-Tab goes back.
keys $S Tab
check "Tab: chunk bitmaps pane" $S 'Chunk bitmaps +chunk 0x[0-9a-f]+: 512 pages, 32 x 16'
wait_count $S '^ *(0|32|64|96|128|160|192|224|256|288|320|352|384|416|448|480) ' 16 &&
	pass "chunk pane: 16 rows of 32 pages" || fail "chunk pane: 16 rows of 32 pages (got $count)"
check "chunk pane: counts and legend" $S 'allocated [0-9]+ +free [0-9]+ +released [0-9]+'
keys $S PageDown
check "chunk pane: PgDn moves to the next chunk" $S '\(2 of [0-9]+ in use\)'
keys $S Tab
check "Tab: spans pane" $S '^Spans +[0-9]+ spans'
check "spans pane: the list" $S 'alloc/nelem +occupancy'
keys $S f
check "spans pane: f filters by state" $S 'state new, class all'
keys $S BSpace
check "spans pane: Backspace clears the filter" $S 'state all, class all'
keys $S Tab
check "Tab: statistics pane" $S '^Statistics '
check "statistics: figures and the RSS bar" $S '^RSS [0-9.]+ [KMG]?i?B'
check "statistics: event rate and lost" $S '^lost +0'
keys $S Tab
check "Tab: scavenger pane" $S '^Scavenger +pid [0-9]+'
check "scavenger: goal, retained, CPU" $S 'retained .* goal '
keys $S Tab
check "Tab: timeline pane" $S '^Timeline +session complete'
check "timeline: position" $S "position: seq $mid of"
keys $S Right
check "timeline: -> steps one event" $S "position: seq $((mid + 1)) of"
keys $S Left
check "timeline: <- steps back" $S "position: seq $mid of"
keys $S ']'
check "timeline: ] a thousand forward" $S "position: seq $((mid + 1000)) of"
keys $S '['
check "timeline: [ a thousand back" $S "position: seq $mid of"
keys $S +
check "timeline: + doubles the speed" $S 'paused \(2x\)'
keys $S -
check "timeline: - halves it" $S 'paused \(1x\)'
keys $S Tab
check "Tab cycles back to the summary" $S '^Summary levels'
keys $S BTab
check "Shift-Tab goes back" $S '^Timeline '

# Find an address: the base of the chunk the chunk pane shows, from the summary.
keys $S 2
wait_for $S '^Chunk bitmaps'
base=$(sed -n 's/.*  \[\(0x[0-9a-f]*\), 0x[0-9a-f]*)$/\1/p' "$tmp/screen" | head -1)
keys $S 1
wait_for $S '^Summary levels'
keys $S /
types $S "${base:-0xc000000000}"
keys $S Enter
check "/ finds an address: its chunk and page" $S "${base:-0xc000000000}: chunk 0x[0-9a-f]+ page 0"
check "/ shows the chunk pane" $S '^Chunk bitmaps'

# Help.
keys $S '?'
check "? shows the help overlay" $S 'heapscope keys'
keys $S x
if wait_for $S 'Chunk bitmaps' && ! grep -q 'heapscope keys' "$tmp/screen"; then
	pass "any key closes the help"
else
	fail "any key closes the help"
fi

# Resize.
T resize-window -t $S -x 100 -y 30
check "resize to 100x30: redrawn" $S '^Chunk bitmaps'
if wait_until $S '[ "$(wc -l <"$tmp/screen")" -ge 29 ] && grep -q "6 Timeline" "$tmp/screen"'; then
	pass "resize to 100x30: the whole screen"
else
	fail "resize to 100x30: the whole screen"
fi
T resize-window -t $S -x 40 -y 10
if wait_for $S 'too small' && wait_count $S . 1; then
	pass "resize to 40x10: one line saying too small"
else
	fail "resize to 40x10: one line saying too small"
fi
T resize-window -t $S -x 80 -y 24
check "resize back to 80x24" $S '^Chunk bitmaps'
T resize-window -t $S -x 200 -y 60
check "200x60: statistics beside the pane" $S 'Chunk bitmaps.*Statistics'
T resize-window -t $S -x 80 -y 24

keys $S q
st=$(exit_status $S)
[ "$st" = 0 ] && pass "q quits with status 0" || fail "q quits with status 0 (status '$st')"

# --- ASCII: LANG=C draws no byte outside ASCII, in every pane ------------------------------
S=ascii
start $S 80 24 LANG=C LC_ALL=C -- view "$db" --paused --at "$mid"
ok=1
wait_for $S '^Summary levels' || ok=0
ascii_only || ok=0
for p in 2 3 4 5 6 '?'; do
	keys $S "$p"
	sleep 0.3
	screen $S
	ascii_only || { ok=0; echo "    non-ASCII after key $p"; }
	[ "$p" = '?' ] && keys $S x
done
[ $ok -eq 1 ] && pass "LANG=C: ASCII glyphs only, every pane and the help" || fail "LANG=C: ASCII glyphs only"
keys $S 2
wait_for $S 'Chunk bitmaps'
wait_count $S '^ *[0-9]+ [#.:!@]{32}( |$)' 16 && pass "LANG=C: the chunk grid is 32x16 ASCII cells" ||
	fail "LANG=C: the chunk grid is 32x16 ASCII cells (got $count rows)"
keys $S q

# --- NO_COLOR: works, and no colour is drawn ----------------------------------------------------
S=mono
start $S 80 24 LANG=$LOC LC_ALL=$LOC NO_COLOR=1 -- view "$db" --paused --at "$mid"
if wait_for $S '^Summary levels' && wait_for $S '^L4 '; then
	T capture-pane -e -p -t $S >"$tmp/screen"
	if grep -q -E '\[([0-9;]*;)?(3[0-7]|4[0-7]|38;5|48;5)[;m]' "$tmp/screen"; then
		fail "NO_COLOR=1: no colours drawn"
	else
		pass "NO_COLOR=1: works, monochrome"
	fi
else
	fail "NO_COLOR=1: works"
fi
keys $S q

# --- following a session still being recorded --------------------------------------------------
"$HS" run --workload demo --duration 4 --headless -o "$tmp/live.db" >/dev/null 2>&1 </dev/null &
rec=$!
i=0
while ! "$HS" sessions "$tmp/live.db" 2>/dev/null | grep -q running && [ $i -lt 40 ]; do sleep 0.1; i=$((i + 1)); done
S=follow
start $S 80 24 LANG=$LOC LC_ALL=$LOC -- view "$tmp/live.db"
check "follow: a running session is followed" $S 'following.*\[running\]'
check "follow: it ends complete" $S '\[complete\]' 10
wait $rec
keys $S q

# --- live: `heapscope run` with the TUI (once the recorder opens it) ---------------------------
if "$HS" run --help 2>&1 | grep -q 'TUI is not built yet'; then
	echo "  SKIP live: heapscope run does not open the TUI yet"
else
	S=live
	start $S 80 24 LANG=$LOC LC_ALL=$LOC -- run --workload demo --duration 3 -o "$tmp/run.db"
	check "live: run opens the TUI" $S 'heapscope LIVE'
	check "live: summary levels drawn" $S '^L4 '
	keys $S 4
	check "live: statistics with the event rate" $S '^events +[0-9.]+[kMG]?/s'
	check "live: the workload finishes, the TUI stays" $S 'finished' 10
	keys $S q
	st=$(exit_status $S)
	[ "$st" = 0 ] && pass "live: q quits with status 0" || { screen $S; fail "live: q quits with status 0 (status '$st')"; }
fi

# Every session ended by q exited 0 (a sanitizer report would make it fail).
for S in ascii mono follow; do
	st=$(exit_status $S)
	[ "$st" = 0 ] && pass "$S: q quits with status 0" || { screen $S; fail "$S: q quits with status 0 (status '$st')"; }
done

if [ "$failures" -ne 0 ]; then
	echo "tui tests: $failures failed" >&2
	exit 1
fi
