/**
 * `--log-format text|json`: the summary lines of `train` and one line per notable event. Text
 * keeps the lines as they always were and prefixes the ones an operator must act on with `WARN: ` (as the other warnings of the CLI);
 * JSON writes one object per line: `{ time, level, name, id, msg }` for summary lines and
 * `{ time, level, name, id, event, detail }` for events. Event details name peers by their name
 * next to the id derived from their key (`p2 (1a2b3c4d)`).
 */
import type { GroupEvent } from '../../distributed/index.js';
import type { Progress } from '../progress.js';

export type LogFormat = 'text' | 'json';
export type Level = 'info' | 'warn';

/** Group events an operator must act on. */
const WARN_EVENTS: ReadonlySet<string> = new Set(['peer-lost', 'refused', 'warning']);

/** Who is logging, for JSON lines and to name peers in details. */
export interface LogIdentity {
  readonly name: string;
  id: string | null;
  /** The name of a peer by the first 8 hex of its id. */
  nameOf(shortId: string): string | undefined;
}

/** Writes summary lines and events in one format. */
export class RunLog {
  constructor(
    private readonly progress: Progress,
    readonly format: LogFormat,
    private readonly who: LogIdentity,
  ) {}

  /** A summary line (as `Progress.line`). */
  line(text: string): void {
    if (this.format === 'text') this.progress.line(text);
    else this.progress.line(this.json('info', { msg: text }));
  }

  /** A notable event; `level` defaults to WARN for lost peers, refusals and warnings. */
  event(event: string, detail: string, level: Level = WARN_EVENTS.has(event) ? 'warn' : 'info'): void {
    const named = this.nameIds(detail);
    if (this.format === 'text') this.progress.line(`${level === 'warn' ? 'WARN: ' : ''}peer ${event}: ${named}`);
    else this.progress.line(this.json(level, { event, detail: named }));
  }

  /**
   * A warning for stderr, before the run has a peer id: `WARN: <event>: <text>` in text, one
   * `{ time, level: 'warn', name, id, event, detail }` object in JSON.
   */
  warning(event: string, text: string): string {
    return this.format === 'text' ? `WARN: ${event}: ${text}` : this.json('warn', { event, detail: text });
  }

  /** A group event. */
  groupEvent(e: GroupEvent): void {
    this.event(e.event, e.detail);
  }

  /** `detail` with every known peer id (8 hex) preceded by its peer's name. */
  nameIds(detail: string): string {
    return detail.replace(/\b[0-9a-f]{8}\b/g, (id) => {
      const name = this.who.nameOf(id);
      return name === undefined || name === id ? id : `${name} (${id})`;
    });
  }

  private json(level: Level, fields: Record<string, unknown>): string {
    return JSON.stringify({ time: new Date().toISOString(), level, name: this.who.name, id: this.who.id, ...fields });
  }
}

/** A {@link Progress} whose summary lines go through `log` (bars are unchanged). */
export function loggedProgress(progress: Progress, log: RunLog): Progress {
  return {
    start: (title, total) => progress.start(title, total),
    update: (done, fields) => progress.update(done, fields),
    stop: () => progress.stop(),
    line: (text) => log.line(text),
  };
}
