/**
 * The typed errors of dbn-node. Every failure the library reports is a {@link DbnError};
 * subclasses say what kind of thing went wrong, and `code` says exactly which.
 */

/** Base class of every error raised by dbn-node. */
export class DbnError extends Error {
  /** A stable machine-readable code, e.g. `'EINVALIDOPTION'`. */
  readonly code: string;

  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An option passed to a constructor or method is missing, of the wrong type or out of range. */
export class InvalidOptionError extends DbnError {
  constructor(message: string) {
    super(message, 'EINVALIDOPTION');
  }
}

/** Input data has the wrong shape, or non-finite / out-of-domain values. */
export class ShapeMismatchError extends DbnError {
  /** `code` is `'ESHAPE'` unless a finer one is given (the host kernels name each fault: `src/kernels/host/checks.ts`). */
  constructor(message: string, code = 'ESHAPE') {
    super(message, code);
  }
}

/** Input data contains values outside the domain a model accepts (NaN, Inf, Bernoulli data outside [0, 1]). */
export class InvalidDataError extends DbnError {
  constructor(message: string) {
    super(message, 'EDATA');
  }
}

/** A method that needs learned parameters was called before `fit`/`partialFit`/`load`. */
export class NotFittedError extends DbnError {
  constructor(message: string) {
    super(message, 'ENOTFITTED');
  }
}

/** A compute backend was asked for but cannot start on this machine; `reason` says why. */
export class BackendUnavailableError extends DbnError {
  readonly backend: string;
  readonly reason: string;

  constructor(backend: string, reason: string) {
    super(`Backend '${backend}' is unavailable: ${reason}`, 'EBACKEND');
    this.backend = backend;
    this.reason = reason;
  }
}

/** Codes of {@link ModelFileError}. */
export type ModelFileErrorCode =
  | 'ENOENT'
  | 'ETRUNCATED'
  | 'EMAGIC'
  | 'EVERSION'
  | 'EHEADER'
  | 'ESIZE'
  | 'ENONFINITE'
  | 'EKIND'
  | 'EEXIST'
  | 'EIO'
  | 'ECHECKSUM';

/** A model file cannot be read or written: missing, truncated, wrong magic/version, bad header, wrong sizes, NaN/Inf. */
export class ModelFileError extends DbnError {
  readonly path: string;

  constructor(path: string, code: ModelFileErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${path}: ${message}`, code, options);
    this.path = path;
  }
}

/** Codes of {@link DatasetError} raised by `src/data/` (other codes may be used elsewhere). */
export type DatasetErrorCode =
  | 'EDATASET'
  | 'ENOENT'
  | 'EIO'
  | 'EEMPTY'
  | 'EMAGIC'
  | 'ETYPE'
  | 'ETRUNCATED'
  | 'ESIZE'
  | 'EGZIP'
  | 'ESHAPE'
  | 'EHEADER'
  | 'ECOLUMN'
  | 'ERAGGED'
  | 'EQUOTE'
  | 'ENONNUMERIC'
  | 'ENONFINITE'
  | 'ELABEL'
  | 'EMISSING';

/** A dataset file or array is malformed; the message names the file, the place and what was expected. */
export class DatasetError extends DbnError {
  readonly file: string | undefined;

  constructor(message: string, code = 'EDATASET', file?: string, options?: { cause?: unknown }) {
    super(message, code, options);
    this.file = file;
  }
}

/** Codes of {@link WireFormatError}. */
export type WireFormatErrorCode =
  | 'EFRAMES'
  | 'ETRUNCATED'
  | 'EMAGIC'
  | 'EVERSION'
  | 'EKIND'
  | 'ETOPIC'
  | 'ESHAPE'
  | 'ELENGTH'
  | 'ENONFINITE'
  | 'EINDEX'
  | 'EFIELD'
  | 'ECRC';

/** A multipart message received from a peer is malformed. */
export class WireFormatError extends DbnError {
  constructor(code: WireFormatErrorCode, message: string) {
    super(message, code);
  }
}

/** A network/peer-to-peer operation failed (bind, connect, keys, ZAP). */
export class SyncError extends DbnError {
  constructor(message: string, code = 'ESYNC', options?: { cause?: unknown }) {
    super(message, code, options);
  }
}

/** `dbn-node status` could not read a peer's `/status` (`EUNREACHABLE`, `EHTTP`, `EBADSTATUS`). */
export class StatusError extends DbnError {
  constructor(message: string, code: 'EUNREACHABLE' | 'EHTTP' | 'EBADSTATUS', options?: { cause?: unknown }) {
    super(message, code, options);
  }
}
