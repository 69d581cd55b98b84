/**
 * The feed-forward network a DBN is unrolled into for supervised fine-tuning (Hinton, Osindero &
 * Teh 2006; Hinton & Salakhutdinov 2006): dense sigmoid or ReLU hidden layers and a softmax
 * output layer, trained by minibatch backpropagation of the cross-entropy with momentum, L2
 * weight decay and (inverted) dropout (Srivastava et al. 2014). Every operation is a backend
 * kernel on buffers allocated once per batch size.
 *
 * Signs: the backend's {@link Backend.momentumStep} ascends along `grad`, so the buffers hold
 * the *negative* loss gradient, starting from `onehot − softmax` at the output.
 */
import type { Backend, Tensor } from '../kernels/backend.js';
import type { RandomSource } from '../random.js';
import type { RoundState } from '../rbm/round-safety.js';
import type { HostMatrix } from '../validate.js';

/** Activation of a hidden layer of the fine-tuned network. */
export type HiddenActivation = 'sigmoid' | 'relu';

/** Shape of one dense layer: `nIn × nOut` weights and an `nOut` bias. */
export interface DenseShape {
  readonly nIn: number;
  readonly nOut: number;
}

/** Host copies of one dense layer. */
export interface DenseParameters {
  /** `nIn × nOut`. */
  readonly weights: HostMatrix;
  /** Length `nOut`. */
  readonly bias: Float32Array;
}

/** Dropout rates of one training step (0 turns a mask off). */
export interface DropoutRates {
  readonly hidden: number;
  readonly input: number;
}

/** Hyper-parameters of one update. */
export interface UpdateOptions {
  readonly learningRate: number;
  readonly momentum: number;
  readonly weightDecay: number;
}

/** Loss summed over a batch, and how many rows its argmax got right. */
export interface BatchLoss {
  readonly lossSum: number;
  readonly correct: number;
}

/** Floor on probabilities inside the log of the cross-entropy (as scikit-learn's log_loss). */
export const PROBABILITY_FLOOR = 1e-15;

/** Buffers for one batch size. The dropout buffers are allocated the first time dropout is used. */
class NetWorkspace {
  readonly x: Tensor;
  readonly y: Tensor;
  /** Per layer (head last): activations after the nonlinearity, before dropout; the head's are probabilities. */
  readonly act: Tensor[];
  /** Per layer: the negative loss gradient w.r.t. the layer's output, turned in place into the one w.r.t. its input sum. */
  readonly delta: Tensor[];
  readonly hostY: Float32Array;
  readonly hostP: Float32Array;
  /** Per hidden layer: `act ⊙ mask / keep` (allocated with dropout). */
  drop: Tensor[] | undefined;
  mask: Tensor[] | undefined;
  keep: Tensor[] | undefined;
  inDrop: Tensor | undefined;
  inMask: Tensor | undefined;
  inKeep: Tensor | undefined;
  hostU: Float32Array | undefined;
  dropRate = -1;
  inRate = -1;

  constructor(
    private readonly b: Backend,
    readonly n: number,
    readonly shapes: readonly DenseShape[],
  ) {
    const nIn = shapes[0]!.nIn;
    const classes = shapes[shapes.length - 1]!.nOut;
    this.x = b.alloc(n, nIn);
    this.y = b.alloc(n, classes);
    this.act = shapes.map((s) => b.alloc(n, s.nOut));
    this.delta = shapes.map((s) => b.alloc(n, s.nOut));
    this.hostY = new Float32Array(n * classes);
    this.hostP = new Float32Array(n * classes);
  }

