/**
 * In-memory collectives for bench/topologies.ts: N replicas of one `Dbn` in one process, each
 * given its own {@link Collective}, exchanging through one of three topologies. Every round
 * waits until all N replicas have entered it; at that moment every replica is paused inside
 * `allReduce`, so the combination below (and, for gossip, the mixing of the replicas' parameters)
 * runs on a consistent state before they are released. The bytes each replica would send in a
 * real exchange are counted per round; nothing goes over a socket.
 */
import { type Dbn, aggregateChunks } from '../../src/index.js';
import type { HostKernels } from '../../src/kernels/host/host-kernels.js';
import type { Collective, RoundPosition } from '../../src/rbm/collective.js';
import { deltaOverhead } from '../../src/distributed/async/state.js';
import { sparseFrame } from '../../src/sync/wire.js';

/** One replica's part of a round, as it entered `allReduce`. */
export interface RoundPart {
  readonly member: number;
  readonly tensors: readonly Float32Array[];
  readonly scalars: Float64Array;
}

/** What a topology does when every replica has entered a round: combine in place and count bytes into `sent[member]`. */
export interface Topology {
  readonly name: string;
  /** The peers each replica sends to among `members`: its neighbours (gossip), or all N − 1 others. */
  degree(members: number): number;
  combine(position: RoundPosition, parts: readonly RoundPart[], sent: Float64Array): void;
}

/** Called with every replica paused at a round, after the combination (e.g. to score the replicas). */
export type RoundObserver = (position: RoundPosition, parts: readonly RoundPart[]) => void;

/** Bytes of a scalars-only exchange to every other replica: `scalars.length` float64 values each. */
function scalarBytes(parts: readonly RoundPart[], sent: Float64Array): void {
  const n = parts.length;
  for (const p of parts) sent[p.member] = sent[p.member]! + (n - 1) * 8 * p.scalars.length;
}

/** Sums every part's scalars in member order into every part. */
function sumScalars(parts: readonly RoundPart[]): void {
  const total = new Float64Array(parts[0]!.scalars.length);
  for (const p of parts) for (let i = 0; i < total.length; i++) total[i] = total[i]! + p.scalars[i]!;
  for (const p of parts) p.scalars.set(total);
}

/** Sums tensor `t` of every part's `vectors` in member order (float32 partial sums, as the exchange's chunk owners do). */
function sumTensor(vectors: readonly (readonly Float32Array[])[], t: number): Float32Array {
  const out = new Float32Array(vectors[0]![t]!.length);
  aggregateChunks(
    vectors.map((v) => v[t]!),
    { rule: { kind: 'sum' } },
    out,
  );
  return out;
}

/**
 * a) The sharded all-reduce of the CLI's peer mode: the gradient (all tensors read as one vector)
 * is cut into N chunks; member k sends every other member's chunk to its owner (total − chunk_k
 * floats) and its own chunk's sum back to the N − 1 others ((N − 1) · chunk_k floats); the mean
 * over members is 2 (N − 1) / N × the gradient. Scalars go to every other member. Payload bytes
 * only (message headers left out).
 */
export function allReduceTopology(): Topology {
  return {
    name: 'allreduce',
    degree: (members) => members - 1,
    combine(_position, parts, sent) {
      const n = parts.length;
      scalarBytes(parts, sent);
      sumScalars(parts);
      const tensors = parts[0]!.tensors;
      if (tensors.length === 0) return;
      const total = tensors.reduce((a, t) => a + t.length, 0);
      for (const p of parts) {
        const chunk = Math.floor(((p.member + 1) * total) / n) - Math.floor((p.member * total) / n);
        sent[p.member] = sent[p.member]! + 4 * (total - chunk + (n - 1) * chunk);
      }
      const vectors = parts.map((p) => p.tensors);
      for (let t = 0; t < tensors.length; t++) {
        const sum = sumTensor(vectors, t);
        for (const p of parts) p.tensors[t]!.set(sum);
      }
    },
  };
}

/** The last minibatch round of every stage, from the schedule: stage → (epoch, step), filled as plan rounds are seen. */
export interface StageEnds {
  /** Epochs of `stage` (pretraining layers, then fine-tuning at index = layers). */
  epochsOf(stage: number): number;
  /** The minibatch size over all replicas: a plan round's rows / it, rounded up, is the epoch's rounds. */
  readonly batchSize: number;
}

