#!/bin/sh
# tests/hosted/run.sh — real programs on heapscope's heap (issue 8).
#
# Each case is a small shell script (below) run three times in fresh
# directories: plainly, under the shim (LD_PRELOAD=$SHIM), and recorded by
# `heapscope run --headless --events objects -- sh CASE`. The three must print
# the same stdout and stderr (the recorder's own summary lines aside) and exit
# with the same status; the recorded session must be complete and verify
# (`heapscope verify`: every digest equal, the model's invariants after every
# event). The scripts run under `sh`, so every case forks and execs as well.
#
# Then: the fork/exec and closed-descriptor paths, a threaded program that
# forks, the malloc family's glibc semantics, bad frees as docs/heap.md
# documents them, and what `heapscope run -- PROGRAM` passes through.
#
# $HEAPSCOPE names the heapscope binary, $SHIM libheapscope-preload.so. A case
# whose program is not installed prints "SKIP name (not installed)"; Debian
# packages: python3, perl, sqlite3, gcc, git, tcl, gawk, xz-utils.
set -u
HS=${HEAPSCOPE:?set HEAPSCOPE to the heapscope binary}
SHIM=${SHIM:?set SHIM to libheapscope-preload.so}
CASE_LIMIT=${CASE_LIMIT:-300} # seconds for one run of a case; the slowest takes about 2
here=$(cd "$(dirname "$0")" && pwd)
case $HS in /*) ;; *) HS=$(pwd)/$HS ;; esac
case $SHIM in /*) ;; *) SHIM=$(pwd)/$SHIM ;; esac
[ -x "$HS" ] || { echo "hosted: no $HS"; exit 1; }
[ -f "$SHIM" ] || { echo "hosted: no $SHIM"; exit 1; }
tmp=$(mktemp -d)
cleanup() {
	command -v tmux >/dev/null 2>&1 && tmux -L "hs-hosted-$$" kill-server 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
failures=0

pass() { printf '  PASS %s\n' "$1"; }
fail() {
	printf '  FAIL %s\n' "$1"
	for f in "$tmp/out" "$tmp/err"; do [ -s "$f" ] && sed 's/^/    | /' "$f" | head -20; done
	failures=$((failures + 1))
}
skip() { printf '  SKIP %s (not installed)\n' "$1"; }
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }

# Debian's programs first (a version manager's wrapper scripts on PATH would
# turn one program into dozens of processes), the same environment every run.
PATH=/usr/bin:/bin:$PATH
export PATH LC_ALL=C TZ=UTC PYTHONHASHSEED=0 HOME="$tmp/home" GIT_CONFIG_NOSYSTEM=1 \
	GIT_AUTHOR_NAME=heapscope GIT_AUTHOR_EMAIL=heapscope@example.org GIT_AUTHOR_DATE=2024-01-01T00:00:00Z \
	GIT_COMMITTER_NAME=heapscope GIT_COMMITTER_EMAIL=heapscope@example.org \
	GIT_COMMITTER_DATE=2024-01-01T00:00:00Z
unset LD_PRELOAD HEAPSCOPE_TRACE_FD HEAPSCOPE_TRACE_PATH HEAPSCOPE_BADFREE
mkdir -p "$HOME"
have() { command -v "$1" >/dev/null 2>&1; }
cases=$tmp/cases
mkdir -p "$cases"

# --- the cases ---------------------------------------------------------------------

cat >"$cases/python3.sh" <<'EOF'
python3 - <<'PY'
import collections, hashlib, json, re
words = [("w%d" % (i * 7919 % 1000)) * (1 + i % 5) for i in range(20000)]
counts = collections.Counter(words)
print(len(counts), counts.most_common(3))
d = {w: [len(w), w.upper()] for w in words[:2000]}
print(hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest())
print(len(re.findall(r"w(\d+)", " ".join(words))))
s = ""
for i in range(3000):
    s += str(i)
print(len(s), sorted(set(s)))
PY
EOF

cat >"$cases/python3-threads.sh" <<'EOF'
python3 - <<'PY'
import threading
out = {}
def work(k):
    acc = []
    for i in range(30000):
        acc.append(str(i * k))
        if len(acc) > 500:
            acc = acc[250:]
    out[k] = sum(len(x) for x in acc)
ts = [threading.Thread(target=work, args=(k,)) for k in range(1, 7)]
for t in ts: t.start()
for t in ts: t.join()
print(sorted(out.items()))
PY
EOF

cat >"$cases/perl.sh" <<'EOF'
perl -e '
my %h; for my $i (1..30000) { $h{"k" . ($i * 7 % 5000)} .= chr(97 + $i % 26) }
my @k = sort { length($h{$b}) <=> length($h{$a}) || $a cmp $b } keys %h;
print scalar(@k), " @k[0..4]\n";
my $s = join(",", map { sprintf("%05d", $_) } 1..5000);
my @m = ($s =~ /(\d)(\d)\2/g); print scalar(@m), "\n";
print length(join("", reverse split //, $s)), "\n";'
EOF

cat >"$cases/sqlite3.sh" <<'EOF'
sqlite3 db.sqlite <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v INTEGER);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
INSERT INTO t(k, v) SELECT 'key' || (i * 37 % 1000), i FROM n;
CREATE INDEX tk ON t(k);
SELECT count(*), sum(v), count(DISTINCT k) FROM t;
SELECT k, count(*), max(v) FROM t GROUP BY k ORDER BY 3 DESC LIMIT 3;
SELECT group_concat(k, '') FROM (SELECT k FROM t WHERE v % 997 = 0 ORDER BY v);
SQL
EOF

cat >"$cases/gcc.sh" <<'EOF'
cat >prog.c <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
int main(void)
{
	char *v[1000];
	for (int i = 0; i < 1000; i++) {
		v[i] = malloc(16);
		snprintf(v[i], 16, "n%d", i * 7919 % 1000);
	}
	qsort(v, 1000, sizeof v[0], cmp);
	printf("%s %s %s\n", v[0], v[500], v[999]);
	for (int i = 0; i < 1000; i++)
		free(v[i]);
	return 0;
}
C
gcc -O2 -Wall -o prog prog.c && ./prog
EOF

cat >"$cases/git.sh" <<'EOF'
git init -q repo && cd repo &&
for i in 1 2 3; do seq 1 $((i * 300)) >"file$i"; done &&
git add . && git commit -q -m first &&
sed -i 's/^1/one/' file2 && git commit -q -am second &&
git log --format='%H %an %s' && git diff --stat HEAD~1 && git rev-list --count HEAD
EOF

cat >"$cases/tclsh.sh" <<'EOF'
tclsh <<'TCL'
proc fib {n} { if {$n < 2} { return $n }; expr {[fib [expr {$n - 1}]] + [fib [expr {$n - 2}]]} }
set l {}
for {set i 0} {$i < 20000} {incr i} { lappend l [format "k%04d" [expr {$i * 7919 % 5000}]] }
set d [dict create]
foreach k $l { dict incr d $k }
puts "[llength [lsort -unique $l]] [dict size $d] [fib 18]"
puts [string length [join [lreverse $l] ,]]
TCL
EOF

cat >"$cases/gawk.sh" <<'EOF'
seq 1 30000 | gawk '
{ w = "w" ($1 * 7919 % 3000); c[w]++; s = s substr(w, 2, 1) }
END { n = asorti(c, k); printf "%d %s %s %d\n", n, k[1], k[n], length(s)
      split(s, a, ""); for (i in a) d[a[i]]++; for (x in d) t += d[x]; print t }'
EOF

cat >"$cases/xz.sh" <<'EOF'
seq 1 60000 | sed 's/$/ heapscope/' >data &&
xz -T2 -k -6 data && xz -dc data.xz >back && cmp data back && cksum <data.xz &&
xz -T1 -k -c data | cksum
EOF

cat >"$cases/pipeline.sh" <<'EOF'
ls / | wc -l
seq 1 500 | sort -r | head -3 | tr '\n' ' '; echo
sh -c 'for i in 1 2 3; do echo "sub $i" & done; wait' | sort
EOF

# --- three runs of a case ------------------------------------------------------------

# run_mode NAME MODE: runs case NAME in a fresh directory; writes $d.out,
# $d.err and $d.status.
run_mode() {
	d=$tmp/$1.$2
	mkdir -p "$d"
	# A hang fails its case after $CASE_LIMIT seconds instead of stalling the suite.
	case $2 in
	plain) (cd "$d" && timeout $CASE_LIMIT sh "$cases/$1.sh") >"$d.out" 2>"$d.err" </dev/null ;;
	shim) (cd "$d" && LD_PRELOAD=$SHIM timeout $CASE_LIMIT sh "$cases/$1.sh") >"$d.out" 2>"$d.err" </dev/null ;;
	run) (cd "$d" && timeout $CASE_LIMIT "$HS" run --headless --events objects -o "$tmp/$1.db" -- sh "$cases/$1.sh") \
		>"$d.out" 2>"$d.err.raw" </dev/null ;;
	esac
	echo $? >"$d.status"
	if [ "$2" = run ]; then
		grep -v '^heapscope:* run:' "$d.err.raw" >"$d.err"
		cp "$d.err.raw" "$tmp/$1.summary"
	fi
}

# run_case NAME PROGRAM...: the three runs, compared, and the session verified.
run_case() {
	name=$1
	shift
	for p in "$@"; do
		have "$p" || { skip "$name ($p)"; return; }
	done
	for mode in plain shim run; do
		run_mode "$name" $mode
	done
	p=$tmp/$name.plain
	for mode in shim run; do
		m=$tmp/$name.$mode
		cat "$m.out" >"$tmp/out"
		diff "$p.err" "$m.err" >"$tmp/err"
		check "$name: $mode: same output" 'cmp -s "$p.out" "$m.out" && cmp -s "$p.err" "$m.err"'
		printf 'plain %s, %s %s\n' "$(cat "$p.status")" "$mode" "$(cat "$m.status")" >"$tmp/out"
		: >"$tmp/err"
		check "$name: $mode: same exit status ($(cat "$p.status"))" 'cmp -s "$p.status" "$m.status"'
	done
	cp "$tmp/$name.summary" "$tmp/out"
	"$HS" verify "$tmp/$name.db" >"$tmp/err" 2>&1
	check "$name: session verifies ($(sed -n 's/.*: \([0-9]* events\).*/\1/p' "$tmp/err"))" \
		'grep -q "invariants hold" "$tmp/err" && grep -q "session 1 in .* (complete)" "$tmp/out"'
}

