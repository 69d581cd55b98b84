import test from 'ava';
import { Dbn } from '../../src/dbn/index.js';
import { loadBundledDigits } from '../../src/data/bundled-digits.js';
import type { HostMatrix } from '../../src/validate.js';
import { cpuBackends } from '../helpers/backends.js';

/**
 * The classic semi-supervised effect (Hinton, Osindero & Teh 2006; Erhan et al. 2010): generative
 * pretraining on unlabelled digits gives a better classifier from few labels than the same network
 * trained from a random init. Runs on the fastest CPU backend that starts.
 */
const backendEntry = cpuBackends.find((b) => b.name === 'native') ?? cpuBackends[0];

if (backendEntry === undefined) {
  test.skip('semi-supervised digits: no CPU backend starts', () => {});
} else {
  test(`${backendEntry.name}: pretraining on 2000 unlabelled digits beats random init when fine-tuning on 200 labelled ones`, async (t) => {
    const backend = backendEntry.make();
    const digits = loadBundledDigits();
    const rows = (a: number, b: number): HostMatrix => ({ rows: b - a, cols: 784, data: digits.x.data.subarray(a * 784, b * 784) });
    const labels = (a: number, b: number): Int32Array => (digits.y as Int32Array).subarray(a, b);
    const unlabelled = rows(0, 2000);
    const labelled = rows(2000, 2200);
    const labelledY = labels(2000, 2200);
    const heldOut = rows(3000, 4000);
    const heldOutY = labels(3000, 4000);
    const spec = {
      nVisible: 784,
      layers: [
        { nHidden: 300, epochs: 10, monitorSize: 0 },
        { nHidden: 300, epochs: 10, monitorSize: 0 },
      ],
      seed: 1,
      backend,
    };
    const fineTune = { epochs: 100, validationFraction: 0.2, patience: 15 } as const;

    const pretrained = new Dbn(spec);
    await pretrained.pretrain(unlabelled);
    await pretrained.fineTune(labelled, labelledY, fineTune);
    const withPretraining = pretrained.evaluate(heldOut, heldOutY).accuracy;

    const random = new Dbn(spec);
    await random.fineTune(labelled, labelledY, fineTune);
    const fromRandom = random.evaluate(heldOut, heldOutY).accuracy;

    t.log(`held-out accuracy: pretrained ${withPretraining}, random init ${fromRandom}`);
    t.true(withPretraining > fromRandom + 0.02, `pretrained ${withPretraining} vs random init ${fromRandom}`);
    t.true(withPretraining > 0.75);
    pretrained.dispose();
    random.dispose();
    backend.dispose();
  });
}
