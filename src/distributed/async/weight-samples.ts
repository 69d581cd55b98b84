/**
 * The weight samples this peer puts in its heartbeat fingerprint: a few dozen weights of every
 * parameter group at fixed indices (see peer-fingerprint.ts), refreshed at publication points.
 */
import { sampleIndices, samplesPerGroup, takeSamples } from './peer-fingerprint.js';

export class WeightSamples {
  private readonly blocks: Float64Array[];
  private classifierBlock: Float64Array | undefined;
  private readonly perGroup: number;

  constructor(private readonly layerCount: number) {
    this.perGroup = samplesPerGroup(layerCount + 1);
    this.blocks = Array.from({ length: layerCount }, () => new Float64Array(this.perGroup));
  }

  /** Samples group `id`'s weights (its first tensor; every weight tensor for the classifier). */
  refresh(id: number, tensors: readonly Float32Array[]): void {
    if (id < this.layerCount) {
      const block = this.blocks[id]!;
      takeSamples(tensors[0]!, sampleIndices(tensors[0]!.length, block.length), block, 0);
      return;
    }
    const block = (this.classifierBlock ??= new Float64Array(this.perGroup));
    const weights = tensors.filter((_, i) => i % 2 === 0);
    const each = Math.ceil(this.perGroup / weights.length);
    let j = 0;
    for (const w of weights) {
      const idx = sampleIndices(w.length, each);
      for (let k = 0; k < idx.length && j < this.perGroup; k++) block[j++] = w[idx[k]!]!;
    }
  }

  /** The blocks a fingerprint at `stage` carries (the classifier's from fine-tuning on, once sampled). */
  forStage(stage: number): Float64Array[] {
    return stage >= this.layerCount && this.classifierBlock !== undefined ? [...this.blocks, this.classifierBlock] : this.blocks;
  }
}
