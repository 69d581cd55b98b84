/** The vector extensions this machine's CPU reports (Linux `/proc/cpuinfo`), for benchmark JSON. */
import { readFileSync } from 'node:fs';

export interface CpuVectorFlags {
  readonly avx2: boolean;
  readonly fma: boolean;
  readonly avx512f: boolean;
}

export function cpuVectorFlags(): CpuVectorFlags | null {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags'));
    if (line === undefined) return null;
    const flags = new Set(line.split(':')[1]!.trim().split(/\s+/));
    return { avx2: flags.has('avx2'), fma: flags.has('fma'), avx512f: flags.has('avx512f') };
  } catch {
    return null;
  }
}
