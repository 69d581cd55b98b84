/**
 * Redraws the scaling chart from the JSON that bench/scaling.ts printed, e.g. to put series
 * measured in separate runs (`--series loopback`, then `--series 1000,100`) on one chart.
 *
 * Usage: tsx bench/scaling/replot.ts --png docs/scaling.png run1.jsonl [run2.jsonl …]
 *        [--target 0.82 --limit 5000 --cores 2]   (for a file without the summary line)
 * A row (series and N) given in several files is taken from the last.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { renderTimeToAccuracy } from './plot.js';
import type { RunSummary } from './summary.js';

interface BenchOutput {
  readonly bench: string;
  readonly schedule: { readonly target: number; readonly limit: number };
  readonly machine: { readonly cores: number };
  readonly series: readonly { readonly series: string; readonly rows: readonly RunSummary[] }[];
}

const { values, positionals } = parseArgs({
  options: {
    png: { type: 'string', default: 'docs/scaling.png' },
    target: { type: 'string' },
    limit: { type: 'string' },
    cores: { type: 'string' },
  },
  allowPositionals: true,
});
type Row = RunSummary & { readonly series: string };

/**
 * The series of one output file: from its summary line, or (a run interrupted before it printed
 * one) from its per-run lines, the one-process line standing at N = 1 in every series.
 */
function readOutput(file: string): BenchOutput {
  const lines = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const summary = lines.filter((l) => l['bench'] === 'scaling').pop();
  if (summary !== undefined) return summary as unknown as BenchOutput;
  const rows = lines.filter((l) => typeof l['series'] === 'string' && typeof l['peers'] === 'number') as unknown as Row[];
  const single = rows.find((r) => r.series === 'one process');
  const names = [...new Set(rows.map((r) => r.series))].filter((name) => name !== 'one process');
  if (single === undefined || names.length === 0)
    throw new Error(`${file} holds neither a bench/scaling.ts summary line nor its per-run lines`);
  if (values.target === undefined || values.limit === undefined || values.cores === undefined)
    throw new Error(`${file} has no summary line: give --target, --limit and --cores of its run`);
  return {
    bench: 'scaling',
    schedule: { target: Number(values.target), limit: Number(values.limit) },
    machine: { cores: Number(values.cores) },
    series: names.map((name) => ({ series: name, rows: [single, ...rows.filter((r) => r.series === name)] })),
  };
}

const outputs = positionals.map(readOutput);
const first = outputs[0];
if (first === undefined) throw new Error('name at least one output file of bench/scaling.ts');
if (outputs.some((o) => o.schedule.target !== first.schedule.target || o.schedule.limit !== first.schedule.limit))
  throw new Error('the runs have different targets or --limit: they do not belong on one chart');
// Rows by series and N; a later file's row replaces an earlier one's.
const bySeries = new Map<string, Map<number, RunSummary>>();
for (const s of outputs.flatMap((o) => o.series)) {
  const rows = bySeries.get(s.series) ?? new Map<number, RunSummary>();
  // A run whose replicas differ split into groups (output of bench/scaling.ts before it refused those): not a point.
  for (const r of s.rows) if (r.largestReplicaDifference === 0) rows.set(r.peers, r);
  bySeries.set(s.series, rows);
}
const merged = [...bySeries].map(([series, rows]) => ({ series, rows: [...rows.values()].sort((a, b) => a.peers - b.peers) }));
const png = renderTimeToAccuracy(merged, first.schedule.target, first.schedule.limit, first.machine.cores);
fs.writeFileSync(values.png, png);
console.log(JSON.stringify({ png: values.png, series: [...bySeries.keys()] }));
