/** The layers of a `Dbn` from its options: each layer's spec checked, its RBM built, seeds derived. */
import { InvalidOptionError } from '../errors.js';
import { Random } from '../random.js';
import { Rbm, type RbmOptions } from '../rbm/index.js';
import { validateOptions } from '../validate.js';
import { impliedVisible } from './io.js';
import { layerConstraints, type LayerOptions } from './options.js';

/** Validates layer `i`'s options; returns them with the visible units the layer below implies. */
export function checkLayer(layer: LayerOptions, i: number, below: LayerOptions | undefined): LayerOptions {
  const owner = `Dbn layer ${i}`;
  validateOptions(owner, layerConstraints, layer);
  if (layer.nHidden === undefined) throw new InvalidOptionError(`The 'nHidden' option of ${owner} is required.`);
  if (below !== undefined) {
    const implied = impliedVisible(below);
    if (layer.visible !== undefined && layer.visible !== implied) {
      throw new InvalidOptionError(
        `The 'visible' option of ${owner} must be '${implied}' (implied by the '${below.hidden ?? 'bernoulli'}' hidden units of layer ${i - 1}) or omitted. Got '${layer.visible}'.`,
      );
    }
    return { ...layer, visible: implied };
  }
  return layer;
}

export function makeLayer(options: RbmOptions, i: number): Rbm {
  try {
    return new Rbm(options);
  } catch (err) {
    if (err instanceof InvalidOptionError) throw new InvalidOptionError(err.message.replace(/ of Rbm\b/g, ` of Dbn layer ${i}`));
    throw err;
  }
}

/** `count` seeds derived deterministically from `seed`. */
export function deriveSeeds(seed: number, count: number): number[] {
  const random = new Random(seed);
  return Array.from({ length: count }, () => random.nextUint32());
}
