#!/bin/sh
# tests/probes/run.sh — the eBPF transport (issue 9): `heapscope attach` and
# `heapscope run --transport bpf` on this machine's kernel, for real.
#
# Attaches to running built-in workloads and to a program under the shim; the
# sessions must record transport bpf, lose nothing, and verify (every digest
# after the snapshot equal, the model's invariants after every event). A run
# with a tiny BPF ring buffer must count its losses and mark the model
# untrusted instead of failing. Bad targets get one line and exit 2: a process
# without heapscope, no such process, and an unprivileged user (run as
# nobody). The BPF object's handlers must be exactly the event table's.
#
# Needs root (CAP_SYS_ADMIN) and a kernel with eBPF uprobes and ring buffers;
# without them every case that attaches prints "SKIP ... (reason)" and the
# unprivileged case still runs. $HEAPSCOPE names the binary, $SHIM the
# preload shim, $BPF_OBJ the BPF object (build/probes/heapscope.bpf.o).
set -u
. "$(dirname "$0")/../cli/lib.sh"
SHIM=${SHIM:?set SHIM to libheapscope-preload.so}
BPF_OBJ=${BPF_OBJ:?set BPF_OBJ to the BPF object}
case $HS in /*) ;; *) HS=$(pwd)/$HS ;; esac
case $SHIM in /*) ;; *) SHIM=$(pwd)/$SHIM ;; esac
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "probes: the eBPF transport"

# --- the handlers are the table's ----------------------------------------------------
"$HS" run --workload sizeclasses --headless --no-model -o "$tmp/kinds.db" >/dev/null 2>&1
"$HS" query "$tmp/kinds.db" "SELECT 'handle_' || name FROM kinds ORDER BY 1" --csv | tail -n +2 >"$tmp/table"
nm "$BPF_OBJ" | awk '$3 ~ /^handle_/ { print $3 }' | sort >"$tmp/handlers"
sort -o "$tmp/table" "$tmp/table"
check "one BPF handler per event of the table, and no other ($(wc -l <"$tmp/table") events)" \
	"[ -s \"$tmp/table\" ] && cmp -s \"$tmp/table\" \"$tmp/handlers\""

# --- unprivileged: one line, exit 2 (runs wherever nobody exists) -----------------------
if id nobody >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
	mkdir -p "$tmp/pub" && cp "$HS" "$tmp/pub/heapscope" && chmod 755 "$tmp" "$tmp/pub" "$tmp/pub/heapscope"
	"$HS" workloads --run demo --seed 5 --duration 20 >/dev/null 2>&1 &
	victim=$!
	pids="$pids $victim"
	(cd "$tmp/pub" && runuser -u nobody -- ./heapscope attach --pid "$victim" --headless -o "$tmp/pub/n.db") \
		>"$tmp/out" 2>"$tmp/err"
	st=$?
	check "as nobody: exit 2" "[ $st -eq 2 ]"
	check "as nobody: one line naming CAP_SYS_ADMIN" \
		"[ \"\$(wc -l <\"$tmp/err\")\" -eq 1 ] && grep -q 'needs CAP_SYS_ADMIN' \"$tmp/err\" && [ ! -s \"$tmp/out\" ]"
	check "as nobody: the workload runs on" "kill -0 $victim"
	kill "$victim" 2>/dev/null
	wait "$victim" 2>/dev/null
else
	echo "  SKIP as nobody (needs root to switch users, and a user nobody)"
fi

# --- can this machine attach at all? -----------------------------------------------------------
"$HS" run --transport bpf --workload sizeclasses --headless --no-store >"$tmp/out" 2>"$tmp/err"
st=$?
if [ $st -eq 2 ]; then
	echo "  SKIP every attaching case ($(sed 's/^heapscope: run: //' "$tmp/err" | head -1))"
	finish probes
	exit 0
fi
check "run --transport bpf: sizeclasses recorded through eBPF" "[ $st -eq 0 ] && grep -q 'all equal' \"$tmp/out\""

# --- bad targets -------------------------------------------------------------------------------------
sleep 30 &
sleeper=$!
pids="$pids $sleeper"
bad "attach to a process without heapscope: one line, exit 2" attach --pid "$sleeper" --headless -o "$tmp/x.db"
check "... saying it does not use heapscope's heap" "grep -q \"does not use heapscope's heap\" \"$tmp/err\""
kill "$sleeper"
bad "attach to no such process" attach --pid 2147483646 --headless -o "$tmp/x.db"
check "... saying so" "grep -q 'no process 2147483646' \"$tmp/err\""
bad "attach without --pid" attach --headless
bad "attach --events bogus" attach --pid 1 --events bogus
bad "attach --duration 0" attach --pid 1 --duration 0
bad "run --transport bogus" run --transport bogus --headless
expect "attach --help" 0 "CAP_SYS_ADMIN" "" -- attach --help
check "a bad target left no session file" "[ ! -e \"$tmp/x.db\" ]"

# --- attach to a running built-in workload ------------------------------------------------
# sessions_field FILE SESSION COLUMN
field() { "$HS" query "$1" "SELECT $3 FROM sessions WHERE id = $2" --csv | tail -1; }

"$HS" workloads --run demo --seed 7 --duration 30 >/dev/null 2>&1 &
w=$!
pids="$pids $w"
sleep 1
threads() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }
before=$(threads "$w")
"$HS" attach --pid "$w" --headless --duration 3 -o "$tmp/a.db" >"$tmp/out" 2>"$tmp/err" &
a=$!
sleep 1.5
during=$(threads "$w")
wait "$a"
st=$?
sleep 0.5
after=$(threads "$w")
check "attach to demo for 3 s: exit 0" "[ $st -eq 0 ]"
check "... events arrived" "[ \"\$(field \"$tmp/a.db\" 1 nevents)\" -gt 1000 ]"
check "... none lost, and the digests after the snapshot all equal" \
	"grep -q ' 0 lost' \"$tmp/err\" && grep -q 'digests checked, all equal' \"$tmp/err\" && ! grep -q 'DIVERGED' \"$tmp/err\""
check "... at least 10 digests checked" \
	"[ \"\$(sed -n 's/.*model: \([0-9]*\) digests.*/\1/p' \"$tmp/err\")\" -ge 10 ]"
