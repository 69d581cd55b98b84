/**
 * A precision–recall chart as a PNG (pngjs), drawn pixel by pixel: axes with ticks, a 5×7 bitmap
 * font (upper case, digits, a little punctuation), step curves, a dashed prevalence line and a
 * legend of coloured boxes beside the plot.
 */
import { PNG } from 'pngjs';
import type { PrCurve } from '../../src/metrics/index.js';

/** One curve of the chart. */
export interface ChartSeries {
  readonly name: string;
  readonly curve: PrCurve;
  readonly color: readonly [number, number, number];
}

/** Options of {@link renderPrChart}. */
export interface ChartOptions {
  readonly title: string;
  /** Positive rate of the rows the curves were computed on (drawn as the "random ranking" line). */
  readonly prevalence: number;
  readonly width?: number;
  readonly height?: number;
}

// prettier-ignore
const GLYPHS: Readonly<Record<string, string>> = {
  A: '01110 10001 10001 11111 10001 10001 10001', B: '11110 10001 10001 11110 10001 10001 11110',
  C: '01110 10001 10000 10000 10000 10001 01110', D: '11100 10010 10001 10001 10001 10010 11100',
  E: '11111 10000 10000 11110 10000 10000 11111', F: '11111 10000 10000 11110 10000 10000 10000',
  G: '01110 10001 10000 10111 10001 10001 01111', H: '10001 10001 10001 11111 10001 10001 10001',
  I: '01110 00100 00100 00100 00100 00100 01110', J: '00111 00010 00010 00010 00010 10010 01100',
  K: '10001 10010 10100 11000 10100 10010 10001', L: '10000 10000 10000 10000 10000 10000 11111',
  M: '10001 11011 10101 10101 10001 10001 10001', N: '10001 10001 11001 10101 10011 10001 10001',
  O: '01110 10001 10001 10001 10001 10001 01110', P: '11110 10001 10001 11110 10000 10000 10000',
  Q: '01110 10001 10001 10001 10101 10010 01101', R: '11110 10001 10001 11110 10100 10010 10001',
  S: '01111 10000 10000 01110 00001 00001 11110', T: '11111 00100 00100 00100 00100 00100 00100',
  U: '10001 10001 10001 10001 10001 10001 01110', V: '10001 10001 10001 10001 10001 01010 00100',
  W: '10001 10001 10001 10101 10101 10101 01010', X: '10001 10001 01010 00100 01010 10001 10001',
  Y: '10001 10001 10001 01010 00100 00100 00100', Z: '11111 00001 00010 00100 01000 10000 11111',
  0: '01110 10001 10011 10101 11001 10001 01110', 1: '00100 01100 00100 00100 00100 00100 01110',
  2: '01110 10001 00001 00010 00100 01000 11111', 3: '11111 00010 00100 00010 00001 10001 01110',
  4: '00010 00110 01010 10010 11111 00010 00010', 5: '11111 10000 11110 00001 00001 10001 01110',
  6: '00110 01000 10000 11110 10001 10001 01110', 7: '11111 00001 00010 00100 01000 01000 01000',
  8: '01110 10001 10001 01110 10001 10001 01110', 9: '01110 10001 10001 01111 00001 00010 01100',
  '.': '00000 00000 00000 00000 00000 01100 01100', '-': '00000 00000 00000 11111 00000 00000 00000',
  '(': '00010 00100 01000 01000 01000 00100 00010', ')': '01000 00100 00010 00010 00010 00100 01000',
  '=': '00000 00000 11111 00000 11111 00000 00000', ',': '00000 00000 00000 00000 01100 00100 01000',
  ':': '00000 01100 01100 00000 01100 01100 00000', '/': '00000 00001 00010 00100 01000 10000 00000',
  '%': '11000 11001 00010 00100 01000 10011 00011', '+': '00000 00100 00100 11111 00100 00100 00000',
  '?': '01110 10001 00001 00010 00100 00000 00100', ' ': '00000 00000 00000 00000 00000 00000 00000',
};

export type Rgb = readonly [number, number, number];

