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

/**
 * One line for the user saying where the checkpoint went (or why there is none), `why` naming what
 * happened; `next` replaces the advice to continue with `--resume` (a peer dropped from a run that
 * goes on should rejoin it instead).
 */
export function describeFatalCheckpoint(r: FatalCheckpoint, why: string, next?: string): string {
  return r.saved
    ? `${why}: checkpoint saved to ${escapeText(r.path)} (${next ?? `continue with --resume ${escapeText(r.path)}`})`
    : `${why}: could not save a checkpoint to ${escapeText(r.path)}: ${escapeText(r.error.message)}`;
}

/**
 * What a peer stopped with `code` should do next, when it is not `--resume`: a peer dropped from
 * a run that goes on (`EEXCLUDED`), or cut off from it (`EQUORUM`), rejoins it with the same
 * command and takes the running peers' model from a snapshot; its own checkpoint is for a run
 * that is gone.
 */
export function rejoinAdvice(code: string): string | undefined {
  return code === 'EEXCLUDED' || code === 'EQUORUM'
    ? "restart the same command to rejoin the run: it takes the running peers' model from a snapshot; --resume this checkpoint only if the whole run is gone"
    : undefined;
}