  /** Makes sure the masks exist and their keep-probability tensors hold `1 − rate`. */
  prepareDropout(rates: DropoutRates): void {
    const b = this.b;
    const hiddenShapes = this.shapes.slice(0, -1);
    const widest = Math.max(this.shapes[0]!.nIn, ...hiddenShapes.map((s) => s.nOut));
    this.hostU ??= new Float32Array(this.n * widest);
    if (rates.hidden > 0) {
      this.drop ??= hiddenShapes.map((s) => b.alloc(this.n, s.nOut));
      this.mask ??= hiddenShapes.map((s) => b.alloc(this.n, s.nOut));
      this.keep ??= hiddenShapes.map((s) => b.alloc(this.n, s.nOut));
      if (this.dropRate !== rates.hidden) for (const k of this.keep) b.fill(k, 1 - rates.hidden);
      this.dropRate = rates.hidden;
    }
    if (rates.input > 0) {
      const nIn = this.shapes[0]!.nIn;
      this.inDrop ??= b.alloc(this.n, nIn);
      this.inMask ??= b.alloc(this.n, nIn);
      this.inKeep ??= b.alloc(this.n, nIn);
      if (this.inRate !== rates.input) b.fill(this.inKeep, 1 - rates.input);
      this.inRate = rates.input;
    }
  }

  free(): void {
    const all = [this.x, this.y, ...this.act, ...this.delta, ...(this.drop ?? []), ...(this.mask ?? []), ...(this.keep ?? [])];
    for (const t of [this.inDrop, this.inMask, this.inKeep]) if (t !== undefined) all.push(t);
    for (const t of all) this.b.free(t);
  }
}

/** Rows processed at once by {@link FeedForwardNet.predictProba}. */
const INFERENCE_CHUNK = 1000;

/**
 * A dense network `nIn → hidden… → classes` with a softmax output. Parameters, velocities, a
 * copy of the best parameters (for early stopping) and gradients live on the backend.
 */
export class FeedForwardNet implements RoundState {
  /** Layer shapes, the softmax head last. */
  readonly shapes: readonly DenseShape[];
  private readonly W: Tensor[];
  private readonly bias: Tensor[];
  private readonly vW: Tensor[];
  private readonly vb: Tensor[];
  private readonly gW: Tensor[];
  private readonly gb: Tensor[];
  private bestW: Tensor[] | undefined;
  private bestB: Tensor[] | undefined;
  private readonly wss = new Map<number, NetWorkspace>();
  private disposed = false;

  constructor(
    readonly backend: Backend,
    readonly activations: readonly HiddenActivation[],
    shapes: readonly DenseShape[],
  ) {
    this.shapes = shapes;
    const b = backend;
    this.W = shapes.map((s) => b.alloc(s.nIn, s.nOut));
    this.bias = shapes.map((s) => b.alloc(1, s.nOut));
    this.vW = shapes.map((s) => b.alloc(s.nIn, s.nOut));
    this.vb = shapes.map((s) => b.alloc(1, s.nOut));
    this.gW = shapes.map((s) => b.alloc(s.nIn, s.nOut));
    this.gb = shapes.map((s) => b.alloc(1, s.nOut));
  }

  /** Number of classes (the head's width). */
  get classes(): number {
    return this.shapes[this.shapes.length - 1]!.nOut;
  }

  /** Sets layer `i`'s parameters (shapes already checked by the caller). */
  setLayer(i: number, weights: Float32Array, bias: Float32Array): void {
    this.backend.write(this.W[i]!, weights);
    this.backend.write(this.bias[i]!, bias);
  }

  /** Host copies of every layer's parameters, the head last. */
  getLayers(): DenseParameters[] {
    return this.shapes.map((s, i) => ({
      weights: { rows: s.nIn, cols: s.nOut, data: this.readT(this.W[i]!) },
      bias: this.readT(this.bias[i]!),
    }));
  }

  /** Host copies of the velocities (`weights`/`bias` fields hold the velocities of the weights/biases). */
  getVelocities(): DenseParameters[] {
    return this.shapes.map((s, i) => ({
      weights: { rows: s.nIn, cols: s.nOut, data: this.readT(this.vW[i]!) },
      bias: this.readT(this.vb[i]!),
    }));
  }

  setVelocities(i: number, weights: Float32Array, bias: Float32Array): void {
    this.backend.write(this.vW[i]!, weights);
    this.backend.write(this.vb[i]!, bias);
  }

  /** Host copies of the best parameters kept by {@link keepBest}, if any. */
  getBest(): DenseParameters[] | undefined {
    const bw = this.bestW;
    const bb = this.bestB;
    if (bw === undefined || bb === undefined) return undefined;
    return this.shapes.map((s, i) => ({ weights: { rows: s.nIn, cols: s.nOut, data: this.readT(bw[i]!) }, bias: this.readT(bb[i]!) }));
  }

