/**
 * One bank of the distributed fraud example (`runBank` in `distributed.ts`), as a process:
 * `npx tsx examples/fraud/bank.ts --input FILE --bank I --banks N --out DIR [--peer ADDR]…
 * [--aggregate ADDR]`. Bank 0 prints `peer: ADDR aggregate: ADDR` once bound; `main.ts --peers N` starts these. See README.md.
 */
import { parseArgs } from 'node:util';
import { createBackend, DbnError, defaultBackend, InvalidOptionError } from '../../src/index.js';
import { runBank } from './distributed.js';
import { int, nonNegative } from './flags.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      input: { type: 'string' },
      bank: { type: 'string' },
      banks: { type: 'string' },
      out: { type: 'string' },
      peer: { type: 'string', multiple: true, default: [] },
      aggregate: { type: 'string' },
      scaling: { type: 'string', default: 'shared' },
      stopping: { type: 'string', default: 'validation' },
      patience: { type: 'string' },
      'pretrain-learning-rate': { type: 'string' },
      'finetune-learning-rate': { type: 'string' },
      'finetune-average': { type: 'string' },
      seed: { type: 'string', default: '1' },
      merge: { type: 'string', default: 'sum' },
      backend: { type: 'string' },
      label: { type: 'string' },
      'time-column': { type: 'string' },
      'log-columns': { type: 'string' },
      'no-time-of-day': { type: 'boolean', default: false },
      hidden: { type: 'string' },
      'pretrain-epochs': { type: 'string' },
      'finetune-epochs': { type: 'string' },
      'positive-share': { type: 'string' },
      models: { type: 'string' },
      'publish-every': { type: 'string' },
      'no-lockstep': { type: 'boolean', default: false },
      debug: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.input === undefined || values.bank === undefined || values.banks === undefined || values.out === undefined) {
    throw new InvalidOptionError('bank.ts needs --input FILE --bank I --banks N --out DIR.');
  }
  const banks = int('banks', values.banks, 1)!;
  const bank = int('bank', values.bank, 0)!;
  if (bank >= banks) throw new InvalidOptionError(`--bank must be below --banks (${banks}), got ${bank}.`);
  if (values.merge !== 'sum' && values.merge !== 'average')
    throw new InvalidOptionError(`--merge must be 'sum' or 'average', got '${values.merge}'.`);
  if (values.scaling !== 'shared' && values.scaling !== 'own')
    throw new InvalidOptionError(`--scaling must be 'shared' or 'own', got '${values.scaling}'.`);
  if (values.stopping !== 'validation' && values.stopping !== 'fixed')
    throw new InvalidOptionError(`--stopping must be 'validation' or 'fixed', got '${values.stopping}'.`);
  const rate = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!(n > 0 && Number.isFinite(n))) throw new InvalidOptionError(`--${name} must be a positive number, got '${v}'.`);
    return n;
  };
  const pretrainLearningRate = rate('pretrain-learning-rate', values['pretrain-learning-rate']);
  const fineTuneLearningRate = rate('finetune-learning-rate', values['finetune-learning-rate']);
  const share = values['positive-share'] === undefined ? undefined : Number(values['positive-share']);
  const { backend } = values.backend === undefined ? defaultBackend() : { backend: createBackend(values.backend) };
  try {
    await runBank({
      input: values.input,
      bank,
      banks,
      outDir: values.out,
      peers: values.peer,
      seed: int('seed', values.seed, 0)!,
      merge: values.merge,
      scaling: values.scaling,
      stopping: values.stopping,
      backend,
      ...(values.aggregate !== undefined ? { aggregate: values.aggregate } : {}),
      ...(values.patience !== undefined ? { patience: int('patience', values.patience, 1)! } : {}),
      ...(pretrainLearningRate !== undefined ? { pretrainLearningRate } : {}),
      ...(fineTuneLearningRate !== undefined ? { fineTuneLearningRate } : {}),
      ...(values['finetune-average'] !== undefined
        ? { fineTuneAverageEpochs: nonNegative('finetune-average', values['finetune-average']) }
        : {}),
      ...(values.label !== undefined ? { label: values.label } : {}),
      ...(values['time-column'] !== undefined ? { timeColumn: values['time-column'] } : {}),
      ...(values['log-columns'] !== undefined
        ? {
            logColumns: values['log-columns']
              .split(',')
              .map((c) => c.trim())
              .filter((c) => c !== ''),
          }
        : {}),
      timeOfDay: !values['no-time-of-day'],
      ...(values.hidden !== undefined ? { hidden: values.hidden.split(',').map((h) => int('hidden', h.trim(), 1)!) } : {}),
      ...(values['pretrain-epochs'] !== undefined ? { pretrainEpochs: int('pretrain-epochs', values['pretrain-epochs'], 0)! } : {}),
      ...(values['finetune-epochs'] !== undefined ? { fineTuneEpochs: int('finetune-epochs', values['finetune-epochs'], 1)! } : {}),
      ...(values['publish-every'] !== undefined ? { publishEvery: int('publish-every', values['publish-every'], 1)! } : {}),
      ...(share !== undefined ? { positiveShare: share } : {}),
      ...(values.models !== undefined ? { models: int('models', values.models, 1)! } : {}),
      lockstep: !values['no-lockstep'],
      onAddress: (peer, aggregate) => {
        if (aggregate !== undefined) console.log(`peer: ${peer} aggregate: ${aggregate}`);
      },
    });
  } finally {
    backend.dispose();
  }
}

main().catch((err: unknown) => {
  if (process.argv.includes('--debug') && err instanceof Error) console.error(err.stack);
  else console.error(err instanceof DbnError || err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
