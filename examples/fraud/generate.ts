/**
 * Writes a SYNTHETIC credit-card transactions file in the layout of the ULB "Credit Card Fraud
 * Detection" data set (`Time, V1 … V28, Amount, Class`; header and class labels quoted as in the
 * original). Nothing in it comes from real transactions; it is drawn from the seeded model below,
 * built to have the properties that make the real problem hard:
 *
 * - **Rare positives**: `round(rows · 492 / 284807)` frauds (0.173 %; 492 of 284,807 at full size).
 * - **Two days of time**: `Time` in whole seconds from 0 to at most 172,792, sorted; volume follows a
 *   daily cycle (quiet 01:00–07:00, busy 10:00–21:00). Frauds are spread more evenly over the day,
 *   so the fraud rate is several times higher at night.
 * - **Heavy-tailed amounts**: legitimate amounts log-normal (median ≈ 20, a long right tail), with
 *   ties at common prices and 0.6 % zero amounts; frauds are bimodal: card-testing amounts (0.00,
 *   1.00, a few euros) and larger log-normal ones (median ≈ 100, at most 2,125.87).
 * - **PCA-like components**: V1 … V28 centred, uncorrelated up to small couplings to the amount
 *   and the time of day, Student-t (ν = 4) tails, standard deviations falling from 1.95 (V1) to
 *   0.33 (V28).
 * - **Overlapping classes**: 70 % of frauds ("pattern") shift V1–V5, V7, V9–V12, V14, V16, V17
 *   by up to 2–5 standard deviations (as the real V14, V12, V10, V17 separate fraud), scaled per
 *   row by an intensity drawn from 0.1 to 1.5 and with a spread growing with it, so weak ones sit
 *   inside the legitimate cloud; 18 % ("unusual") have no mean shift but 3× the spread on V1, V5,
 *   V6, V21, V27, V28 with V1 and V5 coupled (visible only to a model of more than means: density,
 *   interactions); 12 % ("camouflaged") are legitimate-looking rows shifted by a tenth of the pattern.
 *   A perfect ranking is therefore impossible, and average precision stays well below 1.
 *
 *   npx tsx examples/fraud/generate.ts [--rows 284807] [--seed 1] [--out out/fraud/synthetic-creditcard.csv]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { InvalidOptionError } from '../../src/errors.js';
import { Random } from '../../src/random.js';

/** Rows of the real data set. */
export const CREDITCARD_ROWS = 284_807;
/** Frauds in the real data set. */
export const CREDITCARD_FRAUDS = 492;
/** The largest `Time` of the real data set (seconds). */
export const MAX_TIME = 172_792;
/** The conventional name of the generated file. */
export const SYNTHETIC_FILE_NAME = 'synthetic-creditcard.csv';

/** Options of {@link generateSyntheticCreditCard}. */
export interface GenerateOptions {
  /** Rows to write. Default 284,807 (the real data set's size). */
  readonly rows?: number;
  /** Seed of the generator. Default 1. */
  readonly seed?: number;
}

/** What was written. */
export interface GenerateSummary {
  readonly file: string;
  readonly rows: number;
  readonly frauds: number;
  readonly bytes: number;
}

/** Relative transaction volume of each hour of the day for legitimate transactions. */
const HOURLY = [
  0.35, 0.2, 0.12, 0.08, 0.07, 0.08, 0.12, 0.25, 0.5, 0.8, 0.95, 1, 1, 1, 0.98, 0.97, 0.97, 0.98, 0.98, 1, 0.97, 0.9, 0.75, 0.55,
];
/** Frauds: flatter over the day. */
const HOURLY_FRAUD = HOURLY.map((w) => 0.4 + 0.6 * w);
/** Common legitimate prices (ties in Amount, as in real data). */
const COMMON_PRICES = [1, 0.89, 0.76, 9.99, 1.98, 0.77, 15, 10, 20, 3.79];
/** The "pattern" fraud shift, in units of each component's standard deviation. */
const PATTERN_SHIFT: Readonly<Record<number, number>> = {
  1: -1.5,
  2: 2,
  3: -3.5,
  4: 3,
  5: -1.5,
  7: -2.5,
  9: -2,
  10: -4,
  11: 3,
  12: -4.5,
  14: -5,
  16: -3,
  17: -4.5,
};
/** Components with inflated spread in "unusual" frauds. */
const UNUSUAL = new Set([1, 5, 6, 21, 27, 28]);

