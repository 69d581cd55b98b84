/** `dbn-node info`: what a model file holds. Every value taken from the file is escaped before it is printed. */
import * as fs from 'node:fs';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { readModelFile } from '../../rbm/index.js';
import type { GlobalArgs } from '../common.js';
import { requireFile } from '../common.js';
import { escapeText, showValue } from '../escape.js';

interface InfoArgs extends GlobalArgs {
  readonly model: string;
  readonly json: boolean;
}

type Fields = Record<string, unknown>;

function isObject(x: unknown): x is Fields {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function handler(a: ArgumentsCamelCase<InfoArgs>): void {
  requireFile('--model', a.model);
  const mf = readModelFile(a.model);
  const bytes = fs.statSync(a.model).size;
  const h = mf.header as Fields;
  const tensors = [...mf.tensors.values()].map((t) => ({ name: t.name, shape: [t.rows, t.cols] }));
  const params = [...mf.tensors.values()].reduce((s, t) => s + t.rows * t.cols, 0);
  const checksum = mf.checksum === undefined ? null : `0x${mf.checksum.toString(16).padStart(8, '0')}`;
  const { tensors: _omit, ...header } = h;
  if (a.json) {
    // JSON.stringify escapes every control character, so this line is safe as it is.
    process.stdout.write(
      `${JSON.stringify({ file: a.model, bytes, formatVersion: mf.version, checksum, header, tensors, parameters: params })}\n`,
    );
    return;
  }
  const integrity = checksum === null ? 'no checksum' : `CRC-32 ${checksum} verified`;
  const lines = [
    `${escapeText(a.model)}: dbn-node ${showValue(h['kind'])} model, format v${mf.version} (${integrity}), ${bytes} bytes, ${params} float32 values`,
  ];
  const layers: unknown[] = Array.isArray(h['layers']) ? h['layers'] : h['kind'] === 'rbm' ? [h] : [];
  layers.forEach((l, i) => {
    if (!isObject(l)) return;
    const o = isObject(l['options']) ? l['options'] : {};
    lines.push(
      `  layer ${i}: ${showValue(o['nVisible'])} ${showValue(o['visible'])} → ${showValue(o['nHidden'])} ${showValue(o['hidden'])}, ` +
        `${showValue(l['epochsTrained'] ?? 0)} epoch(s) trained, lr ${showValue(o['learningRate'])}, k ${showValue(o['k'])}${o['persistent'] === true ? ' (PCD)' : ''}`,
    );
  });
  const assoc = h['associative'];
  if (isObject(assoc) && isObject(assoc['options'])) {
    const o = assoc['options'];
    const labels = Number(o['softmaxUnits']);
    lines.push(
      `  associative: ${Number(o['nVisible']) - labels} features + ${labels} labels → ${showValue(o['nHidden'])}, ${showValue(assoc['epochsTrained'] ?? 0)} epoch(s) trained, lr ${showValue(o['learningRate'])}${o['persistent'] === true ? ' (PCD)' : ''}${o['labelNegativePhase'] === 'clamped' ? ', labels clamped in the negative phase' : ''}${Number(o['discriminativeWeight']) > 0 ? `, discriminative β ${showValue(o['discriminativeWeight'])}` : ''}`,
    );
  }
  const c = h['classifier'];
  if (isObject(c)) {
    lines.push(
      `  classifier: softmax over ${showValue(c['classes'])} classes, fine-tuned ${showValue(c['epochsDone'])} epoch(s) (best ${showValue(c['bestEpoch'])})`,
    );
  } else if (h['kind'] === 'dbn') {
    lines.push('  classifier: none (pretrained only)');
  }
  if (h['trainingState'] === true) lines.push('  checkpoint: holds training state (use with train --resume)');
  const meta = h['metadata'];
  if (isObject(meta)) {
    for (const [key, value] of Object.entries(meta)) {
      lines.push(key === 'data' ? `  trained on: ${showValue(value)}` : `  metadata ${escapeText(key)}: ${showValue(value, 120)}`);
    }
  }
  lines.push(`  tensors: ${tensors.map((t) => `${escapeText(t.name)} ${t.shape.join('x')}`).join(', ')}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** The `info` command. */
export const infoCommand: CommandModule<GlobalArgs, InfoArgs> = {
  command: 'info',
  describe: 'describe what a model file holds (format version, layers, training, classifier, tensors)',
  builder: ((y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'an .rbm or .dbn file' })
      .option('json', { type: 'boolean', default: false })
      .example('$0 info --model dbn-run/model.dbn', '')) as unknown as CommandModule<GlobalArgs, InfoArgs>['builder'],
  handler,
};
