/**
 * Validation of a model file's JSON header (see `model-file.ts` and `docs/model-format.md`).
 *
 * Every field the loaders read is checked for its type and range here, before any tensor is
 * decoded, and the counts in the header are checked against the shapes of the tensors the file
 * lists. Headers of kinds other than `'rbm'` and `'dbn'` get the generic checks only. A failure is
 * a {@link ModelFileError}: `'EHEADER'` for a wrong field, `'ESIZE'` for a tensor of the wrong
 * shape.
 */
import { ModelFileError } from '../errors.js';
import { MAX_CLASSES } from '../data/limits.js';

/** The shape of a tensor as listed in a header. */
export interface TensorShape {
  readonly rows: number;
  readonly cols: number;
}

/** Largest number of units in one layer a model file may declare. */
export const MAX_UNITS = 1 << 24;
/** Largest epoch count a model file may declare (far above any real run; refuses garbage like 1.5e300). */
export const MAX_EPOCHS = 1_000_000_000;
/** Largest number of layers a DBN file may declare. */
export const MAX_LAYERS = 1024;
/** Longest `kind` string a header may hold. */
const MAX_KIND_LENGTH = 64;

type Fail = (code: 'EHEADER' | 'ESIZE', message: string) => never;

/**
 * Checks `header` (already parsed from JSON, `tensors` list removed) against the tensors the
 * file lists. Throws {@link ModelFileError} naming `file` and the field.
 */
export function validateModelHeader(file: string, header: Record<string, unknown>, tensors: ReadonlyMap<string, TensorShape>): void {
  const fail: Fail = (code, message) => {
    throw new ModelFileError(file, code, message);
  };
  const kind = header['kind'];
  if (typeof kind !== 'string' || kind.length === 0 || kind.length > MAX_KIND_LENGTH) {
    fail('EHEADER', `header "kind" must be a string of 1 to ${MAX_KIND_LENGTH} characters.`);
  }
  optional(header, 'library', 'string', '', fail);
  optional(header, 'trainingState', 'boolean', '', fail);
  const meta = header['metadata'];
  if (meta !== undefined && !isPlainObject(meta)) fail('EHEADER', '"metadata" must be a JSON object.');
  if (kind === 'rbm') validateRbm(header, tensors, '', '', fail);
  else if (kind === 'dbn') validateDbn(header, tensors, fail);
}

/** The checks of one RBM header: at the top of an `.rbm` file, or one entry of a DBN's `layers`. */
function validateRbm(
  h: Record<string, unknown>,
  tensors: ReadonlyMap<string, TensorShape>,
  prefix: string,
  where: string,
  fail: Fail,
): { nv: number; nh: number } {
  const saved = h['options'];
  if (!isPlainObject(saved)) fail('EHEADER', `${where}header has no "options" object.`);
  const opts = saved as Record<string, unknown>;
  const nv = count(opts['nVisible'], 1, MAX_UNITS, `${where}option 'nVisible'`, fail);
  const nh = count(opts['nHidden'], 1, MAX_UNITS, `${where}option 'nHidden'`, fail);
  if (h['epochsTrained'] !== undefined) count(h['epochsTrained'], 0, MAX_EPOCHS, `${where}"epochsTrained"`, fail);
  if (h['updates'] !== undefined) count(h['updates'], 0, Number.MAX_SAFE_INTEGER, `${where}"updates"`, fail);
  optional(h, 'fitted', 'boolean', where, fail);
  const state = h['state'];
  if (state !== undefined) {
    if (!isPlainObject(state)) fail('EHEADER', `${where}"state" must be an object.`);
    const s = state as Record<string, unknown>;
    for (const key of ['rng', 'monitorRng']) {
      if (s[key] !== undefined && !isGeneratorState(s[key])) fail('EHEADER', `${where}"state.${key}" must be 4 unsigned 32-bit integers.`);
    }
    optional(s, 'qInitialized', 'boolean', `${where}state.`, fail);
  }
  const shape = (name: string, rows: number, cols: number, required: boolean): void => {
    const t = tensors.get(prefix + name);
    if (t === undefined) {
      if (required) fail('EHEADER', `${where}missing tensor '${name}'.`);
      return;
    }
    if (t.rows !== rows || t.cols !== cols) fail('ESIZE', `${where}tensor '${name}' is ${t.rows}x${t.cols}, expected ${rows}x${cols}.`);
  };
  shape('weights', nv, nh, true);
  shape('visibleBias', 1, nv, true);
  shape('hiddenBias', 1, nh, true);
  const withState = tensors.has(`${prefix}velocityWeights`);
  shape('velocityWeights', nv, nh, false);
  shape('velocityVisibleBias', 1, nv, withState);
  shape('velocityHiddenBias', 1, nh, withState);
  shape('sparsityEstimate', 1, nh, withState);
  const chain = tensors.get(`${prefix}persistentChain`);
  if (chain !== undefined && (chain.rows < 1 || chain.cols !== nh)) {
    fail('ESIZE', `${where}tensor 'persistentChain' is ${chain.rows}x${chain.cols}, expected at least one row of ${nh}.`);
  }
  return { nv, nh };
}

