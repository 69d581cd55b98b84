/** `dbn-node info`: what a model file holds. */
import * as fs from 'node:fs';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { readModelFile } from '../../rbm/index.js';
import type { GlobalArgs } from '../common.js';
import { requireFile } from '../common.js';

interface InfoArgs extends GlobalArgs {
  readonly model: string;
  readonly json: boolean;
}

function handler(a: ArgumentsCamelCase<InfoArgs>): void {
  requireFile('--model', a.model);
  const mf = readModelFile(a.model);
  const h = mf.header as Record<string, unknown>;
  const tensors = [...mf.tensors.values()].map((t) => ({ name: t.name, shape: [t.rows, t.cols] }));
  const params = [...mf.tensors.values()].reduce((s, t) => s + t.rows * t.cols, 0);
  const { tensors: _omit, ...header } = h;
  if (a.json) {
    process.stdout.write(`${JSON.stringify({ file: a.model, bytes: fs.statSync(a.model).size, header, tensors, parameters: params })}\n`);
    return;
  }
  const lines = [`${a.model}: dbn-node ${String(h['kind'])} model, ${fs.statSync(a.model).size} bytes, ${params} float32 values`];
  const layers = (h['layers'] as { options?: Record<string, unknown>; epochsTrained?: number }[] | undefined) ?? (h['kind'] === 'rbm' ? [h as { options?: Record<string, unknown>; epochsTrained?: number }] : []);
  layers.forEach((l, i) => {
    const o = l.options ?? {};
    lines.push(`  layer ${i}: ${String(o['nVisible'])} ${String(o['visible'])} → ${String(o['nHidden'])} ${String(o['hidden'])}, ${l.epochsTrained ?? 0} epoch(s) trained, lr ${String(o['learningRate'])}, k ${String(o['k'])}${o['persistent'] ? ' (PCD)' : ''}`);
  });
  const assoc = h['associative'] as { options?: Record<string, unknown>; epochsTrained?: number } | undefined;
  if (assoc?.options !== undefined) {
    const o = assoc.options;
    const labels = Number(o['softmaxUnits']);
    lines.push(`  associative: ${Number(o['nVisible']) - labels} features + ${labels} labels → ${String(o['nHidden'])}, ${assoc.epochsTrained ?? 0} epoch(s) trained, lr ${String(o['learningRate'])}${o['persistent'] ? ' (PCD)' : ''}${o['labelNegativePhase'] === 'clamped' ? ', labels clamped in the negative phase' : ''}${Number(o['discriminativeWeight']) > 0 ? `, discriminative β ${String(o['discriminativeWeight'])}` : ''}`);
  }
  const c = h['classifier'] as { classes?: number; epochsDone?: number; bestEpoch?: number } | undefined;
  if (c !== undefined) lines.push(`  classifier: softmax over ${c.classes} classes, fine-tuned ${c.epochsDone} epoch(s) (best ${c.bestEpoch})`);
  else if (h['kind'] === 'dbn') lines.push('  classifier: none (pretrained only)');
  if (h['trainingState'] === true) lines.push('  checkpoint: holds training state (use with train --resume)');
  const meta = h['metadata'] as Record<string, unknown> | undefined;
  if (meta?.['data'] !== undefined) lines.push(`  trained on: ${String(meta['data'])}`);
  lines.push(`  tensors: ${tensors.map((t) => `${t.name} ${t.shape.join('x')}`).join(', ')}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** The `info` command. */
export const infoCommand: CommandModule<GlobalArgs, InfoArgs> = {
  command: 'info',
  describe: 'describe what a model file holds (layers, training, classifier, tensors)',
  builder: ((y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'an .rbm or .dbn file' })
      .option('json', { type: 'boolean', default: false })
      .example('$0 info --model dbn-run/model.dbn', '')) as unknown as CommandModule<GlobalArgs, InfoArgs>['builder'],
  handler,
};
