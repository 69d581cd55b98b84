/**
 * The last check of a replica's combined rounds, made against the model's own weights: every
 * replica holds the same weights and receives the same combined gradient, so every replica takes
 * the same decision without talking.
 *
 * - **A cap relative to the weights.** Before a round's step, each weight matrix's gradient part
 *   of the step, `learningRate × ‖Σ gradient‖ / rows`, is compared with the matrix's L2 norm; a
 *   round whose ratio exceeds `maxStepRatio` (or is not finite) is skipped, like a round whose
 *   numbers are not finite. Honest steps are far below the default (see `bench/step-ratio.ts`).
 * - **Rollback.** The parameters and their optimiser state are copied before the step; if any of
 *   them is not finite after it, the copy is restored and the round counts as skipped, so a replica
 *   never trains on, or saves, non-finite weights.
 */
import type { Backend, Tensor } from '../kernels/backend.js';
import type { RoundPosition } from './collective.js';

/**
 * Default largest ratio of a round's step to a weight matrix's norm: 10 times the largest honest
 * one measured with `bench/step-ratio.ts` (about 2, in the first pretraining rounds, from small
 * initial weights; later rounds move a matrix by a few percent of its norm or less).
 */
export const DEFAULT_MAX_STEP_RATIO = 20;

/** The trainable state of a model: its parameters and their optimiser state, as backend tensors. */
export interface RoundState {
  /** The backend the tensors live on. */
  readonly backend: Backend;
  /** The parameters, then their velocities in the same order. */
  stateTensors(): Tensor[];
  /** Each weight matrix with its gradient as last written (the cap is judged per matrix). */
  weightTensors(): { readonly weight: Tensor; readonly gradient: Tensor }[];
}

/** Whether a round was applied, or skipped and why. */
export type RoundOutcome = { readonly applied: true } | { readonly applied: false; readonly why: string };

/**
 * The checks of one training loop's rounds (one per epoch loop; it keeps the state copies). The
 * state is read once before the first round and once after each applied round, which is the state
 * before the next: between rounds of an epoch only the rounds change it.
 */
export class RoundSafety {
  private saved: Float32Array[];
  private after: Float32Array[];
  private savedIsCurrent = false;

  constructor(
    private readonly state: RoundState,
    private readonly maxStepRatio: number,
  ) {
    this.saved = this.buffers();
    this.after = this.buffers();
  }

  /**
   * Applies a combined round, whose gradient the caller has written to the model, through
   * `apply` when its step is within the cap, and rolls it back when it leaves any parameter
   * non-finite. `rows` is the round's combined row count.
   */
  applyRound(position: RoundPosition, rows: number, learningRate: number, apply: () => void): RoundOutcome {
    if (!this.savedIsCurrent) this.readState(this.saved);
    this.savedIsCurrent = true;
    const where = `round at epoch ${position.epoch} step ${position.step}`;
    const backend = this.state.backend;
    for (const [k, { weight, gradient }] of this.state.weightTensors().entries()) {
      const squares = backend.sumSquares(weight);
      const ratio = (learningRate * Math.sqrt(backend.sumSquares(gradient))) / rows / Math.max(Math.sqrt(squares), Number.MIN_VALUE);
      if (!(ratio <= this.maxStepRatio))
        return {
          applied: false,
          why: `the combined ${where} would change weight matrix ${k} by ${ratio.toExponential(2)} times its norm (at most ${this.maxStepRatio}): skipped`,
        };
    }
    apply();
    if (this.parametersFinite()) {
      this.readState(this.after);
      [this.saved, this.after] = [this.after, this.saved];
      return { applied: true };
    }
    this.writeState(this.saved);
    return { applied: false, why: `the combined ${where} left non-finite parameters: rolled back to the state before it` };
  }

  private buffers(): Float32Array[] {
    return this.state.stateTensors().map((t) => new Float32Array(t.rows * t.cols));
  }

  private readState(into: readonly Float32Array[]): void {
    this.state.stateTensors().forEach((t, i) => this.state.backend.read(t, into[i]!));
  }

  private writeState(from: readonly Float32Array[]): void {
    this.state.stateTensors().forEach((t, i) => this.state.backend.write(t, from[i]!));
  }

  /**
   * Whether every parameter (the first half of the state) is finite: the backend's sum of squares
   * of each is. A momentum step adds the new velocity to the parameters, so a non-finite velocity
   * shows there too.
   */
  private parametersFinite(): boolean {
    const tensors = this.state.stateTensors();
    return tensors.slice(0, tensors.length / 2).every((t) => Number.isFinite(this.state.backend.sumSquares(t)));
  }
}