echo "hosted: real programs, plain / under the shim / recorded"
run_case python3 python3
run_case python3-threads python3
run_case perl perl
run_case sqlite3 sqlite3
run_case gcc gcc
run_case git git
run_case tclsh tclsh
run_case gawk gawk
run_case xz xz
run_case pipeline ls wc sort

# --- processes: fork, exec, closed descriptors ---------------------------------------

echo "hosted: processes"
procs() { "$HS" query "$1" "SELECT count(*) FROM proc_start" --csv 2>/dev/null | tail -1; }

# sh forks twice and execs ls and wc: five heaps (two fork children that then
# exec'd into new heaps of the same pids).
db=$tmp/pipe.db
"$HS" run --headless -o "$db" -- sh -c 'ls / | wc -l' >"$tmp/out" 2>"$tmp/err"
st=$?
n=$(procs "$db")
check "sh -c 'ls | wc -l': exits 0, $n heaps" '[ $st -eq 0 ] && [ "${n:-0}" -ge 5 ]'
"$HS" verify "$db" >"$tmp/out" 2>"$tmp/err"
check "sh -c 'ls | wc -l': session verifies" 'grep -q "invariants hold" "$tmp/out"'

# Python's subprocess closes every descriptor above 2 before exec: the child
# reopens the ring from HEAPSCOPE_TRACE_PATH and is a heap of the session too.
if have python3; then
	db=$tmp/subprocess.db
	"$HS" run --headless -o "$db" -- python3 -c '
