/**
 * One malicious peer out of five (not part of `npm test`): final test accuracy on the bundled
 * digits of a clean run, of runs attacked with plausible poison under the plain sum, and of the
 * same attacks under a Byzantine-robust rule.
 *
 * The five replicas run in one process over an in-memory collective that does what the ZeroMQ
 * `PeerGroup` exchange computes: every round's tensors, read as one vector, are cut into one chunk
 * per member, and each chunk is combined with `aggregateChunks` (the function the chunk owner
 * runs) over the members' parts in member order; scalars are summed. No sockets: the numbers are
 * those of the real protocol, the wall times are not.
 *
 * The attacker (member 4) computes its honest gradient on its own rows, then sends instead:
 * - `flip`: its gradient negated (typical norm);
 * - `flip4`: its gradient negated and scaled 4× (4× the typical norm: still inside the
 *   contribution guard's 20× bound, so the guard alone does not drop it);
 * - `random4`: a random direction scaled to 4× the median honest norm.
 * Plan and summary rounds stay honest (the guard bounds those).
 *
 * Model: the CLI's defaults (784-500-500, 5 pretraining epochs per layer, fine-tuning 30 epochs
 * with patience 8, minibatch 100 over all replicas), bundled digits 8,000 train / 2,000 test, each
 * replica on 1/5 of the rows.
 *
 * Rules: sum, trimmed-mean, median, mean-around-median, multi-krum (trim 1), each optionally with
 * `+clipC` (`--clip-norm C`, e.g. `mean-around-median+clip2`). `--seed S` seeds the models (every
 * replica starts from the same weights and shuffles its own shard) and the random attack; seed 1
 * is what the bench always ran.
 *
 * Usage: tsx bench/byzantine.ts [--runs clean:sum,flip4:sum,flip4:trimmed-mean,...] [--pretrain 5] [--finetune 30] [--seed 1]
 * Prints one JSON line per run, then a summary line.
 */
import { parseArgs } from 'node:util';
import { loadData } from '../src/cli/data-options.js';
import { type AggregationOptions, Dbn, aggregateChunks, defaultBackend } from '../src/index.js';
import type { Collective, RoundPosition } from '../src/rbm/collective.js';
import { Random } from '../src/random.js';
import type { HostMatrix } from '../src/validate.js';
import { machine } from './machine.js';

const { values } = parseArgs({
  options: {
    runs: {
      type: 'string',
      default: 'clean:sum,flip:sum,flip:trimmed-mean,flip4:sum,flip4:trimmed-mean,random4:sum,random4:trimmed-mean,flip4:median',
    },
    pretrain: { type: 'string', default: '5' },
    finetune: { type: 'string', default: '30' },
    seed: { type: 'string', default: '1' },
  },
});
const MEMBERS = 5;
const ATTACKER = MEMBERS - 1;

type Attack = 'clean' | 'flip' | 'flip4' | 'random4';

function ruleOf(name: string): AggregationOptions {
  if (name === 'sum') return { rule: { kind: 'sum' } };
  if (name === 'median') return { rule: { kind: 'median' } };
  if (name === 'trimmed-mean') return { rule: { kind: 'trimmed-mean', trim: 1 } };
  if (name === 'mean-around-median') return { rule: { kind: 'mean-around-median', trim: 1 } };
  if (name === 'multi-krum') return { rule: { kind: 'multi-krum', trim: 1 } };
  const clipped = /^(.+)\+clip([0-9.]+)$/.exec(name);
  if (clipped !== null) return { ...ruleOf(clipped[1]!), clipNorm: Number(clipped[2]) };
  throw new Error(`unknown rule ${name}`);
}

function flatten(tensors: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(tensors.reduce((s, t) => s + t.length, 0));
  let at = 0;
  for (const t of tensors) {
    out.set(t, at);
    at += t.length;
  }
  return out;
}