const N_COMPONENTS = 28;
const COMPONENT_STD = Array.from({ length: N_COMPONENTS }, (_, j) => 1.95 * (0.33 / 1.95) ** (j / (N_COMPONENTS - 1)));
const LOG_AMOUNT_MEAN = 3.0;
const LOG_AMOUNT_STD = 1.3;

/** A Student-t (ν = 4) draw scaled to unit variance (the t₄ variance is 2). */
function t4(rng: Random): number {
  let chi2 = 0;
  for (let k = 0; k < 4; k++) {
    const z = rng.normal();
    chi2 += z * z;
  }
  return rng.normal() / Math.sqrt(chi2 / 4) / Math.SQRT2;
}

/** An index drawn with probability proportional to `weights`. */
function pick(rng: Random, cumulative: readonly number[]): number {
  const u = rng.uniform() * cumulative[cumulative.length - 1]!;
  let i = 0;
  while (cumulative[i]! <= u) i++;
  return i;
}

function cumsum(w: readonly number[]): number[] {
  let s = 0;
  return w.map((v) => (s += v));
}

/** `n` sorted times over two days from an hourly volume profile. */
function drawTimes(rng: Random, n: number, hourly: readonly number[]): Float64Array {
  // Day 2 is a little quieter than day 1, as in the real data.
  const cum = cumsum([...hourly, ...hourly.map((w) => 0.95 * w)]);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(MAX_TIME, pick(rng, cum) * 3600 + Math.floor(rng.uniform() * 3600));
  return out.sort();
}

function legitAmount(rng: Random): number {
  const u = rng.uniform();
  if (u < 0.006) return 0;
  if (u < 0.08) return COMMON_PRICES[rng.int(COMMON_PRICES.length)]!;
  return Math.round(Math.exp(LOG_AMOUNT_MEAN + LOG_AMOUNT_STD * rng.normal()) * 100) / 100 + 0.01;
}

function fraudAmount(rng: Random): number {
  const u = rng.uniform();
  if (u < 0.12) return 1;
  if (u < 0.22) return 0;
  if (u < 0.45) return Math.round((0.5 + 11.5 * rng.uniform()) * 100) / 100;
  return Math.min(2125.87, Math.round(Math.exp(4.6 + 1.1 * rng.normal()) * 100) / 100);
}

type Kind = 'legit' | 'pattern' | 'unusual' | 'camouflaged';

/** Fills `v` (length 28) with the components of one transaction. */
function components(rng: Random, v: Float64Array, kind: Kind, amount: number, time: number): void {
  const za = (Math.log1p(amount) - LOG_AMOUNT_MEAN) / LOG_AMOUNT_STD;
  const hour = (time % 86_400) / 3600;
  const intensity = kind === 'pattern' ? 0.1 + 1.4 * rng.uniform() : 0;
  for (let j = 1; j <= N_COMPONENTS; j++) {
    let z = t4(rng);
    if (kind === 'pattern' && PATTERN_SHIFT[j] !== undefined) z = (1 + intensity) * z + intensity * PATTERN_SHIFT[j]!;
    if (kind === 'unusual' && UNUSUAL.has(j)) z *= 3;
    if (kind === 'camouflaged' && PATTERN_SHIFT[j] !== undefined) z += 0.1 * PATTERN_SHIFT[j]!;
    v[j - 1] = z;
  }
  if (kind === 'unusual') v[4] = 0.8 * v[0]! + 0.6 * v[4]!;
  // Small couplings, as the real components have with Amount and Time.
  v[1] = v[1]! - 0.35 * za;
  v[6] = v[6]! + 0.3 * za;
  v[19] = v[19]! + 0.3 * za;
  v[2] = v[2]! + 0.4 * Math.cos((2 * Math.PI * (hour - 14)) / 24);
  for (let j = 0; j < N_COMPONENTS; j++) v[j] = v[j]! * COMPONENT_STD[j]!;
}