import subprocess, sys
r = subprocess.run([sys.executable, "-c", "print(sum(range(1000)))"], capture_output=True)
print(r.returncode, r.stdout.decode().strip(), len(r.stderr))' >"$tmp/out" 2>"$tmp/err"
	n=$(procs "$db")
	check "python subprocess (close_fds): child traced ($n heaps), its stderr clean" \
		'grep -qx "0 499500 0" "$tmp/out" && [ "${n:-0}" -ge 2 ]'
	"$HS" verify "$db" >"$tmp/out" 2>"$tmp/err"
	check "python subprocess: session verifies" 'grep -q "invariants hold" "$tmp/out"'
else
	skip "python subprocess (python3)"
fi

# A descriptor that is not the ring, and no way to reopen it: the program runs
# untraced and says nothing.
if have python3; then
	HEAPSCOPE_TRACE_FD=0 LD_PRELOAD=$SHIM python3 -c 'import os; print(repr(os.environ["HEAPSCOPE_TRACE_FD"]))' \
		</dev/null >"$tmp/out" 2>"$tmp/err"
	check "HEAPSCOPE_TRACE_FD not a ring: silent, emptied" '[ $? -eq 0 ] && grep -qx "'"''"'" "$tmp/out" && [ ! -s "$tmp/err" ]'
