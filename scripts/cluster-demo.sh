#!/usr/bin/env bash
# The distributed CPNS Server on one machine: 1 server node and 3 gateway nodes as separate `cpns` processes on
# 127.0.0.1, service groups driven through the key flows, then the gateway node that manages a group's keys is
# killed (SIGKILL) and the group's keys are shown still being delivered, managed from another node.
#
#   scripts/cluster-demo.sh                 # shared SQLite journal in a temp folder (all nodes on this machine)
#   CPNS_PG="Host=127.0.0.1;Port=5432;Database=cpns;Username=cpns;Password=..." scripts/cluster-demo.sh
#                                           # a shared PostgreSQL journal instead
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="$(mktemp -d -t cpns-cluster-demo-XXXXXX)"
server_port="${CPNS_SERVER_PORT:-4053}"
seed="akka.ssl.tcp://cpns@127.0.0.1:${server_port}"
pids=()

echo "== building cpns (Release)"
dotnet build "$root/Cpns.Host/Cpns.Host.csproj" -c Release -v quiet -nologo >/dev/null
cpns=(dotnet "$root/Cpns.Host/bin/Release/net10.0/cpns.dll")

if [[ -n "${CPNS_PG:-}" ]]; then storage=(--db postgres --connection "$CPNS_PG" --data "$data"); else storage=(--db sqlite --data "$data"); fi

stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT

status_json() { "${cpns[@]}" status --node "$seed" --data "$data" --json --timeout 10 2>/dev/null || true; }

# Reads `cpns status --json` on stdin and prints one field: manager node of a group, its epoch, or its pending PN GWs.
field() {
  python3 -c '
import json, sys
what, group = sys.argv[1], sys.argv[2]
try: s = json.load(sys.stdin)
except Exception: sys.exit(0)
g = next((g for g in s["groups"] if g["groupId"] == group), None)
if g is None: sys.exit(0)
print({"manager": g["managerNode"] or "", "epoch": g["epoch"], "pending": " ".join(g["pending"])}[what])' "$@"
}

echo "== state in $data"
echo "== starting the server node on $seed"
"${cpns[@]}" server --port "$server_port" --demo-groups 3 --demo-members 4 --demo-interval 1 "${storage[@]}" >"$data/server.log" 2>&1 &
pids+=($!)
until grep -q "is up" "$data/server.log"; do sleep 0.5; done

for name in a b c; do
  "${cpns[@]}" provision --name "$name" --pnes 3 --data "$data" | sed 's/^/== /'
done

declare -A node_pid=() node_address=()
port=$server_port
for name in a b c; do
  port=$((port + 1))
  "${cpns[@]}" gateway --seed "$seed" --port "$port" --name "$name" --pnes 3 "${storage[@]}" >"$data/gateway-$name.log" 2>&1 &
  pids+=($!); node_pid[$name]=$!; node_address[$name]="akka.ssl.tcp://cpns@127.0.0.1:$port"
  echo "== starting gateway node $name on ${node_address[$name]}"
done
for name in a b c; do until grep -q "is up" "$data/gateway-$name.log"; do sleep 0.5; done; done

echo "== waiting for the groups to form and their keys to be delivered"
for _ in $(seq 1 60); do
  manager="$(status_json | field manager demo-1)"
  [[ -n "$manager" ]] && break
  sleep 1
done
"${cpns[@]}" status --node "$seed" --data "$data"

victim=""
for name in a b c; do [[ "${node_address[$name]}" == "$manager" ]] && victim=$name; done
[[ -n "$victim" ]] || { echo "demo-1 has no group key manager on a gateway node; see $data/*.log"; exit 1; }
epoch_before="$(status_json | field epoch demo-1)"
echo "== killing gateway node $victim (${node_address[$victim]}), which manages demo-1's keys (epoch $epoch_before)"
killed_at=$(date +%s.%N)
kill -KILL "${node_pid[$victim]}"

for _ in $(seq 1 120); do
  json="$(status_json)"
  manager="$(field manager demo-1 <<<"$json")"; epoch="$(field epoch demo-1 <<<"$json")"; pending="$(field pending demo-1 <<<"$json")"
  if [[ -n "$manager" && "$manager" != "${node_address[$victim]}" && -n "$epoch" && "$epoch" -gt $((epoch_before + 1)) ]] &&
     ! grep -qv "^$victim-" <<<"$(tr ' ' '\n' <<<"$pending" | sed '/^$/d')"; then
    printf '== demo-1 is at epoch %s, managed on %s, delivered to every PN GW still up: %.1f s after the kill\n' \
      "$epoch" "$manager" "$(echo "$(date +%s.%N) - $killed_at" | bc)"
    break
  fi
  sleep 1
done
"${cpns[@]}" status --node "$seed" --data "$data"

echo "== keys installed on the surviving gateway nodes since the kill (last lines):"
for name in a b c; do [[ $name == "$victim" ]] || tail -n 3 "$data/gateway-$name.log"; done
echo "== stopping the cluster (SIGTERM: each node leaves cleanly)"
