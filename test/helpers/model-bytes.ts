/** Hand-made model file bytes for tests of the loaders: edits that keep the checksum valid, version-1 files. */
import * as fs from 'node:fs';
import { crc32 } from 'node:zlib';
import { encodeModelFile, type ModelHeader, type NamedTensor } from '../../src/rbm/model-file.js';

/**
 * A copy of the version-2 file `buf` with `edit` applied to its bytes (the CRC-32 trailer
 * excluded) and the trailer recomputed, so the loader reaches the check behind the checksum.
 */
export function reseal(edit: (body: Buffer) => void, buf: Buffer): Buffer {
  const b = Buffer.from(buf);
  const body = b.subarray(0, b.length - 4);
  edit(body);
  b.writeUInt32LE(crc32(body), b.length - 4);
  return b;
}

/** Writes a version-2 file with any header and any values (NaN included): what a corrupt or hostile writer could produce. */
export function writeRawModel(file: string, header: ModelHeader, tensors: readonly NamedTensor[]): void {
  fs.writeFileSync(file, encodeModelFile(header, tensors));
}

/** The version-1 equivalent of the version-2 file `buf`: version field 1, no checksum trailer. */
export function asVersion1(buf: Buffer): Buffer {
  const b = Buffer.from(buf.subarray(0, buf.length - 4));
  b.writeUInt32LE(1, 4);
  return b;
}