/** The number of frauds in a file of `rows` rows (the real data set's rate, at least 1). */
export function fraudCount(rows: number): number {
  return Math.max(1, Math.round((rows * CREDITCARD_FRAUDS) / CREDITCARD_ROWS));
}

/**
 * Writes a synthetic file (see the module notes) to `file` (directories created; an existing file
 * is replaced). The same options always give the same bytes.
 */
export function generateSyntheticCreditCard(file: string, options: GenerateOptions = {}): GenerateSummary {
  const rows = options.rows ?? CREDITCARD_ROWS;
  const seed = options.seed ?? 1;
  if (!Number.isSafeInteger(rows) || rows < 2)
    throw new InvalidOptionError(`The 'rows' option of generateSyntheticCreditCard must be an integer in [2, inf). Got ${String(rows)}.`);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new InvalidOptionError(`The 'seed' option of generateSyntheticCreditCard must be an integer in [0, inf). Got ${String(seed)}.`);
  const rng = new Random(seed);
  const nFraud = fraudCount(rows);
  const legitTimes = drawTimes(rng, rows - nFraud, HOURLY);
  const fraudTimes = drawTimes(rng, nFraud, HOURLY_FRAUD);

  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  let bytes = 0;
  try {
    const write = (s: string): void => {
      bytes += fs.writeSync(fd, s);
    };
    const names = ['Time', ...Array.from({ length: N_COMPONENTS }, (_, j) => `V${j + 1}`), 'Amount', 'Class'];
    write(`${names.map((n) => `"${n}"`).join(',')}\n`);
    const v = new Float64Array(N_COMPONENTS);
    let li = 0;
    let fi = 0;
    let lines: string[] = [];
    for (let r = 0; r < rows; r++) {
      // Merge the two sorted time lists; a fraud goes first on equal times.
      const fraud = fi < nFraud && (li >= legitTimes.length || fraudTimes[fi]! <= legitTimes[li]!);
      const time = fraud ? fraudTimes[fi++]! : legitTimes[li++]!;
      let kind: Kind = 'legit';
      if (fraud) {
        const u = rng.uniform();
        kind = u < 0.7 ? 'pattern' : u < 0.88 ? 'unusual' : 'camouflaged';
      }
      const amount = fraud ? fraudAmount(rng) : legitAmount(rng);
      components(rng, v, kind, amount, time);
      let line = String(time);
      for (let j = 0; j < N_COMPONENTS; j++) line += `,${v[j]!.toFixed(6)}`;
      line += `,${amount.toFixed(2)},"${fraud ? 1 : 0}"`;
      lines.push(line);
      if (lines.length === 10_000) {
        write(`${lines.join('\n')}\n`);
        lines = [];
      }
    }
    if (lines.length > 0) write(`${lines.join('\n')}\n`);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  return { file, rows, frauds: nFraud, bytes };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: String(CREDITCARD_ROWS) },
      seed: { type: 'string', default: '1' },
      out: { type: 'string', default: path.join('out', 'fraud', SYNTHETIC_FILE_NAME) },
    },
    strict: true,
  });
  const s = generateSyntheticCreditCard(values.out, { rows: Number(values.rows), seed: Number(values.seed) });
  console.log(`wrote ${s.file}: ${s.rows} rows, ${s.frauds} frauds (SYNTHETIC data), ${(s.bytes / 1e6).toFixed(1)} MB`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  });
}
