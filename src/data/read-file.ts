/** File access for the loaders: every failure becomes a {@link DatasetError} naming the file. */
import * as fs from 'node:fs';
import { DatasetError } from '../errors.js';

/** Maps a failed fs call on `file` to a {@link DatasetError} (`'ENOENT'` or `'EIO'`). */
export function fsError(file: string, err: unknown, hint = ''): DatasetError {
  const code = (err as { code?: unknown }).code;
  if (code === 'ENOENT') {
    return new DatasetError(`${file}: no such file${hint}.`, 'ENOENT', file, { cause: err });
  }
  const why = err instanceof Error ? err.message : String(err);
  return new DatasetError(`${file}: cannot read the file (${why}).`, 'EIO', file, { cause: err });
}

/** The whole content of `file`. */
export function readWhole(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw fsError(file, err);
  }
}

/** Opens `file` for reading; returns the descriptor and its size in bytes. */
export function openForRead(file: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw fsError(file, err);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
    return { fd, size: st.size };
  } catch (err) {
    fs.closeSync(fd);
    throw fsError(file, err);
  }
}

/** Reads up to `length` bytes of `fd` from `position` into a new buffer (shorter at end of file). */
export function readAt(file: string, fd: number, position: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  try {
    while (done < length) {
      const n = fs.readSync(fd, buf, done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
  } catch (err) {
    throw fsError(file, err);
  }
  return done === length ? buf : buf.subarray(0, done);
}