row=$(field "$tmp/a.db" 1 "transport || '/' || nlost || '/' || status" | tr -d '"')
check "... the session says transport bpf, 0 lost, complete ($row)" "[ '$row' = bpf/0/complete ]"
check "... it starts with the snapshot" \
	"[ \"\$(\"$HS\" query \"$tmp/a.db\" 'SELECT kind FROM events ORDER BY seq LIMIT 1' --csv | tail -1)\" = 26 ]"
check "... the workload runs on after the detach" "kill -0 $w"
# While attached the process samples from a thread of its own, which ends once
# the semaphores are back to 0: the detach left no tracing behind.
check "... one more thread while attached ($before, $during), none after the detach ($after)" \
	"[ $during -eq $((before + 1)) ] && [ $after -eq $before ]"
"$HS" verify "$tmp/a.db" >"$tmp/out" 2>"$tmp/err"
check "... verify: digests equal, invariants hold" "[ $? -eq 0 ] && grep -q 'invariants hold$' \"$tmp/out\""

# Attach again to the same process, at object level this time.
"$HS" attach --pid "$w" --headless --duration 2 --events objects -o "$tmp/a.db" >"$tmp/out" 2>"$tmp/err"
st=$?
check "attach again, --events objects: exit 0, digests equal" "[ $st -eq 0 ] && grep -q 'all equal' \"$tmp/err\""
check "... mallocs and frees recorded" \
	"[ \"\$(\"$HS\" query \"$tmp/a.db\" 'SELECT count(*) FROM malloc WHERE session = 2' --csv | tail -1)\" -gt 0 ]"
"$HS" verify "$tmp/a.db" --session 2 >"$tmp/out" 2>&1
check "... verify session 2" "[ $? -eq 0 ]"
kill "$w" 2>/dev/null
wait "$w" 2>/dev/null

