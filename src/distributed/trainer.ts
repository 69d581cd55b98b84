/**
 * The trainer front end of peer training: bring a {@link Dbn} into a run (fresh, from a
 * snapshot, or the finished model), train it with the group as its collective, and finish so
 * that every replica ends with the same bits.
 *
 * @example
 * const group = await PeerGroup.open({ runId: 'mnist', fingerprint: runFingerprint(dbn, schedule), … });
 * const run = await enterRun(group, dbn, 'run/.peer-snapshot.dbn');
 * if (!run.finished) {
 *   await run.model.pretrain(x, { collective: group });
 *   await run.model.fineTune(x, y, { collective: group, classes: 10 });
 * }
 * await group.finish(() => modelBytes(run.model, 'run/.peer-final.dbn'));
 * group.close();
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Dbn } from '../dbn/index.js';
import { modelFingerprint } from '../sync/fingerprint.js';
import type { PeerGroup } from './group.js';
import type { StartResult } from './join.js';

/** A model brought into a run. */
export interface RunEntry {
  /** The model to train: the one given (a fresh run) or a new one loaded from a snapshot. */
  readonly model: Dbn;
  /** How this peer entered. */
  readonly start: StartResult;
  /** True when the run had already finished: `model` is its final model; do not train. */
  readonly finished: boolean;
}

/**
 * Starts `group` and brings `model` into the run. Joining from a snapshot or receiving the final
 * model writes those bytes to `scratchFile` first (a checkpoint), loads them on the model's
 * backend and disposes `model`. Sets the group's snapshot provider (the leader sends snapshots
 * to peers that join later).
 */
export async function enterRun(group: PeerGroup, model: Dbn, scratchFile: string): Promise<RunEntry> {
  const start = await group.start();
  let current = model;
  if (start.kind !== 'fresh') {
    writeBytes(scratchFile, start.kind === 'joined' ? start.snapshot : start.model);
    const loaded =
      start.kind === 'joined' ? Dbn.resume(scratchFile, { backend: model.backend }) : Dbn.load(scratchFile, { backend: model.backend });
    loaded.metadata = { ...loaded.metadata, ...model.metadata };
    model.dispose();
    current = loaded;
  }
  const m = current;
  group.snapshotProvider = () => modelBytes(m, scratchFile, true);
  return { model: current, start, finished: start.kind === 'finished' };
}

/** The bytes of `model` in the model-file format (via `scratchFile`), with or without training state. */
export function modelBytes(model: Dbn, scratchFile: string, trainingState = false): Buffer {
  model.save(scratchFile, { overwrite: true, trainingState });
  return fs.readFileSync(scratchFile);
}

function writeBytes(file: string, bytes: Buffer): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    fs.writeSync(fd, bytes);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/**
 * The fingerprint peers compare before training together: the architecture, the seed and the
 * whole training schedule (every option that changes which rounds run or what they compute).
 */
export function runFingerprint(model: Dbn, schedule: Record<string, unknown>): string {
  return modelFingerprint({
    format: 'dbn-node-rounds/1',
    nVisible: model.nVisible,
    seed: model.seed,
    layers: model.layers.map((l) => l.options),
    schedule,
  });
}
