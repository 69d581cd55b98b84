/**
 * No work lost on a fatal error: the model as it stands is saved as a checkpoint (with its
 * training state) before the error ends the run, and the user is told where.
 */
import { escapeText } from './escape.js';

/** What can be saved as a checkpoint: a `Dbn` (or an `Rbm`). */
export interface Checkpointable {
  save(file: string, opts: { readonly overwrite: boolean; readonly trainingState: boolean }): void;
}

/** The outcome of {@link saveCheckpointOnFatal}. */
export type FatalCheckpoint =
  | { readonly saved: true; readonly path: string }
  | { readonly saved: false; readonly path: string; readonly error: Error };

/**
 * Saves `model` with its training state to `file` (atomically, replacing an older checkpoint)
 * after a fatal error. Never throws: the error that ended the run matters more, so a failure to
 * save (for example non-finite weights, which `save` refuses so that a good checkpoint is not
 * replaced by a bad one) is returned instead. For single-process runs and, from the peer
 * training code, after a fatal `SyncError`.
 */
export function saveCheckpointOnFatal(model: Checkpointable, file: string): FatalCheckpoint {
  try {
    model.save(file, { overwrite: true, trainingState: true });
    return { saved: true, path: file };
  } catch (err) {
    return { saved: false, path: file, error: err instanceof Error ? err : new Error(String(err)) };
  }
}

/** One line for the user saying where the checkpoint went (or why there is none), `why` naming what happened. */
export function describeFatalCheckpoint(r: FatalCheckpoint, why: string): string {
  return r.saved
    ? `${why}: checkpoint saved to ${escapeText(r.path)} (continue with --resume ${escapeText(r.path)})`
    : `${why}: could not save a checkpoint to ${escapeText(r.path)}: ${escapeText(r.error.message)}`;
}
