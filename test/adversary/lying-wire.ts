/**
 * A member that lies on the wire: a real {@link PeerGroup} whose outgoing contributions pass
 * through `lie` first (the honest computation runs; only what the others receive changes).
 */
import type { PeerGroup } from '../../src/distributed/index.js';

/** What a lie sees of one outgoing contribution. */
export interface Outgoing {
  readonly round: number;
  readonly step: number;
  readonly scalars: Float64Array;
  readonly chunk: Float32Array;
}

/** Replaces `group`'s outgoing contributions by `lie(outgoing)` (or leaves them when it returns undefined). */
export function lieOnWire(group: PeerGroup, lie: (out: Outgoing) => { scalars?: Float64Array; chunk?: Float32Array } | undefined): void {
  const send = group.sendTo.bind(group);
  group.sendTo = (id, kind, meta, payload = [], round = group.next) => {
    if (kind !== 'contribution' || payload.length !== 2) return send(id, kind, meta, payload, round);
    const scalars = new Float64Array(new Uint8Array(payload[0]!).buffer.slice(0));
    const chunk = new Float32Array(new Uint8Array(payload[1]!).buffer.slice(0));
    const lied = lie({ round, step: meta['step'] as number, scalars, chunk });
    if (lied === undefined) return send(id, kind, meta, payload, round);
    const s = lied.scalars ?? scalars;
    const c = lied.chunk ?? chunk;
    send(id, kind, meta, [Buffer.from(s.buffer, s.byteOffset, s.byteLength), Buffer.from(c.buffer, c.byteOffset, c.byteLength)], round);
  };
}
