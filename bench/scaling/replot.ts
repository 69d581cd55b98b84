/**
 * Redraws the scaling chart from the JSON that bench/scaling.ts printed, e.g. to put series
 * measured in separate runs (`--series loopback`, then `--series 1000,100`) on one chart.
 *
 * Usage: tsx bench/scaling/replot.ts --png docs/scaling.png run1.jsonl [run2.jsonl …]
 * A series named in several files is taken from the last.
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

const { values, positionals } = parseArgs({ options: { png: { type: 'string', default: 'docs/scaling.png' } }, allowPositionals: true });
const outputs = positionals.map((file) => {
  const summary = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{"bench":"scaling"'))
    .pop();
  if (summary === undefined) throw new Error(`${file} holds no bench/scaling.ts summary line`);
  return JSON.parse(summary) as BenchOutput;
});
const first = outputs[0];
if (first === undefined) throw new Error('name at least one output file of bench/scaling.ts');
if (outputs.some((o) => o.schedule.target !== first.schedule.target || o.schedule.limit !== first.schedule.limit)) throw new Error('the runs have different targets or --limit: they do not belong on one chart');
const bySeries = new Map(outputs.flatMap((o) => o.series.map((s) => [s.series, s] as const)));
const png = renderTimeToAccuracy([...bySeries.values()], first.schedule.target, first.schedule.limit, first.machine.cores);
fs.writeFileSync(values.png, png);
console.log(JSON.stringify({ png: values.png, series: [...bySeries.keys()] }));