export class Canvas {
  readonly png: PNG;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.png = new PNG({ width, height });
    this.png.data.fill(255);
  }

  set(x: number, y: number, c: Rgb): void {
    const xi = Math.round(x);
    const yi = Math.round(y);
    if (xi < 0 || yi < 0 || xi >= this.width || yi >= this.height) return;
    const k = (yi * this.width + xi) * 4;
    this.png.data[k] = c[0];
    this.png.data[k + 1] = c[1];
    this.png.data[k + 2] = c[2];
    this.png.data[k + 3] = 255;
  }

  rect(x0: number, y0: number, w: number, h: number, c: Rgb): void {
    for (let y = Math.round(y0); y < Math.round(y0 + h); y++) for (let x = Math.round(x0); x < Math.round(x0 + w); x++) this.set(x, y, c);
  }

  /** A line `thickness` pixels wide; with `dash`, drawn `dash` pixels on, `dash` off. */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thickness = 1, dash = 0): void {
    const len = Math.hypot(x1 - x0, y1 - y0);
    const steps = Math.max(1, Math.ceil(len * 2));
    const r = (thickness - 1) / 2;
    for (let s = 0; s <= steps; s++) {
      const along = (s / steps) * len;
      if (dash > 0 && Math.floor(along / dash) % 2 === 1) continue;
      const x = x0 + ((x1 - x0) * s) / steps;
      const y = y0 + ((y1 - y0) * s) / steps;
      for (let dy = -Math.ceil(r); dy <= Math.ceil(r); dy++)
        for (let dx = -Math.ceil(r); dx <= Math.ceil(r); dx++) this.set(x + dx, y + dy, c);
    }
  }

  /** Text in the bitmap font at `scale` pixels per font pixel; `(x, y)` is the top-left corner. Returns the width drawn. */
  text(s: string, x: number, y: number, c: Rgb, scale = 2): number {
    let cx = x;
    for (const ch of s.toUpperCase()) {
      const rows = (GLYPHS[ch] ?? GLYPHS['?']!).split(' ');
      rows.forEach((bits, ry) => {
        for (let rx = 0; rx < 5; rx++) if (bits[rx] === '1') this.rect(cx + rx * scale, y + ry * scale, scale, scale, c);
      });
      cx += 6 * scale;
    }
    return cx - x;
  }
}

/** Width in pixels of `s` drawn at `scale`. */
export function textWidth(s: string, scale = 2): number {
  return s.length * 6 * scale;
}

const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];
const GREY: Rgb = [120, 120, 120];

/**
 * Renders the precision–recall curves of `series` (recall on x, precision on y, both 0–1) as the
 * exact step functions average precision integrates: precision `P_t` held over recall
 * `(R_{t−1}, R_t]`. Returns the PNG bytes.
 */
export function renderPrChart(series: readonly ChartSeries[], o: ChartOptions): Buffer {
  const width = o.width ?? 1000;
  const height = o.height ?? 600;
  const cv = new Canvas(width, height);
  const left = 80;
  const top = 60;
  const plotW = Math.min(height - 140, width - 420);
  const plotH = height - 140;
  const px = (r: number): number => left + r * plotW;
  const py = (p: number): number => top + (1 - p) * plotH;

  cv.text(o.title, left, 8, BLACK);
  for (let k = 0; k <= 5; k++) {
    const v = k / 5;
    cv.line(px(v), py(0), px(v), py(1), GRID);
    cv.line(px(0), py(v), px(1), py(v), GRID);
    const label = v.toFixed(1);
    cv.line(px(v), py(0), px(v), py(0) + 6, BLACK);
    cv.text(label, px(v) - textWidth(label) / 2, py(0) + 12, BLACK);
    cv.line(px(0) - 6, py(v), px(0), py(v), BLACK);
    cv.text(label, px(0) - 12 - textWidth(label), py(v) - 7, BLACK);
  }
  cv.line(px(0), py(0), px(1), py(0), BLACK, 2);
  cv.line(px(0), py(0), px(0), py(1), BLACK, 2);
  cv.text('RECALL', px(0.5) - textWidth('RECALL') / 2, py(0) + 40, BLACK);
  cv.text('PRECISION', 8, top - 26, BLACK);

  cv.line(px(0), py(o.prevalence), px(1), py(o.prevalence), GREY, 2, 6);
  for (const s of series) {
    const { precision, recall } = s.curve;
    let prevR = 0;
    let prevP = precision.length > 0 ? precision[0]! : 0;
    for (let t = 0; t < precision.length; t++) {
      const r = recall[t]!;
      const p = precision[t]!;
      if (p !== prevP) cv.line(px(prevR), py(prevP), px(prevR), py(p), s.color, 3);
      if (r !== prevR) cv.line(px(prevR), py(p), px(r), py(p), s.color, 3);
      prevR = r;
      prevP = p;
    }
  }

  const lx = px(1) + 40;
  let ly = top + 10;
  for (const s of series) {
    cv.rect(lx, ly, 24, 14, s.color);
    cv.text(s.name, lx + 34, ly, BLACK);
    ly += 30;
  }
  cv.line(lx, ly + 7, lx + 24, ly + 7, GREY, 2, 6);
  cv.text(`RANDOM = ${(o.prevalence * 100).toFixed(3)}%`, lx + 34, ly, BLACK);
  return PNG.sync.write(cv.png);
}