/**
 * b) All-to-all with sparse deltas and error feedback: member k's contribution is its gradient
 * plus its residual; per tensor, the entries of largest magnitude (about `fraction` of them,
 * selected by the host kernels' `sparseSelect`, the async mode's sparse encoding) go to every
 * other member as a SPARSE delta encoded with the wire's `sparseFrame`; the rest becomes the
 * residual. Every member applies the same sum of the sparse parts (member order), so replicas
 * stay identical. With `flush`, the last minibatch round of a stage sends every contribution
 * whole as float32 (as the async mode's sparse encoding does), so no residual is lost when the
 * stage's parameters are frozen. Bytes per member per round: (N − 1) × (DELTA header
 * `deltaOverhead(tensors)` + the frames' length).
 */
export function sparseTopology(fraction: number, host: HostKernels, stages: StageEnds, flush: boolean): Topology {
  let residualStage = -1;
  let residuals: Float32Array[][] = [];
  const rounds = new Map<string, number>();
  const sample = new Float64Array(4096);
  let zeros = new Float32Array(0);
  let indices = new Uint32Array(0);
  let values = new Float32Array(0);
  return {
    name: `sparse-all-to-all f=${fraction}${flush ? '' : ' no flush'}`,
    degree: (members) => members - 1,
    combine(position, parts, sent) {
      const n = parts.length;
      scalarBytes(parts, sent);
      sumScalars(parts);
      const key = `${position.stage}/${position.epoch}`;
      if (position.step === -1) rounds.set(key, Math.max(1, Math.ceil(parts[0]!.scalars[0]! / stages.batchSize)));
      const tensors = parts[0]!.tensors;
      if (tensors.length === 0) return;
      if (position.stage !== residualStage) {
        residualStage = position.stage;
        residuals = parts.map((p) => p.tensors.map((t) => new Float32Array(t.length)));
      }
      const last = flush && position.epoch === stages.epochsOf(position.stage) - 1 && position.step === (rounds.get(key) ?? Number.NaN) - 1;
      const largest = Math.max(...tensors.map((t) => t.length));
      if (zeros.length < largest) {
        zeros = new Float32Array(largest);
        indices = new Uint32Array(largest);
        values = new Float32Array(largest);
      }
      const sparse = parts.map(() => tensors.map((t) => new Float32Array(t.length)));
      for (const p of parts) {
        let bytes = deltaOverhead(tensors.length);
        for (let t = 0; t < tensors.length; t++) {
          const contribution = residuals[p.member]![t]!;
          const grad = p.tensors[t]!;
          for (let i = 0; i < grad.length; i++) contribution[i] = contribution[i]! + grad[i]!;
          if (last) {
            sparse[p.member]![t]!.set(contribution);
            contribution.fill(0);
            bytes += 4 * contribution.length;
            continue;
          }
          const count = host.sparseSelect({
            cur: contribution,
            base: zeros.subarray(0, contribution.length),
            share: 1,
            fraction,
            indices: indices.subarray(0, contribution.length),
            values: values.subarray(0, contribution.length),
            sample,
          });
          bytes += sparseFrame(indices, values, count).length;
          const out = sparse[p.member]![t]!;
          for (let j = 0; j < count; j++) {
            const at = indices[j]!;
            out[at] = values[j]!;
            contribution[at] = 0;
          }
        }
        sent[p.member] = sent[p.member]! + (n - 1) * bytes;
      }
      for (let t = 0; t < tensors.length; t++) {
        const sum = sumTensor(sparse, t);
        for (const p of parts) p.tensors[t]!.set(sum);
      }
    },
  };
}

/** A gossip graph: each member's neighbours (undirected, no self loops). */
export interface GossipGraph {
  readonly name: string;
  neighbours(member: number, members: number): number[];
}

/** The ring: members k ± 1 (one neighbour when N = 2). */
export const ring: GossipGraph = {
  name: 'ring',
  neighbours: (k, n) => [...new Set([(k + 1) % n, (k + n - 1) % n])].filter((j) => j !== k),
};

/** The hypercube: members whose index differs in one bit (N a power of two; log2 N neighbours). */
export const hypercube: GossipGraph = {
  name: 'hypercube',
  neighbours: (k, n) => {
    const out: number[] = [];
    for (let bit = 1; bit < n; bit <<= 1) out.push(k ^ bit);
    return out;
  },
};

/** A replica's parameters of one stage as flat host arrays, and how to write them back (public API only). */
interface StageParameters {
  readonly arrays: Float32Array[];
  write(arrays: readonly Float32Array[]): void;
}

