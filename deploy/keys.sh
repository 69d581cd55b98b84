#!/bin/sh
# One-shot key setup for compose.yaml: a CURVE key pair per peer under $KEYS_DIR/<peer>/ (default
# /keys), and every other peer's public key under $KEYS_DIR/<peer>/peers/. Keeps existing keys.
set -eu
keys="${KEYS_DIR:-/keys}"
dbn="${DBN_NODE_CMD:-node /app/bin/dbn-node.js}"
for p in p1 p2 p3; do
  [ -f "$keys/$p/curve.key" ] || $dbn keygen --dir "$keys/$p" --quiet
done
for p in p1 p2 p3; do
  mkdir -p "$keys/$p/peers"
  for q in p1 p2 p3; do [ "$p" = "$q" ] || cp "$keys/$q/curve.pub" "$keys/$p/peers/$q.pub"; done
done
