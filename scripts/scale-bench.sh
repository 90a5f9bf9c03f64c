#!/usr/bin/env bash
# The scale runs of one process on this machine, each in its own summary file under OUT (default: ./scale-bench):
#   default   - `cpns simulate` as the README runs it
#   2k        - 20 PN GWs, 2,000 PNEs, 10 groups
#   10k       - 100 PN GWs, 10,000 PNEs, 50 groups, group changes at 5 per second (delivery time under a load it keeps up with)
#   10k-storm - the same network with every phase's group changes started at once (throughput: wall time against the crypto floor)
# Usage: scripts/scale-bench.sh [OUT] [run ...]   e.g. scripts/scale-bench.sh out default 2k
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-scale-bench}"
shift || true
runs=("$@")
[ ${#runs[@]} -eq 0 ] && runs=(default 2k 10k 10k-storm)
mkdir -p "$out"
dotnet build Cpns.Host -c Release -nologo -v quiet > "$out/build.log" 2>&1 || { cat "$out/build.log" >&2; exit 1; }
cpns=(dotnet Cpns.Host/bin/Release/net10.0/cpns.dll simulate --db memory --quiet)
for run in "${runs[@]}"; do
  # A 10,000-PNE process keeps about 1 GB of heap full of references: server GC pauses it about half as long
  # (6.4 s against 3.5 s in one run), while the short runs start faster on cpns's own workstation GC.
  gc=0
  case "$run" in
    default)   args=() ;;
    2k)        args=(--gateways 20 --pnes 2000 --groups 10) ;;
    10k)       args=(--gateways 100 --pnes 10000 --groups 50 --change-rate 5); gc=1 ;;
    10k-storm) args=(--gateways 100 --pnes 10000 --groups 50 --change-rate 0); gc=1 ;;
    *) echo "scale-bench: unknown run '$run' (default, 2k, 10k, 10k-storm)" >&2; exit 2 ;;
  esac
  echo "== $run: simulate ${args[*]} (DOTNET_gcServer=$gc)"
  DOTNET_gcServer=$gc "${cpns[@]}" "${args[@]}" --json "$out/$run.json" \
    | grep -E 'holding the current|p50 / p99|first keys|rekeys|retries|phase Reg|wall time|floor|per PNE' || { echo "scale-bench: $run failed" >&2; exit 1; }
done
echo "summaries in $out/"
