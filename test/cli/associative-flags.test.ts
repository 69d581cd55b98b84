import test from 'ava';
import { associativeFor } from '../../src/cli/associative.js';
import type { Dataset } from '../../src/data/index.js';
import { InvalidOptionError } from '../../src/errors.js';

const train = { x: { rows: 4, cols: 2, data: new Float32Array(8) }, y: Int32Array.from([0, 1, 2, 1]), classes: 3 } as unknown as Dataset;
const progress = { line: (): void => undefined };

test('--associative-k sets the associative layer’s CD-k (default 3, whatever --k) and must be an integer >= 1', (t) => {
  t.is(associativeFor({ associative: 20, epochs: 5, k: 1 }, train, false, progress)?.k, 3);
  t.is(associativeFor({ associative: 20, epochs: 5, k: 2 }, train, false, progress)?.k, 3);
  t.deepEqual(associativeFor({ associative: 20, 'associative-k': 1, epochs: 5, k: 2 }, train, false, progress), {
    classes: 3,
    nHidden: 20,
    epochs: 5,
    k: 1,
  });
  for (const bad of [0, 1.5, -2]) {
    t.throws(() => associativeFor({ associative: 20, 'associative-k': bad, epochs: 5, k: 1 }, train, false, progress), {
      instanceOf: InvalidOptionError,
      message: new RegExp(`--associative-k must be an integer >= 1, got ${bad}`),
    });
  }
});