fi

# --- C programs: threads and fork, the malloc family, bad frees ---------------------

echo "hosted: C programs"
if have cc || have gcc; then
	CCX=$(command -v cc || command -v gcc)
	# -fno-builtin: the compiler must not assume what malloc does to errno or
	# fold impossible requests; these programs test exactly that.
	"$CCX" -O2 -fno-builtin -pthread -o "$tmp/forkthreads" "$here/forkthreads.c" >"$tmp/err" 2>&1 &&
		"$CCX" -O2 -fno-builtin -o "$tmp/semantics" "$here/semantics.c" -ldl >>"$tmp/err" 2>&1
	check "compile the test programs" '[ $? -eq 0 ]'

	LD_PRELOAD=$SHIM timeout 60 "$tmp/forkthreads" 100 >"$tmp/out" 2>"$tmp/err"
	check "threads freeing each other's objects while fork()ing (100 forks)" \
		'[ $? -eq 0 ] && grep -q "100 forks, 0 failed" "$tmp/out"'
	db=$tmp/forkthreads.db
	timeout 60 "$HS" run --headless -o "$db" -- "$tmp/forkthreads" 30 >"$tmp/out" 2>"$tmp/err"
	check "threads and fork, recorded" '[ $? -eq 0 ] && grep -q "30 forks, 0 failed" "$tmp/out"'
	"$HS" verify "$db" >"$tmp/out" 2>"$tmp/err"
	check "threads and fork: session verifies ($(procs "$db") heaps)" 'grep -q "invariants hold" "$tmp/out"'

	LD_PRELOAD=$SHIM timeout 60 "$tmp/semantics" >"$tmp/out" 2>"$tmp/err"
	st=$?
	check "malloc family: glibc semantics ($(grep -c '^ok' "$tmp/out") checks)" \
		'[ $st -eq 0 ] && ! grep -q "^not ok" "$tmp/out"'
	timeout 60 "$HS" run --headless -o "$tmp/semantics.db" -- "$tmp/semantics" >"$tmp/out" 2>"$tmp/err"
	check "malloc family, recorded" '[ $? -eq 0 ] && ! grep -q "^not ok" "$tmp/out"'
	"$HS" verify "$tmp/semantics.db" >"$tmp/out" 2>"$tmp/err"
	check "malloc family: session verifies" 'grep -q "invariants hold" "$tmp/out"'

	LD_PRELOAD=$SHIM "$tmp/semantics" badfree >"$tmp/out" 2>"$tmp/err"
	st=$?
	check "bad free: reported, aborts ($st)" \
		'[ $st -eq 134 ] && grep -q "heapscope: bad free of 0x.*: no span holds it" "$tmp/err" && [ ! -s "$tmp/out" ]'
	LD_PRELOAD=$SHIM "$tmp/semantics" doublefree >"$tmp/out" 2>"$tmp/err"
	st=$?
	check "double free: reported with the span, aborts ($st)" \
		'[ $st -eq 134 ] && grep -q "double free" "$tmp/err" && grep -q "heapscope: span base=" "$tmp/err"'
	HEAPSCOPE_BADFREE=warn LD_PRELOAD=$SHIM "$tmp/semantics" badfree >"$tmp/out" 2>"$tmp/err"
	check "HEAPSCOPE_BADFREE=warn: reported and ignored" \
		'[ $? -eq 0 ] && grep -q survived "$tmp/out" && grep -q "bad free" "$tmp/err"'
else
	skip "C programs (cc)"
fi

# --- what heapscope run -- PROGRAM passes through -----------------------------------

