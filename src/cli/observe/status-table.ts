/**
 * `dbn-node status`: reads a peer's `/status` and prints it as a table, so an operator can look at
 * any peer of a run from a terminal.
 */
import { StatusError } from '../../errors.js';
import type { PeerStatus, StatusDocument } from './state.js';

/** The `/status` URL of `url` (`http://host:port`, with or without `/status`). */
export function statusUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new StatusError(`--url must be an http:// URL such as http://127.0.0.1:9100, got '${url}'.`, 'EBADSTATUS');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new StatusError(`--url must be an http:// URL such as http://127.0.0.1:9100, got '${url}'.`, 'EBADSTATUS');
  if (!u.pathname.endsWith('/status')) u.pathname = `${u.pathname.replace(/\/+$/, '')}/status`;
  return u;
}

/** Fetches and checks a `/status` document (bounded by `timeoutMs`). */
export async function fetchStatus(url: string, timeoutMs: number): Promise<StatusDocument> {
  const u = statusUrl(url);
  let res: Response;
  try {
    res = await fetch(u, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const inner = (err as { cause?: { code?: string; message?: string } }).cause;
    const cause = inner?.code ?? inner?.message ?? (err as Error).message;
    throw new StatusError(
      `Cannot reach ${u.href} (${cause}): is the peer running with --metrics-port, and is --metrics-host reachable from here?`,
      'EUNREACHABLE',
      { cause: err },
    );
  }
  if (!res.ok) throw new StatusError(`${u.href} answered HTTP ${res.status}: not a dbn-node --metrics-port server?`, 'EHTTP');
  const text = await res.text();
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new StatusError(`${u.href} did not answer JSON: not a dbn-node --metrics-port server?`, 'EBADSTATUS');
  }
  return checkStatus(doc, u.href);
}

/** `doc` as a status document, or a StatusError naming what is missing. */
export function checkStatus(doc: unknown, from: string): StatusDocument {
  const d = doc as Partial<StatusDocument> | null;
  const ok =
    typeof d === 'object' &&
    d !== null &&
    typeof d.self === 'object' &&
    d.self !== null &&
    typeof d.self.name === 'string' &&
    Array.isArray(d.peers) &&
    typeof d.run === 'object' &&
    d.run !== null;
  if (!ok) throw new StatusError(`${from} is not a dbn-node status document (it needs 'self', 'run' and 'peers').`, 'EBADSTATUS');
  return d as StatusDocument;
}

const num = (v: number | null | undefined, digits = 4): string =>
  v === null || v === undefined || !Number.isFinite(v)
    ? '–'
    : Number.isInteger(v)
      ? String(v)
      : Math.abs(v) < 1e-3 && v !== 0
        ? v.toExponential(2)
        : v.toFixed(digits);

/** A byte count for people. */
export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Rows of cells as columns padded to their widest cell (numbers right-aligned). */
export function formatColumns(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const right = (c: number): boolean => rows.slice(1).every((r) => /^[-\d.,]+( [KMG]?i?B| s)?$|^–$/.test(r[c]!));
  return rows
    .map((r) =>
      r
        .map((cell, c) => (right(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function peerRow(p: PeerStatus): string[] {
  return [
    p.name,
    p.id.slice(0, 8),
    p.endpoint ?? '?',
    p.member ? 'yes' : 'no',
    p.lastHeardSecondsAgo === null ? '–' : `${p.lastHeardSecondsAgo.toFixed(1)} s`,
    String(p.stage),
    String(p.epoch),
    String(p.round),
    num(p.divergence, 6),
    formatBytes(p.sentBytes),
    formatBytes(p.receivedBytes),
  ];
}

/** The status document as text: this peer in two lines, then one row per peer. */
export function formatStatusTable(doc: StatusDocument): string {
  const s = doc.self;
  const r = doc.run;
  const refused =
    Object.entries(r.refusals)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || 'none';
  const lines = [
    `${s.name}${s.id === null ? '' : ` (${s.id.slice(0, 8)})`}  ${s.endpoint ?? '(one process)'}  ${s.mode}  ${s.phase}  stage ${s.stage}  epoch ${s.epoch}  round ${s.round}  view ${s.view}  ${s.members} member(s)  up ${s.uptimeSeconds.toFixed(0)} s`,
    `recon ${num(s.reconstructionError)}  loss ${num(s.loss)}  val acc ${num(s.validationAccuracy)}  minibatches ${s.minibatches}  rounds ${r.rounds}  waited ${r.barrierWaitSeconds.toFixed(1)} s  suspected ${r.suspects}  admitted ${r.joins}  snapshots served ${r.snapshotsServed} taken ${r.snapshotsTaken}  refused ${refused}`,
  ];
  if (doc.peers.length === 0) return `${lines.join('\n')}\n(no other peers)\n`;
  const header = ['NAME', 'ID', 'ENDPOINT', 'MEMBER', 'HEARD', 'STAGE', 'EPOCH', 'ROUND', 'DIVERGENCE', 'SENT', 'RECEIVED'];
  return `${lines.join('\n')}\n\n${formatColumns([header, ...doc.peers.map(peerRow)])}\n`;
}