  setBest(i: number, weights: Float32Array, bias: Float32Array): void {
    this.allocBest();
    this.backend.write(this.bestW![i]!, weights);
    this.backend.write(this.bestB![i]!, bias);
  }

  /** Copies the current parameters aside (the best so far). */
  keepBest(): void {
    this.allocBest();
    for (let i = 0; i < this.shapes.length; i++) {
      this.backend.copy(this.bestW![i]!, this.W[i]!);
      this.backend.copy(this.bestB![i]!, this.bias[i]!);
    }
  }

  /** Restores the parameters kept by {@link keepBest} (no-op when none were kept). */
  restoreBest(): void {
    if (this.bestW === undefined || this.bestB === undefined) return;
    for (let i = 0; i < this.shapes.length; i++) {
      this.backend.copy(this.W[i]!, this.bestW[i]!);
      this.backend.copy(this.bias[i]!, this.bestB[i]!);
    }
  }

  /** Forgets the best-parameter copies and zeroes the velocities (a finished run). */
  clearTrainingState(): void {
    for (const t of [...(this.bestW ?? []), ...(this.bestB ?? [])]) this.backend.free(t);
    this.bestW = undefined;
    this.bestB = undefined;
    for (const t of [...this.vW, ...this.vb]) this.backend.fill(t, 0);
  }

  /**
   * One minibatch update. `x` holds `n` rows (`n × nIn`, row-major), `labels` their classes.
   * Returns the batch's summed cross-entropy (computed before the update, with dropout applied).
   */
  trainBatch(x: Float32Array, labels: ArrayLike<number>, n: number, upd: UpdateOptions, rates: DropoutRates, rng: RandomSource): BatchLoss {
    const loss = this.gradientSum(x, labels, n, rates, rng);
    this.applyGradient(upd, 1 / n);
    return loss;
  }

  /**
   * The negative gradient of the cross-entropy summed over the `n` rows of `x` (with dropout
   * masks drawn from `rng`) into the gradient tensors, for {@link applyGradient}. Returns the
   * batch's summed cross-entropy and correct count.
   */
  gradientSum(x: Float32Array, labels: ArrayLike<number>, n: number, rates: DropoutRates, rng: RandomSource): BatchLoss {
    const ws = this.workspace(n);
    this.load(ws, x, labels, n);
    if (rates.hidden > 0 || rates.input > 0) ws.prepareDropout(rates);
    this.forward(ws, rates, rng);
    const loss = this.lossOf(ws, labels, n);
    this.backward(ws, rates);
    return loss;
  }

  /** The momentum update from the gradient tensors times `gradScale` (`1 / rows` of the sum). */
  applyGradient(upd: UpdateOptions, gradScale: number): void {
    const b = this.backend;
    for (let i = 0; i < this.shapes.length; i++) {
      b.momentumStep(this.W[i]!, this.vW[i]!, this.gW[i]!, { ...upd, gradScale });
      b.momentumStep(this.bias[i]!, this.vb[i]!, this.gb[i]!, { ...upd, weightDecay: 0, gradScale });
    }
  }

  /** The round-safety state ({@link RoundState}): per layer weights then bias, then their velocities in the same order. */
  stateTensors(): Tensor[] {
    const params = this.shapes.flatMap((_, i) => [this.W[i]!, this.bias[i]!]);
    const velocities = this.shapes.flatMap((_, i) => [this.vW[i]!, this.vb[i]!]);
    return [...params, ...velocities];
  }

  weightTensors(): { weight: Tensor; gradient: Tensor }[] {
    return this.W.map((weight, i) => ({ weight, gradient: this.gW[i]! }));
  }

  /** Host buffers shaped like the gradient tensors: per layer, weights then bias. */
  gradientBuffers(): Float32Array[] {
    return this.shapes.flatMap((s) => [new Float32Array(s.nIn * s.nOut), new Float32Array(s.nOut)]);
  }