function norm(a: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

/** The attacker's vector for a round, from the honest members' vectors and its own honest one. */
function poison(attack: Attack, own: Float32Array, honest: readonly Float32Array[], rng: Random): Float32Array {
  if (attack === 'flip') return own.map((v) => -v);
  if (attack === 'flip4') return own.map((v) => -4 * v);
  const typical = honest.map(norm).sort((a, b) => a - b)[honest.length >> 1]!;
  const dir = rng.fillUniform(new Float32Array(own.length)).map((u) => 2 * u - 1);
  const scale = (4 * typical) / Math.max(norm(dir), 1e-30);
  return dir.map((v) => v * scale);
}

/** `MEMBERS` collectives over each other: chunked aggregation as the exchange does, member 4 attacking minibatch rounds. */
function byzantineGroup(aggregation: AggregationOptions, attack: Attack): Collective[] {
  const rng = new Random(98 + seed);
  let pending:
    | { key: string; parts: { tensors: readonly Float32Array[]; scalars: Float64Array; resolve: () => void; member: number }[] }
    | undefined;
  const finish = (parts: NonNullable<typeof pending>['parts']): void => {
    parts.sort((a, b) => a.member - b.member);
    const scalars = new Float64Array(parts[0]!.scalars.length);
    for (const p of parts) for (let i = 0; i < scalars.length; i++) scalars[i] = scalars[i]! + p.scalars[i]!;
    if (parts[0]!.tensors.length > 0) {
      const flats = parts.map((p) => flatten(p.tensors));
      if (attack !== 'clean') flats[ATTACKER] = poison(attack, flats[ATTACKER]!, flats.slice(0, ATTACKER), rng);
      const total = flats[0]!.length;
      const result = new Float32Array(total);
      for (let k = 0; k < MEMBERS; k++) {
        const start = Math.floor((k * total) / MEMBERS);
        const end = Math.floor(((k + 1) * total) / MEMBERS);
        aggregateChunks(
          flats.map((f) => f.subarray(start, end)),
          aggregation,
          result.subarray(start, end),
        );
      }
      for (const p of parts) {
        let at = 0;
        for (const t of p.tensors) {
          t.set(result.subarray(at, at + t.length));
          at += t.length;
        }
      }
    }
    for (const p of parts) p.scalars.set(scalars);
    for (const p of parts) p.resolve();
  };
  return Array.from({ length: MEMBERS }, (_, member) => ({
    roundRefused(): void {
      if (member === 0) refusedRounds++;
    },
    allReduce(position: RoundPosition, tensors: readonly Float32Array[], scalars: Float64Array): Promise<void> {
      const key = `${position.stage}/${position.epoch}/${position.step}`;
      pending ??= { key, parts: [] };
      if (pending.key !== key) return Promise.reject(new Error(`member ${member} at ${key}, the group at ${pending.key}`));
      const p = pending;
      return new Promise<void>((resolve) => {
        p.parts.push({ tensors, scalars, resolve, member });
        if (p.parts.length === MEMBERS) {
          pending = undefined;
          finish(p.parts);
        }
      });
    },
  }));
}

function shard(x: HostMatrix, y: Int32Array, k: number): { x: HostMatrix; y: Int32Array } {
  const idx = Array.from({ length: x.rows }, (_, i) => i).filter((i) => i % MEMBERS === k);
  const data = new Float32Array(idx.length * x.cols);
  idx.forEach((r, j) => data.set(x.data.subarray(r * x.cols, (r + 1) * x.cols), j * x.cols));
  return { x: { rows: idx.length, cols: x.cols, data }, y: Int32Array.from(idx.map((i) => y[i]!)) };
}

const data = loadData({ data: 'digits', 'test-fraction': 0.2, scale: 'auto' } as never, 1, false);
const { backend, reason } = defaultBackend();
const trainY = data.train.y as Int32Array;
const pretrainEpochs = Number(values.pretrain);
const finetuneEpochs = Number(values.finetune);
const seed = Number(values.seed);
const results: Record<string, unknown>[] = [];
/** Rounds the replicas skipped or rolled back (`Collective.roundRefused`, counted on member 0). */
let refusedRounds = 0;
for (const spec of values.runs.split(',')) {
  const [attack, ruleName] = spec.split(':') as [Attack, string];
  const group = byzantineGroup(ruleOf(ruleName), attack);
  refusedRounds = 0;
  const t0 = performance.now();
  const layer = { nHidden: 500, epochs: pretrainEpochs, batchSize: 100 };
  const models = group.map(() => new Dbn({ nVisible: 784, layers: [layer, layer], backend, seed }));
  await Promise.all(
    models.map(async (m, k) => {
      const part = shard(data.train.x, trainY, k);
      await m.pretrain(part.x, { collective: group[k]! });
      await m.fineTune(part.x, part.y, { epochs: finetuneEpochs, patience: 8, classes: 10, collective: group[k]! });
    }),
  );
  const accuracy = models[0]!.evaluate(data.test!.x, data.test!.y as Int32Array).accuracy;
  const row = { attack, rule: ruleName, seed, accuracy, refusedRounds, seconds: Number(((performance.now() - t0) / 1000).toFixed(1)) };
  results.push(row);
  console.log(JSON.stringify(row));
  for (const m of models) m.dispose();
}
console.log(
  JSON.stringify({
    bench: 'byzantine',
    members: MEMBERS,
    attacker: ATTACKER,
    pretrainEpochs,
    finetuneEpochs,
    seed,
    backend: reason,
    machine: machine(),
    results,
  }),
);