function validateDbn(h: Record<string, unknown>, tensors: ReadonlyMap<string, TensorShape>, fail: Fail): void {
  const saved = h['options'];
  if (!isPlainObject(saved) || !Array.isArray((saved as { layers?: unknown }).layers))
    fail('EHEADER', 'header has no "options" object with a "layers" list.');
  const opts = saved as { nVisible?: unknown; seed?: unknown; layers: unknown[] };
  const nVisible = count(opts.nVisible, 1, MAX_UNITS, "option 'nVisible'", fail);
  if (opts.layers.length < 1 || opts.layers.length > MAX_LAYERS)
    fail('EHEADER', `"options.layers" must list 1 to ${MAX_LAYERS} layers, got ${opts.layers.length}.`);
  opts.layers.forEach((l, i) => {
    if (!isPlainObject(l)) fail('EHEADER', `"options.layers[${i}]" must be an object.`);
  });
  const headers = h['layers'];
  if (!Array.isArray(headers) || headers.length !== opts.layers.length) {
    fail('EHEADER', `header must hold one "layers" entry per layer (${opts.layers.length}).`);
  }
  let nv = nVisible;
  let top = 0;
  (headers as unknown[]).forEach((lh, i) => {
    if (!isPlainObject(lh)) fail('EHEADER', `layer ${i}'s header is not an object.`);
    const dims = validateRbm(lh as Record<string, unknown>, tensors, `layer${i}.`, `layer ${i}: `, fail);
    if (dims.nv !== nv)
      fail('EHEADER', `layer ${i} has ${dims.nv} visible units, but ${i === 0 ? 'the DBN input has' : `layer ${i - 1} has`} ${nv}.`);
    nv = dims.nh;
    top = dims.nh;
  });
  const ch = h['classifier'];
  if (ch === undefined) return;
  if (!isPlainObject(ch)) fail('EHEADER', 'classifier: not an object.');
  const classifier = ch as Record<string, unknown>;
  const classes = classifier['classes'];
  if (typeof classes !== 'number' || !Number.isSafeInteger(classes) || classes < 2 || classes > MAX_CLASSES) {
    fail('EHEADER', `classifier: 'classes' must be an integer >= 2 and <= ${MAX_CLASSES}, got ${describe(classes)}.`);
  }
  count(classifier['epochsDone'], 0, MAX_EPOCHS, "classifier: 'epochsDone'", fail);
  count(classifier['bestEpoch'], -1, MAX_EPOCHS, "classifier: 'bestEpoch'", fail);
  if (classifier['sinceBest'] !== undefined) count(classifier['sinceBest'], 0, MAX_EPOCHS, "classifier: 'sinceBest'", fail);
  const score = classifier['bestScore'];
  if (score !== undefined && score !== null && (typeof score !== 'number' || !Number.isFinite(score)))
    fail('EHEADER', "classifier: 'bestScore' must be a finite number or null.");
  for (const key of ['finished', 'stoppedEarly', 'hasBest']) optional(classifier, key, 'boolean', 'classifier: ', fail);
  if (classifier['rng'] !== undefined && !isGeneratorState(classifier['rng']))
    fail('EHEADER', "classifier: 'rng' must be 4 unsigned 32-bit integers.");
  const head = tensors.get('head.bias');
  if (head !== undefined && (head.rows !== 1 || head.cols !== classes))
    fail('ESIZE', `tensor 'head.bias' is ${head.rows}x${head.cols}, expected 1x${classes as number}.`);
  const headW = tensors.get('head.weights');
  if (headW !== undefined && headW.cols !== classes)
    fail('ESIZE', `tensor 'head.weights' has ${headW.cols} columns, expected ${classes as number} (one per class).`);
  if (headW !== undefined && headW.rows !== top)
    fail('ESIZE', `tensor 'head.weights' has ${headW.rows} rows, expected ${top} (the top layer's units).`);
}

function count(v: unknown, min: number, max: number, what: string, fail: Fail): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    fail('EHEADER', `${what} must be an integer in [${min}, ${max}], got ${describe(v)}.`);
  return v as number;
}

function optional(record: Record<string, unknown>, key: string, type: 'string' | 'boolean', where: string, fail: Fail): void {
  const v = record[key];
  if (v !== undefined && typeof v !== type) fail('EHEADER', `${where}"${key}" must be a ${type}, got ${describe(v)}.`);
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isGeneratorState(x: unknown): boolean {
  return Array.isArray(x) && x.length === 4 && x.every((v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v < 2 ** 32);
}

/** A short, printable description of a JSON value for an error message. */
function describe(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
