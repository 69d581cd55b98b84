/**
 * PNG grids of images (first-layer filters, generated digits), written with pngjs — a small,
 * well-kept encoder, so we do not hand-roll zlib/CRC chunk writing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PNG } from 'pngjs';
import { InvalidOptionError } from '../errors.js';

/** Options of {@link renderGrid}. */
export interface GridOptions {
  /** Width and height of one tile in pixels (tile pixels = `width · height` values per image). */
  readonly width: number;
  readonly height: number;
  /** Tiles per row. Default: ⌈√count⌉. */
  readonly columns?: number;
  /** Pixel upscale factor. Default 2. */
  readonly scale?: number;
  /** Gap between tiles in (unscaled) pixels. Default 1. */
  readonly gap?: number;
  /**
   * How values map to grey: `'unit'` clips [0, 1] (images); `'per-tile'` stretches each tile's
   * own min..max (filters, whose scale varies). Default `'unit'`.
   */
  readonly normalize?: 'unit' | 'per-tile';
}

/**
 * Renders `count` images of `width·height` values each (row-major, `images[i·w·h + …]`) into
 * one grey PNG grid. Returns the encoded PNG bytes.
 */
export function renderGrid(images: Float32Array, count: number, o: GridOptions): Buffer {
  const { width: w, height: h } = o;
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1 || images.length < count * w * h) {
    throw new InvalidOptionError(`renderGrid needs ${count} images of ${w}x${h} values; got ${images.length} values.`);
  }
  const cols = o.columns ?? Math.ceil(Math.sqrt(count));
  const rows = Math.ceil(count / cols);
  const s = o.scale ?? 2;
  const gap = o.gap ?? 1;
  const W = (cols * (w + gap) + gap) * s;
  const H = (rows * (h + gap) + gap) * s;
  const png = new PNG({ width: W, height: H, colorType: 0 });
  png.data.fill(64);
  for (let i = 0; i < png.data.length; i += 4) png.data[i + 3] = 255;
  for (let k = 0; k < count; k++) {
    const tile = images.subarray(k * w * h, (k + 1) * w * h);
    let lo = 0;
    let hi = 1;
    if (o.normalize === 'per-tile') {
      lo = Infinity;
      hi = -Infinity;
      for (const v of tile) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      if (hi - lo < 1e-12) hi = lo + 1;
    }
    const x0 = (gap + (k % cols) * (w + gap)) * s;
    const y0 = (gap + Math.floor(k / cols) * (h + gap)) * s;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const g = Math.round(255 * Math.min(1, Math.max(0, (tile[y * w + x]! - lo) / (hi - lo))));
        for (let dy = 0; dy < s; dy++) {
          for (let dx = 0; dx < s; dx++) {
            const p = ((y0 + y * s + dy) * W + (x0 + x * s + dx)) * 4;
            png.data[p] = g;
            png.data[p + 1] = g;
            png.data[p + 2] = g;
          }
        }
      }
    }
  }
  return PNG.sync.write(png, { colorType: 0 });
}

/** Writes `bytes` to `file` atomically; refuses to replace an existing file unless `overwrite`. */
export function writeFileAtomic(file: string, bytes: Buffer | string, overwrite: boolean): void {
  if (!overwrite && fs.existsSync(file)) {
    throw new InvalidOptionError(`${file} exists; pass --force to overwrite it.`);
  }
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    fs.writeFileSync(tmp, bytes, { flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** A header-less CSV of `m` (`rows × cols`): one row per line, values with 6 decimals. */
export function samplesCsv(m: { readonly rows: number; readonly cols: number; readonly data: Float32Array }): string {
  const lines: string[] = [];
  for (let r = 0; r < m.rows; r++) {
    const row: string[] = [];
    for (let c = 0; c < m.cols; c++) row.push(m.data[r * m.cols + c]!.toFixed(6));
    lines.push(row.join(','));
  }
  return lines.join('\n') + '\n';
}
