/**
 * Progress bars and summary lines for long work. Bars go to stderr and only when it is a TTY
 * (cli-progress handles redraws); otherwise one line per epoch is printed, so logs stay readable.
 */
import { SingleBar, Presets } from 'cli-progress';

/** A progress reporter for one phase (a layer's pretraining, fine-tuning). */
export interface Progress {
  start(title: string, total: number): void;
  update(done: number, fields?: Record<string, string | number>): void;
  stop(): void;
  /** A human summary line (always printed, on stderr when bars are on, else stdout). */
  line(text: string): void;
}

/** A reporter: bars when `stderr` is a TTY and `quiet` is false; plain lines otherwise. */
export function createProgress(opts: { readonly quiet?: boolean } = {}): Progress {
  const tty = process.stderr.isTTY === true && opts.quiet !== true;
  let bar: SingleBar | undefined;
  return {
    start(title, total) {
      if (!tty) return;
      bar = new SingleBar(
        {
          format: `${title.padEnd(18)} {bar} {percentage}% | {value}/{total} | eta {eta_formatted} | {info}`,
          hideCursor: true,
          clearOnComplete: true,
        },
        Presets.shades_classic,
      );
      bar.start(total, 0, { info: '' });
    },
    update(done, fields) {
      if (bar === undefined) return;
      const info =
        fields === undefined
          ? ''
          : Object.entries(fields)
              .map(([k, v]) => `${k} ${typeof v === 'number' ? fmt(v) : v}`)
              .join(' ');
      bar.update(done, { info });
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
    line(text) {
      if (opts.quiet === true) return;
      if (tty) process.stderr.write(`${text}\n`);
      else process.stdout.write(`${text}\n`);
    },
  };
}

/** A number in a short human form. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toFixed(4);
}
