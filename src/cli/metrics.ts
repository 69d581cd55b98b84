/** `--metrics out.jsonl`: one JSON object per line, appended as training goes. */
import * as fs from 'node:fs';

/** Appends JSON lines to a file opened once; `close()` flushes. */
export class MetricsWriter {
  private readonly fd: number;

  /** Opens `file` for appending (created if missing; existing lines are kept, never truncated). */
  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'a');
  }

  write(record: Record<string, unknown>): void {
    fs.writeSync(this.fd, `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