  /** Copies the gradient tensors into `into` (as from {@link gradientBuffers}). */
  readGradient(into: readonly Float32Array[]): void {
    for (let i = 0; i < this.shapes.length; i++) {
      this.backend.read(this.gW[i]!, into[2 * i]!);
      this.backend.read(this.gb[i]!, into[2 * i + 1]!);
    }
  }

  /** Sets the gradient tensors from `from` (as from {@link gradientBuffers}). */
  writeGradient(from: readonly Float32Array[]): void {
    for (let i = 0; i < this.shapes.length; i++) {
      this.backend.write(this.gW[i]!, from[2 * i]!);
      this.backend.write(this.gb[i]!, from[2 * i + 1]!);
    }
  }

  /**
   * The gradient of the mean cross-entropy over `n` rows w.r.t. every parameter (no dropout, no
   * decay), as host copies, with the mean loss. For tests and diagnostics.
   */
  gradients(x: Float32Array, labels: ArrayLike<number>, n: number): { loss: number; layers: DenseParameters[] } {
    const ws = this.workspace(n);
    this.load(ws, x, labels, n);
    const none = { hidden: 0, input: 0 };
    this.forward(ws, none, undefined);
    const { lossSum } = this.lossOf(ws, labels, n);
    this.backward(ws, none);
    const layers = this.shapes.map((s, i) => {
      const w = this.readT(this.gW[i]!);
      const grad = this.readT(this.gb[i]!);
      for (let k = 0; k < w.length; k++) w[k] = -w[k]! / n;
      for (let k = 0; k < grad.length; k++) grad[k] = -grad[k]! / n;
      return { weights: { rows: s.nIn, cols: s.nOut, data: w }, bias: grad };
    });
    return { loss: lossSum / n, layers };
  }

  /** Class probabilities of every row of `x` (`rows × nIn` → `rows × classes`). */
  predictProba(x: HostMatrix): HostMatrix {
    const classes = this.classes;
    const out = new Float32Array(x.rows * classes);
    const temp = new Map<number, NetWorkspace>();
    const none = { hidden: 0, input: 0 };
    try {
      for (let start = 0; start < x.rows; start += INFERENCE_CHUNK) {
        const n = Math.min(INFERENCE_CHUNK, x.rows - start);
        let ws = temp.get(n);
        if (ws === undefined) {
          ws = new NetWorkspace(this.backend, n, this.shapes);
          temp.set(n, ws);
        }
        this.backend.write(ws.x, x.data.subarray(start * x.cols, (start + n) * x.cols));
        this.forward(ws, none, undefined);
        this.backend.read(ws.act[ws.act.length - 1]!, out.subarray(start * classes, (start + n) * classes));
      }
    } finally {
      for (const ws of temp.values()) ws.free();
    }
    return { rows: x.rows, cols: classes, data: out };
  }

  /** Frees the per-batch-size training buffers (they are rebuilt on demand). */
  releaseWorkspaces(): void {
    for (const ws of this.wss.values()) ws.free();
    this.wss.clear();
  }

  /** Frees every tensor. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.releaseWorkspaces();
    for (const t of [...this.W, ...this.bias, ...this.vW, ...this.vb, ...this.gW, ...this.gb, ...(this.bestW ?? []), ...(this.bestB ?? [])])
      this.backend.free(t);
  }

  // ------------------------------------------------------------------ internals

  private load(ws: NetWorkspace, x: Float32Array, labels: ArrayLike<number>, n: number): void {
    const classes = this.classes;
    const y = ws.hostY;
    y.fill(0);
    for (let r = 0; r < n; r++) y[r * classes + labels[r]!] = 1;
    this.backend.write(ws.x, x);
    this.backend.write(ws.y, y);
  }

  /** Forward pass; with dropout, the masks are drawn from `rng` (input mask first, then layer by layer). */
  private forward(ws: NetWorkspace, rates: DropoutRates, rng: RandomSource | undefined): void {
    const b = this.backend;
    const last = this.shapes.length - 1;
    let input = ws.x;
    if (rates.input > 0 && rng !== undefined) {
      this.drawMask(ws.inMask!, ws.inKeep!, rates.input, ws, rng);
      b.mul(ws.inDrop!, ws.x, ws.inMask!);
      input = ws.inDrop!;
    }
    for (let i = 0; i <= last; i++) {
      const a = ws.act[i]!;
      b.gemm(a, input, this.W[i]!);
      if (i === last) {
        b.addRow(a, a, this.bias[i]!);
        b.softmaxRows(a, a);
      } else if (this.activations[i] === 'relu') {
        b.addRow(a, a, this.bias[i]!);
        b.relu(a, a);
      } else {
        b.addRowSigmoid(a, a, this.bias[i]!);
      }
      input = a;
      if (i < last && rates.hidden > 0 && rng !== undefined) {
        this.drawMask(ws.mask![i]!, ws.keep![i]!, rates.hidden, ws, rng);
        b.mul(ws.drop![i]!, a, ws.mask![i]!);
        input = ws.drop![i]!;
      }
    }
  }