# --- the process exits while attached -----------------------------------------------------------------
"$HS" workloads --run churn >/dev/null 2>&1 &
w=$!
pids="$pids $w"
"$HS" attach --pid "$w" --headless -o "$tmp/e.db" >"$tmp/out" 2>"$tmp/err"
st=$?
wait "$w" 2>/dev/null
status=$(field "$tmp/e.db" 1 status | tr -d '"')
check "attach until churn exits: exit 0, complete, proc_end recorded" \
	"[ $st -eq 0 ] && [ '$status' = complete ] && \
	 [ \"\$(\"$HS\" query \"$tmp/e.db\" 'SELECT count(*) FROM proc_end' --csv | tail -1)\" = 1 ]"
check "... digests equal" "grep -q 'all equal' \"$tmp/err\""

# --- a program under the shim --------------------------------------------------------------------------------
if command -v python3 >/dev/null 2>&1; then
	LD_PRELOAD=$SHIM python3 -c '
import time
t = time.time(); keep = []
while time.time() - t < 20:
    keep.append(bytearray(3000))
    if len(keep) > 5000: keep = []
' &
	p=$!
	pids="$pids $p"
	sleep 1
	"$HS" attach --pid "$p" --headless --duration 2 -o "$tmp/p.db" >"$tmp/out" 2>"$tmp/err"
	st=$?
	check "attach to python3 under the shim: exit 0, digests equal" \
		"[ $st -eq 0 ] && grep -q 'all equal' \"$tmp/err\" && grep -q 'libheapscope-preload.so' \"$tmp/err\""
	kill "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	HEAPSCOPE_PRELOAD=$SHIM "$HS" run --transport bpf --headless -o "$tmp/p.db" -- python3 -c 'print(len([bytes(99) for i in range(50000)]))' \
		>"$tmp/out" 2>"$tmp/err"
	check "run --transport bpf -- python3: output passes, digests equal" \
		"[ $? -eq 0 ] && [ \"\$(cat \"$tmp/out\")\" = 50000 ] && grep -q 'all equal' \"$tmp/err\""
else
	echo "  SKIP python3 under the shim (python3 not installed)"
fi

# --- losses: a BPF ring buffer far too small -------------------------------------------------------
"$HS" run --transport bpf --workload threads --duration 2 --events objects --ring-slots 1024 --headless \
	-o "$tmp/l.db" >"$tmp/out" 2>"$tmp/err"
st=$?
lost=$(field "$tmp/l.db" 1 nlost)
check "a 64 KiB ring buffer under object-level threads: losses counted in the session ($lost)" \
	"[ $st -eq 0 ] && [ \"$lost\" -gt 0 ]"
check "... the model says from where it is not trusted" "grep -q 'not trusted from there' \"$tmp/out\""
"$HS" verify "$tmp/l.db" >"$tmp/out" 2>&1
check "... verify says the divergence is expected after the loss" \
	"grep -q 'lost just before seq' \"$tmp/out\" || grep -q 'though events were lost' \"$tmp/out\""

# --- the TUI shows the losses and where the model stops being trusted ---------------------------------
if command -v tmux >/dev/null 2>&1; then
	sock="hs-probes-$$"
	tmux -L "$sock" -f /dev/null new-session -d -s bpf -x 120 -y 30 \
		"'$HS' run --transport bpf --workload threads --duration 3 --events objects --ring-slots 1024 -o '$tmp/t.db'; sleep 60"
	i=0 seen=0
	while [ $i -lt 100 ]; do
		tmux -L "$sock" capture-pane -p -t bpf >"$tmp/screen" 2>/dev/null
		if grep -q 'model untrusted from seq [0-9]' "$tmp/screen" && grep -q -E 'lost [1-9][0-9]*' "$tmp/screen"; then
			seen=1
			break
		fi
		sleep 0.1
		i=$((i + 1))
	done
	cp "$tmp/screen" "$tmp/out"
	check "live TUI over eBPF with losses: 'lost N' and 'model untrusted from seq'" "[ $seen -eq 1 ]"
	tmux -L "$sock" send-keys -t bpf q
	tmux -L "$sock" kill-server 2>/dev/null
else
	echo "  SKIP the live TUI (tmux is not installed)"
fi

finish probes
