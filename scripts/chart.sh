#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Render the bench's per-path summary as an SVG: a 2x2 grid of bar charts
# (agent steps/s, host CPU us per step, syscalls per step, tool-call p50/p99
# latency), one bar per path, each bar labelled with its value.
#
#   scripts/chart.sh DATFILE SVGFILE
#
# DATFILE is a whitespace table whose first line is a comment header naming
# the columns, in any order (extra columns are ignored), then one row per path;
# "-" marks a missing value (drawn as "n/a"):
#   # path steps_per_s cpu_us_per_step syscalls_per_step ctx_switches_per_step copied_bytes_per_step tool_p50_us tool_p99_us
#   tcp   41234.5 23.1 61 3.2 90112 180 950
#   uring 65321.0 14.8  9 1.1 90112 120 610
# CHART_TITLE (environment) replaces the overall title.
# Needs gnuplot (Debian: gnuplot-nox). Exit 0 on success, 1 on bad input,
# 2 when gnuplot is missing or fails.
set -euo pipefail

prog=chart.sh
die() { echo "$prog: $1" >&2; exit "${2:-1}"; }

[ $# -eq 2 ] || { echo "usage: $prog DATFILE SVGFILE" >&2; exit 1; }
dat=$1
svg=$2

command -v gnuplot >/dev/null 2>&1 ||
	die "gnuplot not found; install it: sudo apt-get install gnuplot-nox (or make deps)" 2
[ -r "$dat" ] || die "$dat: cannot read the data file"

header=$(head -n 1 "$dat")
case $header in
'#'*) ;;
*) die "$dat: the first line must be the '# path steps_per_s ...' column header" ;;
esac

# Column numbers by name, so the table may gain columns or reorder them.
col() {
	local n
	n=$(awk -v want="$1" 'NR == 1 {
		sub(/^#[ \t]*/, "")
		for (i = 1; i <= NF; i++) if ($i == want) { print i; exit }
	}' "$dat")
	[ -n "$n" ] || die "$dat: no column '$1' in the header"
	echo "$n"
}
c_path=$(col path)
c_steps=$(col steps_per_s)
c_cpu=$(col cpu_us_per_step)
c_sys=$(col syscalls_per_step)
c_p50=$(col tool_p50_us)
c_p99=$(col tool_p99_us)

rows=$(awk '!/^[ \t]*(#|$)/' "$dat" | wc -l)
[ "$rows" -gt 0 ] || die "$dat: no data rows (one row per path expected)"
# Every row needs every column the charts read; a short row would shift values.
need=$(printf '%s\n' "$c_path" "$c_steps" "$c_cpu" "$c_sys" "$c_p50" "$c_p99" | sort -n | tail -n 1)
bad=$(awk -v need="$need" '!/^[ \t]*(#|$)/ && NF < need { print NR; exit }' "$dat")
[ -z "$bad" ] || die "$dat:$bad: row has fewer than $need columns"

title=${CHART_TITLE:-"wirepath: one agent step, per data path"}
# Width grows with the number of paths so that labels stay readable.
width=$((900 + (rows > 4 ? (rows - 4) * 120 : 0)))

# gnuplot string literals: single quotes, a quote doubled.
gq() { printf "'%s'" "${1//\'/\'\'}"; }

{ : >"$svg"; } 2>/dev/null || die "$svg: cannot write the output file"
# A script file, not stdin: gnuplot stops at the first error in a file.
script=$(mktemp "${TMPDIR:-/tmp}/chart.XXXXXX") || die "cannot create a temporary file"
trap 'rm -f "$script"' EXIT

cat >"$script" <<EOF
set terminal svg size $width,720 dynamic font 'Helvetica,12' background rgb 'white'
set output $(gq "$svg")
set termoption noenhanced
set datafile missing '-'

# One colour per path, the same in every panel.
set linetype 1 lc rgb '#4472c4'
set linetype 2 lc rgb '#ed7d31'
set linetype 3 lc rgb '#70ad47'
set linetype 4 lc rgb '#a5a5a5'
set linetype 5 lc rgb '#ffc000'
set linetype 6 lc rgb '#5b9bd5'
set linetype 7 lc rgb '#9e480e'
set linetype 8 lc rgb '#264478'
set linetype cycle 8

# Labels: whole numbers as such, else 3-4 significant digits.
fmt(v) = (v != v) ? '' : ((abs(v) >= 1000 || v == floor(v)) ? sprintf('%.0f', v) : \
	 (abs(v) >= 10 ? sprintf('%.1f', v) : sprintf('%.2f', v)))

set style fill solid 0.85 border rgb '#404040'
set boxwidth 0.6
set grid ytics lc rgb '#d0d0d0'
set border 3
set xtics nomirror scale 0
set ytics nomirror
set xrange [-0.6:$rows - 0.4]
set yrange [0:*]
# Room above the tallest bar for its label.
set offsets 0, 0, graph 0.15, 0
set key off
D = $(gq "$dat")

set multiplot layout 2,2 title $(gq "$title") font 'Helvetica,15'

set title 'Agent steps per second (higher is better)'
set ylabel 'steps/s'
plot D using 0:$c_steps:(\$0 + 1):xtic($c_path) with boxes lc variable, \
     '' using 0:$c_steps:(fmt(\$$c_steps)) with labels offset 0,0.8, \
     '' using 0:(0):(valid($c_steps) ? '' : 'n/a') with labels offset 0,0.8

set title 'Host CPU per step (lower is better)'
set ylabel 'CPU us/step'
plot D using 0:$c_cpu:(\$0 + 1):xtic($c_path) with boxes lc variable, \
     '' using 0:$c_cpu:(fmt(\$$c_cpu)) with labels offset 0,0.8, \
     '' using 0:(0):(valid($c_cpu) ? '' : 'n/a') with labels offset 0,0.8

set title 'Syscalls per step (lower is better)'
set ylabel 'syscalls/step'
plot D using 0:$c_sys:(\$0 + 1):xtic($c_path) with boxes lc variable, \
     '' using 0:$c_sys:(fmt(\$$c_sys)) with labels offset 0,0.8, \
     '' using 0:(0):(valid($c_sys) ? '' : 'n/a') with labels offset 0,0.8

set title 'Tool-call latency, p50 and p99 (lower is better)'
set ylabel 'latency, us'
set boxwidth 0.36
set offsets 0, 0, graph 0.25, 0
set key top left horizontal reverse Left samplen 2
plot D using (\$0 - 0.19):$c_p50:(\$0 + 1):xtic($c_path) with boxes lc variable title 'p50', \
     '' using (\$0 + 0.19):$c_p99:(\$0 + 1) with boxes lc variable fs transparent solid 0.35 title 'p99', \
     '' using (\$0 - 0.19):$c_p50:(fmt(\$$c_p50)) with labels offset 0,0.8 notitle, \
     '' using (\$0 + 0.19):$c_p99:(fmt(\$$c_p99)) with labels offset 0,0.8 notitle, \
     '' using (\$0 - 0.19):(0):(valid($c_p50) ? '' : 'n/a') with labels offset 0,0.8 notitle, \
     '' using (\$0 + 0.19):(0):(valid($c_p99) ? '' : 'n/a') with labels offset 0,0.8 notitle

unset multiplot
EOF
gnuplot "$script" || die "gnuplot failed to render $svg" 2
[ -s "$svg" ] || die "gnuplot wrote nothing to $svg" 2