echo "hosted: heapscope run -- PROGRAM"
"$HS" run --headless -o "$tmp/pass.db" -- sh -c 'exit 7' >"$tmp/out" 2>"$tmp/err"
check "exit status passes through (7)" '[ $? -eq 7 ]'
"$HS" run --headless -o "$tmp/pass.db" -- sh -c 'kill -TERM $$' >"$tmp/out" 2>"$tmp/err"
check "killed by a signal: 128 + 15" '[ $? -eq 143 ]'
printf 'line one\nline two\n' | "$HS" run --headless -o "$tmp/pass.db" -- cat >"$tmp/out" 2>"$tmp/err"
check "stdin and stdout pass through" '[ $? -eq 0 ] && [ "$(cat "$tmp/out")" = "line one
line two" ]'
"$HS" run --headless -o "$tmp/pass.db" -- sh -c 'echo to-stderr >&2' >"$tmp/out" 2>"$tmp/err"
check "stderr passes through; stdout only the program's" \
	'grep -qx to-stderr "$tmp/err" && [ ! -s "$tmp/out" ]'
"$HS" sessions "$tmp/pass.db" >"$tmp/out" 2>"$tmp/err"
check "the session's command is the command line" "grep -q \"sh -c 'echo to-stderr >&2'\" \"\$tmp/out\""
"$HS" run --headless -o "$tmp/pass.db" -- /nonexistent/program >"$tmp/out" 2>"$tmp/err"
check "a missing program: 127 and one line" '[ $? -eq 127 ] && grep -q "/nonexistent/program" "$tmp/err"'
for args in "run --" "run --workload churn -- true" "run --seed 3 -- true"; do
	# shellcheck disable=SC2086
	"$HS" $args >"$tmp/out" 2>"$tmp/err" </dev/null
	st=$?
	check "'$args' is a one-line error" '[ $st -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ ! -s "$tmp/out" ]'
done
HEAPSCOPE_PRELOAD=/nonexistent.so "$HS" run --headless -o "$tmp/pass.db" -- true >"$tmp/out" 2>"$tmp/err"
check "no shim: a one-line error" '[ $? -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ]'

# With the TUI (in tmux): the title names the command line, the program's
# output goes where it was sent, q after the end leaves the program's status.
if have tmux; then
	sock=hs-hosted-$$
	printf 'set -g status off\nset -g default-terminal screen\nset -g escape-time 0\n' >"$tmp/tmux.conf"
	T() { tmux -L "$sock" -f "$tmp/tmux.conf" "$@"; }
	T new-session -d -x 100 -y 30 "'$HS' run -o '$tmp/tui.db' -- sh -c 'echo from-the-program >$tmp/tui.out'; \
echo \$? >'$tmp/tui.status'"
	i=0
	while [ $i -lt 100 ] && ! T capture-pane -p >"$tmp/out" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
	while [ $i -lt 100 ] && ! grep -q "LIVE (finished)" "$tmp/out"; do
		sleep 0.1
		i=$((i + 1))
		T capture-pane -p >"$tmp/out" 2>/dev/null
	done
	: >"$tmp/err"
	check "TUI: live, finished, titled with the command line" \
		"grep -q 'LIVE (finished)' \"\$tmp/out\" && grep -q \"sh -c 'echo from-the-program\" \"\$tmp/out\""
	# Up to 30 s: after q the recorder commits and closes the store, whose
	# fsync a loaded disk can hold up. On failure, the screen as it is now.
	T send-keys q
	i=0
	while [ $i -lt 300 ] && [ ! -s "$tmp/tui.status" ]; do sleep 0.1; i=$((i + 1)); done
	T capture-pane -p >"$tmp/out" 2>/dev/null || : >"$tmp/out"
	printf 'after q: %d.%d s; status: %s; program output: %s\n' $((i / 10)) $((i % 10)) \
		"$(cat "$tmp/tui.status" 2>/dev/null)" "$(cat "$tmp/tui.out" 2>/dev/null)" >"$tmp/err"
	check "TUI: q quits, status 0, the program's output where it was sent" \
		'[ "$(cat "$tmp/tui.status" 2>/dev/null)" = 0 ] && grep -qx from-the-program "$tmp/tui.out"'
	"$HS" verify "$tmp/tui.db" >"$tmp/out" 2>"$tmp/err"
	check "TUI: session verifies" 'grep -q "invariants hold" "$tmp/out"'
else
	skip "TUI test (tmux)"
fi

[ "$failures" -eq 0 ] || { echo "hosted: $failures failed"; exit 1; }