/** The parameters stage `stage` trains: layer `stage`'s RBM, or (stage = layers) the classifier. */
export function stageParameters(model: Dbn, stage: number): StageParameters {
  if (stage < model.layers.length) {
    const rbm = model.layers[stage]!;
    const p = rbm.getParameters();
    return {
      arrays: [p.weights.data, p.visibleBias, p.hiddenBias],
      write: ([weights, visibleBias, hiddenBias]) =>
        rbm.setParameters({ weights: { ...p.weights, data: weights! }, visibleBias: visibleBias!, hiddenBias: hiddenBias! }),
    };
  }
  const c = model.getClassifierParameters();
  return {
    arrays: c.layers.flatMap((l) => [l.weights.data, l.bias]),
    write: (arrays) =>
      model.setClassifierParameters({
        activations: c.activations,
        layers: c.layers.map((l, i) => ({ weights: { ...l.weights, data: arrays[2 * i]! }, bias: arrays[2 * i + 1]! })),
      }),
  };
}

/**
 * c) Gossip (D-PSGD, Lian et al. 2017) on `graph`: in every minibatch round each member averages
 * its parameters with its neighbours' (Metropolis–Hastings weights: 1 / (1 + max(deg i, deg j))
 * per neighbour, the rest on itself — uniform 1/(d + 1) on these regular graphs), then applies
 * its OWN gradient: the tensors are left as they are and the row count is not summed, so the
 * step is the learning rate times the mean gradient of its own share of the round (about 100/N
 * rows). The mean of the replicas then moves by the learning rate times the mean of the N local
 * means, the step the exact sum gives. Plan and summary rounds sum their scalars (the epoch's
 * plan and the early-stopping decision stay global). Bytes per member per minibatch round:
 * degree × the stage's parameters as float32 (+ the DELTA header).
 */
export function gossipTopology(graph: GossipGraph, models: readonly Dbn[]): Topology {
  const n = models.length;
  const neighbours = models.map((_, k) => graph.neighbours(k, n));
  const degree = Math.max(...neighbours.map((list) => list.length));
  return {
    name: `gossip ${graph.name}`,
    degree: () => degree,
    combine(position, parts, sent) {
      const tensors = parts[0]!.tensors;
      scalarBytes(parts, sent);
      if (tensors.length === 0) {
        sumScalars(parts);
        return;
      }
      const params = models.map((m) => stageParameters(m, position.stage));
      const mixed = params.map((p, k) => {
        const own = neighbours[k]!;
        let selfWeight = 1;
        const out = p.arrays.map((a) => new Float32Array(a.length));
        for (const j of own) {
          const weight = 1 / (1 + Math.max(own.length, neighbours[j]!.length));
          selfWeight -= weight;
          params[j]!.arrays.forEach((a, t) => addScaled(out[t]!, a, weight));
        }
        p.arrays.forEach((a, t) => addScaled(out[t]!, a, selfWeight));
        const floats = p.arrays.reduce((s, a) => s + a.length, 0);
        sent[k] = sent[k]! + own.length * (deltaOverhead(p.arrays.length) + 4 * floats);
        return out;
      });
      params.forEach((p, k) => p.write(mixed[k]!));
    },
  };
}

function addScaled(out: Float32Array, src: Float32Array, weight: number): void {
  for (let i = 0; i < out.length; i++) out[i] = out[i]! + weight * src[i]!;
}

/** N collectives over each other through `topology`; `sent[k]` accumulates member k's bytes. */
export function inMemoryGroup(members: number, topology: Topology, sent: Float64Array, observe?: RoundObserver): Collective[] {
  let pending: { key: string; position: RoundPosition; parts: (RoundPart & { resolve: () => void })[] } | undefined;
  return Array.from({ length: members }, (_, member) => ({
    allReduce(position: RoundPosition, tensors: readonly Float32Array[], scalars: Float64Array): Promise<void> {
      const key = `${position.stage}/${position.epoch}/${position.step}`;
      pending ??= { key, position, parts: [] };
      if (pending.key !== key) return Promise.reject(new Error(`member ${member} at ${key}, the group at ${pending.key}`));
      const round = pending;
      return new Promise<void>((resolve) => {
        round.parts.push({ member, tensors, scalars, resolve });
        if (round.parts.length < members) return;
        pending = undefined;
        round.parts.sort((a, b) => a.member - b.member);
        topology.combine(round.position, round.parts, sent);
        observe?.(round.position, round.parts);
        for (const p of round.parts) p.resolve();
      });
    },
  }));
}
