#!/bin/sh
# Starts peer $1 of $2 (p1 … pN) of compose.yaml: binds on every interface, is dialled as
# tcp://pI:5555, names the other peers with their public keys, trains on shard I/N and serves
# /metrics on 9100. Further arguments go to `dbn-node train`.
# LOOPBACK_PORT_BASE=B runs the same peers as processes on one machine instead (bench/deploy-as-processes.sh):
# peer I on tcp://127.0.0.1:B+I, its /metrics on B+100+I; KEYS_DIR, OUT_DIR, DBN_NODE_CMD as in keys.sh.
set -eu
i="$1"; n="$2"; shift 2
keys="${KEYS_DIR:-/keys}"; out="${OUT_DIR:-/out}"; dbn="${DBN_NODE_CMD:-node /app/bin/dbn-node.js}"
addr() { if [ -n "${LOOPBACK_PORT_BASE:-}" ]; then echo "127.0.0.1:$((LOOPBACK_PORT_BASE + $1))"; else echo "p$1:5555"; fi; }
if [ -n "${LOOPBACK_PORT_BASE:-}" ]; then
  set -- --bind "tcp://$(addr "$i")" --metrics-port "$((LOOPBACK_PORT_BASE + 100 + i))" "$@"
else
  set -- --bind tcp://0.0.0.0:5555 --advertise "tcp://$(addr "$i")" --metrics-port 9100 --metrics-host 0.0.0.0 "$@"
fi
peers=""
for j in $(seq 1 "$n"); do
  [ "$j" = "$i" ] && continue
  peers="${peers:+$peers,}tcp://$(addr "$j")#$(cat "$keys/p$j/curve.pub")"
done
mkdir -p "$out/p$i"
exec $dbn train --keys "$keys/p$i" --peers "$peers" --shard "$i/$n" --name "p$i" \
  --metrics "$out/p$i/metrics.jsonl" --out "$out/p$i" "$@"
