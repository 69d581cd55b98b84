#!/usr/bin/env bash
# The deployment of deploy/compose.yaml without containers (no Docker engine runs on the
# development machines): deploy/keys.sh makes the three peers' CURVE keys, deploy/peer.sh starts
# the three peers as processes on loopback, and `dbn-node status` reads each peer's /status while
# they train. Prints the three status tables and each peer's exit code; exits non-zero on failure.
#   bash bench/deploy-as-processes.sh [extra train flags]   (default: a short run on 1500 digits)
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
base=$((20000 + RANDOM % 20000))
export KEYS_DIR="$work/keys" OUT_DIR="$work/out" LOOPBACK_PORT_BASE="$base"
if [ -f dist/cli/main.js ]; then export DBN_NODE_CMD="node bin/dbn-node.js"; else export DBN_NODE_CMD="env DBN_NODE_DEV=1 node --import tsx bin/dbn-node.js"; fi
args=("$@"); [ ${#args[@]} -gt 0 ] || args=(--limit 1500 --layers 100 --epochs 20 --finetune 3 --associative 0 --no-pictures)
sh deploy/keys.sh
pids=()
for i in 1 2 3; do sh deploy/peer.sh "$i" 3 "${args[@]}" >"$work/p$i.log" 2>&1 & pids+=($!); done
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
for i in 1 2 3; do
  for _ in $(seq 1 600); do grep -q '^layer 0 epoch 1:' "$work/p$i.log" && break; sleep 0.1; done
done
rc=0
spids=()
for i in 1 2 3; do $DBN_NODE_CMD status --url "http://127.0.0.1:$((base + 100 + i))" >"$work/status$i.txt" 2>&1 & spids+=($!); done
for p in "${spids[@]}"; do wait "$p" || rc=1; done
for i in 1 2 3; do
  echo "\$ dbn-node status --url http://127.0.0.1:$((base + 100 + i))"
  cat "$work/status$i.txt"
  grep -q "^p$i (" "$work/status$i.txt" || rc=1
  echo
done
for i in 1 2 3; do
  if wait "${pids[$((i - 1))]}"; then echo "p$i: exit 0"; else code=$?; echo "p$i: exit $code"; tail -n 20 "$work/p$i.log"; rc=1; fi
done
trap - EXIT
# The models' tensors (their metadata names each peer's own shard) must be the same bits.
node --import tsx -e '
import { readModelFile } from "./src/rbm/model-file.ts";
const [a, ...others] = process.argv.slice(1).map((f) => readModelFile(f).tensors);
const same = others.every((b) => b.size === a.size && [...a].every(([k, t]) => Buffer.compare(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength), Buffer.from(b.get(k).data.buffer, b.get(k).data.byteOffset, b.get(k).data.byteLength)) === 0));
console.log(same ? "models: the same tensors, bit for bit" : "models: tensors differ");
process.exitCode = same ? 0 : 1;
' "$work/out/p1/model.dbn" "$work/out/p2/model.dbn" "$work/out/p3/model.dbn" || rc=1
exit $rc