  /** `mask = (u < keep) / keep` with fresh uniforms (inverted dropout: inference needs no rescaling). */
  private drawMask(mask: Tensor, keep: Tensor, rate: number, ws: NetWorkspace, rng: RandomSource): void {
    const b = this.backend;
    const u = ws.hostU!.subarray(0, mask.rows * mask.cols);
    rng.fillUniform(u);
    b.write(mask, u);
    b.bernoulli(mask, keep, mask);
    b.scale(mask, mask, 1 / (1 - rate));
  }

  /** Negative gradients of the summed cross-entropy into `gW`/`gb` (uses the masks of the last forward pass). */
  private backward(ws: NetWorkspace, rates: DropoutRates): void {
    const b = this.backend;
    const last = this.shapes.length - 1;
    b.sub(ws.delta[last]!, ws.y, ws.act[last]!);
    for (let i = last; i >= 0; i--) {
      const d = ws.delta[i]!;
      if (i < last) {
        if (rates.hidden > 0) b.mul(d, d, ws.mask![i]!);
        if (this.activations[i] === 'relu') b.reluBackward(d, d, ws.act[i]!);
        else b.sigmoidBackward(d, d, ws.act[i]!);
      }
      const input = i === 0 ? (rates.input > 0 ? ws.inDrop! : ws.x) : rates.hidden > 0 ? ws.drop![i - 1]! : ws.act[i - 1]!;
      b.gemm(this.gW[i]!, input, d, { transA: true });
      b.colSum(this.gb[i]!, d, 1, 0);
      if (i > 0) b.gemm(ws.delta[i - 1]!, d, this.W[i]!, { transB: true });
    }
  }

  private lossOf(ws: NetWorkspace, labels: ArrayLike<number>, n: number): BatchLoss {
    const classes = this.classes;
    const p = ws.hostP.subarray(0, n * classes);
    this.backend.read(ws.act[ws.act.length - 1]!, p);
    let lossSum = 0;
    let correct = 0;
    for (let r = 0; r < n; r++) {
      const y = labels[r]!;
      lossSum -= Math.log(Math.max(p[r * classes + y]!, PROBABILITY_FLOOR));
      if (argmax(p, r * classes, classes) === y) correct++;
    }
    return { lossSum, correct };
  }

  private workspace(n: number): NetWorkspace {
    let ws = this.wss.get(n);
    if (ws === undefined) {
      ws = new NetWorkspace(this.backend, n, this.shapes);
      this.wss.set(n, ws);
    }
    return ws;
  }

  private allocBest(): void {
    this.bestW ??= this.shapes.map((s) => this.backend.alloc(s.nIn, s.nOut));
    this.bestB ??= this.shapes.map((s) => this.backend.alloc(1, s.nOut));
  }

  private readT(t: Tensor): Float32Array {
    const out = new Float32Array(t.rows * t.cols);
    this.backend.read(t, out);
    return out;
  }
}

/** Index of the largest of `a[off .. off+n)` (the first on ties). */
export function argmax(a: ArrayLike<number>, off: number, n: number): number {
  let best = 0;
  let bv = a[off]!;
  for (let j = 1; j < n; j++) {
    const v = a[off + j]!;
    if (v > bv) {
      bv = v;
      best = j;
    }
  }
  return best;
}
