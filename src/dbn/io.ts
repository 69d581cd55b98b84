/**
 * A `Dbn`'s layers in a model file of kind `'dbn'`: tensors `layer<i>.weights|visibleBias|hiddenBias`
 * (and training state), one header entry per layer, the options with every layer's spec.
 */
import { ModelFileError, type ModelFileErrorCode } from '../errors.js';
import type { Backend } from '../kernels/backend.js';
import { type ModelFile, type NamedTensor, Rbm } from '../rbm/index.js';
import type { LayerOptions } from './options.js';

/** The `kind` of a DBN model file. */
export const FILE_KIND = 'dbn';

/** Layer options as JSON can hold them (a schedule function is recorded as 'constant', as Rbm does). */
export function serializableLayer(layer: LayerOptions): Record<string, unknown> {
  const out: Record<string, unknown> = { ...layer };
  if (typeof layer.learningRateSchedule === 'function') out['learningRateSchedule'] = 'constant';
  return out;
}

/** Every layer's header, and its tensors named `layer<i>.<name>`. */
export function layerTensors(
  layers: readonly Rbm[],
  trainingState: boolean,
): { headers: Record<string, unknown>[]; tensors: NamedTensor[] } {
  const tensors: NamedTensor[] = [];
  const headers = layers.map((rbm, i) => {
    const { header, tensors: own } = rbm.toTensors(trainingState);
    for (const tensor of own) tensors.push({ ...tensor, name: `layer${i}.${tensor.name}` });
    return header;
  });
  return { headers, tensors };
}

/** Visible units of the layer above one with these options. */
export function impliedVisible(below: LayerOptions | undefined): 'bernoulli' | 'gaussian' {
  return below?.hidden === 'noisy-relu' ? 'gaussian' : 'bernoulli';
}

/** The tensors whose names start with `prefix`, with the prefix removed. */
export function subTensors(all: ReadonlyMap<string, NamedTensor>, prefix: string): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const [name, tensor] of all) {
    if (name.startsWith(prefix)) out.set(name.slice(prefix.length), { ...tensor, name: name.slice(prefix.length) });
  }
  return out;
}

/** The options a DBN model file's header must hold (checked for the layer list). */
export interface SavedOptions {
  readonly nVisible?: unknown;
  readonly seed?: unknown;
  readonly layers: unknown[];
  readonly associative?: { classes?: unknown };
}

/** The header's options, with a list of layers and one header entry per layer. */
export function savedOptions(modelFile: ModelFile, file: string): { options: SavedOptions; headers: unknown[] } {
  const header = modelFile.header;
  const options = header['options'] as SavedOptions | undefined;
  if (typeof options !== 'object' || options === null || !Array.isArray(options.layers)) {
    throw new ModelFileError(file, 'EHEADER', 'header has no "options" object with a "layers" list.');
  }
  const headers = header['layers'];
  if (!Array.isArray(headers) || headers.length !== options.layers.length) {
    throw new ModelFileError(file, 'EHEADER', `header must hold one "layers" entry per layer (${options.layers.length}).`);
  }
  return { options, headers };
}

/**
 * The RBMs of a model file onto `backend`, each checked against the layer specs of the options
 * (sizes and visible units). Pushes each into `into` as it is built, so the caller can dispose of
 * them if a later one fails.
 */
export function readLayers(
  modelFile: ModelFile,
  file: string,
  backend: Backend,
  saved: { options: SavedOptions; headers: unknown[] },
  into: Rbm[],
): void {
  const specs = saved.options.layers as LayerOptions[];
  let nVisible = saved.options.nVisible;
  for (const [i, layerHeader] of saved.headers.entries()) {
    if (typeof layerHeader !== 'object' || layerHeader === null)
      throw new ModelFileError(file, 'EHEADER', `layer ${i}'s header is not an object.`);
    const rbm = layerFromFile(layerHeader as Record<string, unknown>, subTensors(modelFile.tensors, `layer${i}.`), file, backend, i);
    into.push(rbm);
    const spec = specs[i];
    const visible = i === 0 ? (spec?.visible ?? 'bernoulli') : impliedVisible(specs[i - 1]);
    if (rbm.nVisible !== nVisible || rbm.nHidden !== spec?.nHidden || rbm.options.visible !== visible) {
      throw new ModelFileError(
        file,
        'EHEADER',
        `layer ${i} is a ${rbm.nVisible}x${rbm.nHidden} '${rbm.options.visible}'-visible RBM, but the DBN options call for ${String(nVisible)}x${String(spec?.nHidden)} '${visible}'-visible.`,
      );
    }
    nVisible = rbm.nHidden;
  }
}

/** `Rbm.fromTensors`, with its errors naming the layer. */
function layerFromFile(
  header: Record<string, unknown>,
  tensors: ReadonlyMap<string, NamedTensor>,
  file: string,
  backend: Backend,
  i: number,
): Rbm {
  try {
    return Rbm.fromTensors(header, tensors, file, backend);
  } catch (err) {
    if (!(err instanceof ModelFileError)) throw err;
    const detail = err.message.startsWith(`${file}: `) ? err.message.slice(file.length + 2) : err.message;
    throw new ModelFileError(file, err.code as ModelFileErrorCode, `layer ${i}: ${detail}`, { cause: err });
  }
}
