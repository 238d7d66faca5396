#!/usr/bin/env bash
# What a device call carries: the working tree the device tool copies (tracked files and untracked files git
# does not ignore) plus the carried folders (.gpu, dist, .test-build). Prints each part and fails above 60 MiB
# (the tool refuses 64 MiB). Usage: travel-size.sh [limit MiB]
set -euo pipefail
cd "$(dirname "$0")/../.."
limit_mib="${1:-60}"
sizes() { awk '{s += $1} END {print s + 0}'; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s -- 2>/dev/null | sizes)
total=$tree
printf '%-12s %7s MiB\n' tree "$(mib "$tree")"
for d in .gpu dist .test-build; do
  bytes=0
  [ -e "$d" ] && bytes=$(find "$d" -type f -printf '%s\n' | sizes)
  total=$((total + bytes))
  printf '%-12s %7s MiB\n' "$d" "$(mib "$bytes")"
done
printf '%-12s %7s MiB (limit %s MiB)\n' travels "$(mib "$total")" "$limit_mib"
if [ "$total" -gt $((limit_mib * 1048576)) ]; then
  echo "travel-size: over ${limit_mib} MiB: the device call would be refused" >&2
  exit 1
fi
