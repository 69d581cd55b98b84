/**
 * docs/scaling.png: time to the target accuracy against the number of peers, one line per network
 * series, drawn with pngjs through the chart canvas of examples/fraud/plot.ts (its 5×7 bitmap font
 * has upper case, digits and a little punctuation only).
 */
import { PNG } from 'pngjs';
import { Canvas, type Rgb, textWidth } from '../../examples/fraud/plot.js';

/** One line of the chart: seconds (null: target not reached) at each peer count. */
export interface ScalingLine {
  readonly name: string;
  readonly points: readonly { readonly peers: number; readonly seconds: number | null }[];
}

const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];
const COLORS: readonly Rgb[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
];

function niceCeiling(x: number): number {
  const step = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= x) return m * step;
  return 10 * step;
}

/** Renders the chart (peer counts on a log2 axis, seconds from 0) and returns the PNG bytes. */
export function renderScalingChart(lines: readonly ScalingLine[], title: string, yLabel: string): Buffer {
  const width = 1000;
  const height = 600;
  const cv = new Canvas(width, height);
  const left = 90;
  const top = 70;
  const plotW = 560;
  const plotH = height - 150;
  const counts = [...new Set(lines.flatMap((l) => l.points.map((p) => p.peers)))].sort((a, b) => a - b);
  const seconds = lines.flatMap((l) => l.points.flatMap((p) => (p.seconds === null ? [] : [p.seconds])));
  const yMax = niceCeiling(Math.max(1, ...seconds));
  const xMin = Math.log2(counts[0] ?? 1);
  const xMax = Math.max(xMin + 1, Math.log2(counts[counts.length - 1] ?? 2));
  const px = (peers: number): number => left + ((Math.log2(peers) - xMin) / (xMax - xMin)) * plotW;
  const py = (s: number): number => top + (1 - s / yMax) * plotH;

  cv.text(title, left, 12, BLACK);
  for (let k = 0; k <= 5; k++) {
    const v = (yMax * k) / 5;
    cv.line(px(counts[0] ?? 1), py(v), left + plotW, py(v), GRID);
    const label = String(Number(v.toFixed(1)));
    cv.text(label, left - 12 - textWidth(label), py(v) - 7, BLACK);
  }
  for (const n of counts) {
    cv.line(px(n), py(0), px(n), py(yMax), GRID);
    cv.line(px(n), py(0), px(n), py(0) + 6, BLACK);
    cv.text(String(n), px(n) - textWidth(String(n)) / 2, py(0) + 12, BLACK);
  }
  cv.line(left, py(0), left + plotW, py(0), BLACK, 2);
  cv.line(left, py(0), left, py(yMax), BLACK, 2);
  cv.text('PEERS (PROCESSES)', left + plotW / 2 - textWidth('PEERS (PROCESSES)') / 2, py(0) + 40, BLACK);
  cv.text(yLabel, 8, top - 28, BLACK);

  lines.forEach((line, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts = line.points.filter((p) => p.seconds !== null).map((p) => ({ x: px(p.peers), y: py(p.seconds!) }));
    for (let k = 1; k < pts.length; k++) cv.line(pts[k - 1]!.x, pts[k - 1]!.y, pts[k]!.x, pts[k]!.y, color, 3);
    for (const p of pts) cv.rect(p.x - 5, p.y - 5, 11, 11, color);
  });

  let legendY = top + 10;
  for (const [i, line] of lines.entries()) {
    cv.rect(left + plotW + 40, legendY, 24, 14, COLORS[i % COLORS.length]!);
    cv.text(line.name, left + plotW + 74, legendY, BLACK);
    legendY += 30;
  }
  return PNG.sync.write(cv.png);
}

/** The chart of bench/scaling.ts: wall seconds to the target against N, one line per network series. */
export function renderTimeToAccuracy(
  series: readonly {
    readonly series: string;
    readonly rows: readonly { readonly peers: number; readonly wallSecondsToTarget: number | null }[];
  }[],
  target: number,
  limit: number,
  cores: number,
): Buffer {
  return renderScalingChart(
    series.map((s) => ({ name: s.series.toUpperCase(), points: s.rows.map((r) => ({ peers: r.peers, seconds: r.wallSecondsToTarget })) })),
    `TIME TO ${(target * 100).toFixed(1)}% VALIDATION ACCURACY (LIMIT ${limit}, ${cores} CORES)`,
    'SECONDS FROM LAUNCH',
  );
}
