/** Inference over many rows in chunks: each chunk is uploaded into a temporary {@link Workspace}. */
import type { Backend } from '../kernels/backend.js';
import type { HostMatrix } from '../validate.js';
import { Workspace } from './workspace.js';

/** Rows processed at once by the inference methods. */
export const INFERENCE_CHUNK = 1000;

/** The layer sizes a workspace is built for. */
export interface LayerSizes {
  readonly nVisible: number;
  readonly nHidden: number;
}

/**
 * Runs `fn` on chunks of `input` uploaded into `ws.v0` (`side` 'visible') or `ws.hs` ('hidden'),
 * with temporary workspaces freed at the end.
 */
function forEachChunk(
  backend: Backend,
  input: HostMatrix,
  sizes: LayerSizes,
  side: 'visible' | 'hidden',
  fn: (ws: Workspace, start: number, n: number) => void,
): void {
  const temp = new Map<number, Workspace>();
  try {
    for (let start = 0; start < input.rows; start += INFERENCE_CHUNK) {
      const n = Math.min(INFERENCE_CHUNK, input.rows - start);
      let ws = temp.get(n);
      if (ws === undefined) {
        ws = new Workspace(backend, n, sizes.nVisible, sizes.nHidden);
        temp.set(n, ws);
      }
      backend.write(side === 'visible' ? ws.v0 : ws.hs, input.data.subarray(start * input.cols, (start + n) * input.cols));
      fn(ws, start, n);
    }
  } finally {
    for (const ws of temp.values()) ws.free();
  }
}

/** Runs `fn` on chunks of the visible rows `x` (`rows × nVisible`) uploaded into `ws.v0`. */
export function eachChunk(backend: Backend, x: HostMatrix, sizes: LayerSizes, fn: (ws: Workspace, start: number, n: number) => void): void {
  forEachChunk(backend, x, sizes, 'visible', fn);
}

/**
 * Maps visible rows (in `ws.v0`) to `cols` output columns per row; `fn` fills one chunk's slice.
 * With `overwrite` (only when `cols` is `x.cols`) the output goes over `x.data` itself: each chunk is
 * uploaded before its rows are written, and no later chunk reads them.
 */
export function mapChunks(
  backend: Backend,
  x: HostMatrix,
  sizes: LayerSizes,
  cols: number,
  fn: (ws: Workspace, out: Float32Array) => void,
  overwrite = false,
): HostMatrix {
  if (overwrite && cols !== x.cols) throw new RangeError(`mapChunks: cannot overwrite ${x.cols} columns with ${cols}`);
  const data = overwrite ? x.data.subarray(0, x.rows * cols) : new Float32Array(x.rows * cols);
  forEachChunk(backend, x, sizes, 'visible', (ws, start, n) => fn(ws, data.subarray(start * cols, (start + n) * cols)));
  return { rows: x.rows, cols, data };
}

/** Maps hidden rows (`rows × nHidden`, in `ws.hs`) to visible rows (`rows × nVisible`). */
export function mapHidden(backend: Backend, h: HostMatrix, sizes: LayerSizes, fn: (ws: Workspace, out: Float32Array) => void): HostMatrix {
  const cols = sizes.nVisible;
  const data = new Float32Array(h.rows * cols);
  forEachChunk(backend, h, sizes, 'hidden', (ws, start, n) => fn(ws, data.subarray(start * cols, (start + n) * cols)));
  return { rows: h.rows, cols, data };
}
