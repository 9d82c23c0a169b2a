#!/bin/sh
# scripts/bench-hosted.sh [ROUNDS] — real programs on every allocator (issue 8).
#
# The programs of tests/hosted/ on larger inputs (python3, perl, sqlite3, gcc,
# git, tclsh, gawk, xz), each under:
#   glibc        the C library's malloc
#   jemalloc     LD_PRELOAD=libjemalloc.so.2          (Debian libjemalloc2)
#   mimalloc     LD_PRELOAD=libmimalloc.so.2          (libmimalloc2.0)
#   tcmalloc     LD_PRELOAD=libtcmalloc.so.4          (libgoogle-perftools4)
#   hs           LD_PRELOAD=libheapscope-preload.so   (untraced)
#   hs-heap      heapscope run --headless --events heap -- ...    (recorded)
#   hs-objects   heapscope run --headless --events objects -- ... (recorded)
# interleaved: each round runs every program once under every allocator, so
# that drift of the machine touches all alike. Wall time and peak RSS are the
# program's own, measured by /usr/bin/time inside the allocator's environment
# (the largest process of the program's tree; the recorder is not counted, but
# a producer waiting for room in the ring is). Reported per program: median and
# minimum time, median peak RSS, and their ratios to glibc; then the median of
# the ratios over the programs.
#
# $HEAPSCOPE and $SHIM as for tests/hosted/run.sh (make bench-hosted sets them).
set -u
HS=${HEAPSCOPE:?set HEAPSCOPE to the heapscope binary}
SHIM=${SHIM:?set SHIM to libheapscope-preload.so}
rounds=${1:-5}
case $HS in /*) ;; *) HS=$(pwd)/$HS ;; esac
case $SHIM in /*) ;; *) SHIM=$(pwd)/$SHIM ;; esac
lib=/usr/lib/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "bench-hosted: needs GNU time ($TIME; Debian package time)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
PATH=/usr/bin:/bin:$PATH
export PATH LC_ALL=C TZ=UTC PYTHONHASHSEED=0 HOME="$tmp/home" GIT_CONFIG_NOSYSTEM=1 \
	GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.org GIT_AUTHOR_DATE=2024-01-01T00:00:00Z \
	GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.org GIT_COMMITTER_DATE=2024-01-01T00:00:00Z
unset LD_PRELOAD HEAPSCOPE_TRACE_FD HEAPSCOPE_TRACE_PATH
mkdir -p "$HOME"

allocs="glibc"
for a in jemalloc:libjemalloc.so.2 mimalloc:libmimalloc.so.2 tcmalloc:libtcmalloc.so.4; do
	if [ -e "$lib/${a#*:}" ]; then allocs="$allocs ${a%%:*}"; else echo "bench-hosted: no $lib/${a#*:}" >&2; fi
done
allocs="$allocs hs hs-heap hs-objects"

# --- inputs and programs: one script per program, run in a fresh directory ---------------

in=$tmp/in
mkdir -p "$in" "$tmp/cases"
seq 1 400000 | awk '{ print "w" ($1 * 7919 % 50000), $1 % 977, "heapscope hosting benchmark line", $1 }' >"$in/text"
head -c 4000000 "$in/text" >"$in/xzdata"
{
	echo '#include <stdio.h>'
	echo '#include <stdlib.h>'
	echo '#include <string.h>'
	for i in $(seq 1 400); do
		cat <<EOF
struct s$i { int a[$((i % 7 + 1))]; char name[16]; double v; };
static int cmp$i(const void *x, const void *y) { return ((const struct s$i *)x)->a[0] - ((const struct s$i *)y)->a[0]; }
int f$i(int n)
{
	struct s$i *v = calloc((size_t)n, sizeof *v);
	for (int k = 0; k < n; k++) { v[k].a[0] = (k * $i) % 97; snprintf(v[k].name, sizeof v[k].name, "n%d", k); v[k].v = k * 1.5; }
	qsort(v, (size_t)n, sizeof *v, cmp$i);
	int r = v[n / 2].a[0] + (int)strlen(v[0].name);
	for (int k = 1; k < n; k++) r += (v[k].a[0] > v[k - 1].a[0]) ? k % 3 : 0;
	free(v);
	return r;
}
EOF
	done
	echo 'int main(void) { long t = 0;'
	for i in $(seq 1 400); do echo "t += f$i(100);"; done
	printf '%s\n' 'printf("%ld\n", t); return 0; }'
} >"$in/big.c"

cat >"$tmp/cases/python3" <<'EOF'
python3 - <<'PY'
import collections, json, re
lines = open(IN + "/text").read().split("\n")
c = collections.Counter(l.split(" ")[0] for l in lines if l)
d = {}
for i, l in enumerate(lines):
    d.setdefault(l[:4], []).append(l[::-1])
    if i % 3 == 0:
        d[l[:4]] = d[l[:4]][-20:]
s = json.dumps(sorted(c.items())[:20000])
print(len(c), len(d), len(s), len(re.findall(r"w\d+7 ", "\n".join(lines[:200000]))))
PY
EOF
sed -i "s|IN + |\"$in\" + |" "$tmp/cases/python3"

cat >"$tmp/cases/perl" <<EOF
perl -e 'my %h; my @keep; open(F, "<", "$in/text") or die; while (<F>) { my @w = split; \$h{\$w[0]} .= \$w[1]; push @keep, scalar reverse \$_; shift @keep if @keep > 50000 } my @k = sort { length(\$h{\$b}) <=> length(\$h{\$a}) || \$a cmp \$b } keys %h; print scalar(@k), " \$k[0]\n"'
EOF

cat >"$tmp/cases/sqlite3" <<'EOF'
sqlite3 db.sqlite <<'SQL'
PRAGMA journal_mode = OFF;
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v INTEGER, s TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)
INSERT INTO t(k, v, s) SELECT 'key' || (i * 37 % 20000), i, printf('%08d-%s', i, hex(randomblob(8))) FROM n;
CREATE INDEX tk ON t(k);
SELECT count(*), count(DISTINCT k) FROM t;
SELECT k, count(*), max(v) FROM t GROUP BY k ORDER BY 3 DESC LIMIT 3;
SELECT count(*) FROM t a JOIN t b ON a.k = b.k WHERE a.v < 2000;
SQL
EOF

cat >"$tmp/cases/gcc" <<EOF
gcc -O2 -o big "$in/big.c" && ./big
EOF

cat >"$tmp/cases/git" <<EOF
git init -q repo && cd repo && head -200000 "$in/text" | split -a 3 -l 400 - part && git add . && git commit -q -m one &&
sed -i 's/heapscope/HEAPSCOPE/' parta* && git commit -q -am two && git log --oneline | wc -l &&
git diff --stat HEAD~1 | tail -1 && git gc -q && git count-objects -v | head -1
EOF

cat >"$tmp/cases/tclsh" <<EOF
tclsh <<'TCL'
set f [open "$in/text"]
set d [dict create]
set keep {}
while {[gets \$f line] >= 0} {
	set w [lindex [split \$line " "] 0]
	dict append d \$w [string index \$line end]
	lappend keep [string reverse \$line]
	if {[llength \$keep] > 20000} { set keep [lrange \$keep 10000 end] }
}
puts "[dict size \$d] [llength [lsort -unique [dict keys \$d]]]"
TCL
EOF

cat >"$tmp/cases/gawk" <<EOF
gawk '{ c[\$1]++; s[\$2] = s[\$2] substr(\$1, 2, 2); if (length(s[\$2]) > 400) s[\$2] = "" }
END { n = asorti(c, k); m = 0; for (x in s) m += length(s[x]); print n, k[1], m }' "$in/text" "$in/text"
EOF

cat >"$tmp/cases/xz" <<EOF
xz -T1 -6 -c "$in/xzdata" >d.xz && xz -dc d.xz | cksum
EOF

programs="python3 perl sqlite3 gcc git tclsh gawk xz"
present=""
for p in $programs; do
	if command -v "$p" >/dev/null 2>&1; then present="$present $p"; else echo "SKIP $p (not installed)"; fi
done

# run_one PROGRAM ALLOC ROUND: one measured run; appends "PROGRAM ALLOC secs kib" to $tmp/all.
run_one() {
	d=$tmp/run
	rm -rf "$d" "$tmp/db" "$tmp/db-wal" "$tmp/db-shm"
	mkdir -p "$d"
	m="$TIME -f %e\ %M -o $tmp/time sh $tmp/cases/$1"
	case $2 in
	glibc) (cd "$d" && eval "$m") ;;
	jemalloc) (cd "$d" && eval "LD_PRELOAD=$lib/libjemalloc.so.2 $m") ;;
	mimalloc) (cd "$d" && eval "LD_PRELOAD=$lib/libmimalloc.so.2 $m") ;;
	tcmalloc) (cd "$d" && eval "LD_PRELOAD=$lib/libtcmalloc.so.4 $m") ;;
	hs) (cd "$d" && eval "LD_PRELOAD=$SHIM $m") ;;
	hs-heap) (cd "$d" && eval "\"$HS\" run --headless --events heap -o $tmp/db -- $m") ;;
	hs-objects) (cd "$d" && eval "\"$HS\" run --headless --events objects -o $tmp/db -- $m") ;;
	esac >"$tmp/out.$1.$2" 2>"$tmp/err"
	st=$?
	if [ $st -ne 0 ] || [ ! -s "$tmp/time" ]; then
		echo "bench-hosted: $1 under $2 failed (status $st)" >&2
		sed 's/^/  | /' "$tmp/err" | tail -5 >&2
		return
	fi
	if [ "$2" != glibc ] && ! cmp -s "$tmp/out.$1.glibc" "$tmp/out.$1.$2"; then
		echo "bench-hosted: $1 under $2: output differs from glibc's" >&2
	fi
	echo "$1 $2 $(tail -1 "$tmp/time")" >>"$tmp/all"
}

echo "== bench-hosted: $rounds rounds, interleaved; $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ)"
echo "   programs:$present"
echo "   allocators: $allocs"
: >"$tmp/all"
for r in $(seq "$rounds"); do
	printf '   round %s/%s\n' "$r" "$rounds" >&2
	for p in $present; do
		for a in $allocs; do
			run_one "$p" "$a"
		done
	done
done

# --- the table ---------------------------------------------------------------------------

awk -v allocs="$allocs" -v programs="$present" '
function sort(a, n,    i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
function median(a, n) { sort(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
{ k = $1 SUBSEP $2; n[k]++; t[k, n[k]] = $3; m[k, n[k]] = $4 }
END {
	na = split(allocs, A, " "); np = split(programs, P, " ")
	for (i = 1; i <= np; i++) for (j = 1; j <= na; j++) {
		k = P[i] SUBSEP A[j]; c = n[k]
		if (c == 0) continue
		for (x = 1; x <= c; x++) { tt[x] = t[k, x]; mm[x] = m[k, x] }
		med[k] = median(tt, c); sort(tt, c); mn[k] = tt[1]; rss[k] = median(mm, c)
	}
	printf "\nwall time, s: median (min); peak RSS, MiB: median\n"
	printf "%-9s", "program"; for (j = 1; j <= na; j++) printf " %17s", A[j]; printf "\n"
	for (i = 1; i <= np; i++) {
		printf "%-9s", P[i]
		for (j = 1; j <= na; j++) { k = P[i] SUBSEP A[j]; if (n[k]) printf " %7.2f (%5.2f) %3d", med[k], mn[k], rss[k] / 1024 + 0.5; else printf " %17s", "-" }
		printf "\n"
	}
	printf "\nratios to glibc: time of medians / time of minima / peak RSS\n"
	printf "%-9s", "program"; for (j = 2; j <= na; j++) printf " %17s", A[j]; printf "\n"
	for (i = 1; i <= np; i++) {
		g = P[i] SUBSEP "glibc"; printf "%-9s", P[i]
		for (j = 2; j <= na; j++) {
			k = P[i] SUBSEP A[j]
			if (!n[k] || !n[g] || med[g] == 0 || mn[g] == 0) { printf " %17s", "-"; continue }
			rt[j, i] = med[k] / med[g]; rm[j, i] = mn[k] / mn[g]; rr[j, i] = rss[k] / rss[g]; have[j, i] = 1
			printf " %5.2f %5.2f %5.2f", rt[j, i], rm[j, i], rr[j, i]
		}
		printf "\n"
	}
	printf "%-9s", "median"
	for (j = 2; j <= na; j++) {
		c = 0; for (i = 1; i <= np; i++) if (have[j, i]) { c++; a1[c] = rt[j, i]; a2[c] = rm[j, i]; a3[c] = rr[j, i] }
		if (c) printf " %5.2f %5.2f %5.2f", median(a1, c), median(a2, c), median(a3, c); else printf " %17s", "-"
	}
	printf "\n"
}' "$tmp/all"
