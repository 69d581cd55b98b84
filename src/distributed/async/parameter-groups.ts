/**
 * The parameter groups of a {@link Dbn} as peer training addresses them (the `layer` field of a
 * delta): `0…L−1` the RBMs (`[W nv×nh, visible bias 1×nv, hidden bias 1×nh]`), `L` the
 * fine-tuned classifier (`[W₀, b₀, …, W_head, b_head]`, weights `nIn×nOut`, biases `1×nOut`),
 * known once the number of classes is.
 */
import type { ClassifierParameters, Dbn } from '../../dbn/dbn.js';
import type { HiddenActivation } from '../../dbn/network.js';
import type { TensorShape } from './delta-guard.js';

/** Reads and writes a {@link Dbn}'s parameters group by group; knows their shapes. */
export class ParameterGroups {
  /** The number of RBM layers, `L`; the classifier is group `L`. */
  readonly layerCount: number;
  /** The classifier's classes, once known (fine-tuning started, or a trained model). */
  classes: number | undefined;
  private readonly activations: HiddenActivation[];

  constructor(readonly dbn: Dbn) {
    this.layerCount = dbn.layers.length;
    this.activations = dbn.layers.map((l): HiddenActivation => (l.options.hidden === 'noisy-relu' ? 'relu' : 'sigmoid'));
    this.classes = dbn.classes;
  }

  /** Group `id`'s tensors (copies for an RBM; the classifier's current arrays). */
  read(id: number): Float32Array[] {
    if (id < this.layerCount) {
      const p = this.dbn.layers[id]!.getParameters();
      return [p.weights.data, p.visibleBias, p.hiddenBias];
    }
    return this.dbn.getClassifierParameters().layers.flatMap((l) => [l.weights.data, l.bias]);
  }

  /** {@link read} into `into` (the same arrays, no allocation) for an RBM layer; allocates for the classifier. */
  readInto(id: number, into: Float32Array[]): Float32Array[] {
    if (id >= this.layerCount) return this.read(id);
    this.dbn.layers[id]!.readParametersInto(into[0]!, into[1]!, into[2]!);
    return into;
  }

  /** Loads a group's tensors; `trusted`: their values were checked already (finite), only lengths are. */
  write(id: number, tensors: readonly Float32Array[], trusted = false): void {
    if (id < this.layerCount) {
      const rbm = this.dbn.layers[id]!;
      if (trusted) {
        rbm.writeParametersTrusted(tensors[0]!, tensors[1]!, tensors[2]!);
        return;
      }
      rbm.setParameters({
        weights: { rows: rbm.nVisible, cols: rbm.nHidden, data: tensors[0]! },
        visibleBias: tensors[1]!,
        hiddenBias: tensors[2]!,
      });
      return;
    }
    const shapes = this.shapesOf(id)!;
    const layers: ClassifierParameters['layers'][number][] = [];
    for (let i = 0; i < tensors.length; i += 2)
      layers.push({ weights: { rows: shapes[i]![0], cols: shapes[i]![1], data: tensors[i]! }, bias: tensors[i + 1]! });
    this.dbn.setClassifierParameters({ activations: this.activations, layers });
  }

  /** The shapes of group `id` here, or undefined (no such group, or the classifier before its classes are known). */
  shapesOf(id: number): TensorShape[] | undefined {
    if (!Number.isInteger(id) || id < 0) return undefined;
    if (id < this.layerCount) {
      const rbm = this.dbn.layers[id]!;
      return [
        [rbm.nVisible, rbm.nHidden],
        [1, rbm.nVisible],
        [1, rbm.nHidden],
      ];
    }
    if (id === this.layerCount && this.classes !== undefined) return this.classifierShapes(this.classes);
    return undefined;
  }

  /** The classifier's shapes for `classes` classes (undefined below 2). */
  classifierShapes(classes: number): TensorShape[] | undefined {
    if (!Number.isInteger(classes) || classes < 2) return undefined;
    const out: TensorShape[] = [];
    for (const rbm of this.dbn.layers) out.push([rbm.nVisible, rbm.nHidden], [1, rbm.nHidden]);
    out.push([this.dbn.nOutput, classes], [1, classes]);
    return out;
  }

  /** The first RBM not trained for all its epochs, or undefined. */
  firstIncompleteLayer(): number | undefined {
    const i = this.dbn.layers.findIndex((l) => l.epochsTrained < l.options.epochs);
    return i < 0 ? undefined : i;
  }

  /** The most elements of one tensor a delta or snapshot of this model may carry. */
  largestTensor(): number {
    let largest = 0;
    for (let id = 0; id <= this.layerCount; id++)
      for (const [rows, cols] of this.shapesOf(id) ?? []) largest = Math.max(largest, rows * cols);
    return Math.max(largest, this.classes === undefined ? 0 : this.dbn.nOutput * this.classes);
  }
}

/** Whether `tensors` have the element counts of `shapes`. */
export function sameShapes(tensors: readonly { readonly length: number }[], shapes: readonly TensorShape[]): boolean {
  return tensors.length === shapes.length && tensors.every((t, i) => t.length === shapes[i]![0] * shapes[i]![1]);
}
