/**
 * The ZAP handler (ZeroMQ RFC 27) both transports use under CURVE: answers each authentication
 * request on `zap` (bound at `inproc://zeromq.zap.01`) with 200 when the client's CURVE key is
 * allowed, 400 otherwise, until the socket closes.
 */
import * as zmq from 'zeromq';
import { rawKey } from './identity.js';
import type { KeyPair } from './keys.js';
import { z85Encode } from './z85.js';

/** Serves `zap`; `allowed` judges a raw 32-byte key; `refused` hears who was turned away. */
export async function serveZap(zap: zmq.Router, allowed: (key: Buffer) => boolean, refused: (detail: string) => void): Promise<void> {
  for (;;) {
    let f: Buffer[];
    try {
      f = await zap.receive();
    } catch {
      return;
    }
    // ZAP request: [routing id, empty, version, request id, domain, address, identity, mechanism, credentials...].
    const [rid, empty, version, requestId, , address, , mechanism, key] = f;
    if (rid === undefined || empty === undefined || requestId === undefined) continue;
    const isCurve = mechanism?.toString() === 'CURVE' && key !== undefined && key.length === 32;
    const ok = isCurve && version?.toString() === '1.0' && allowed(key);
    if (!ok)
      refused(`${isCurve ? `key ${z85Encode(key)}` : `mechanism ${mechanism?.toString() ?? '?'}`} from ${address?.toString() ?? '?'}`);
    try {
      await zap.send([rid, empty, '1.0', requestId, ok ? '200' : '400', ok ? 'OK' : 'Key not allowed', '', '']);
    } catch {
      if (zap.closed) return;
    }
  }
}

/** CURVE socket options: a server (with ZAP domain `dbn`, enforced) or a client; `{}` in plaintext. */
export function curveOptions(keys: KeyPair | null, server: boolean): object {
  if (keys === null) return {};
  return server
    ? { curveServer: true, curveSecretKey: keys.secretKey, curvePublicKey: keys.publicKey, zapDomain: 'dbn', zapEnforceDomain: true }
    : { curveSecretKey: keys.secretKey, curvePublicKey: keys.publicKey };
}

/**
 * Binds a ZAP handler at `inproc://zeromq.zap.01` in `context` admitting only the `allowed`
 * keys (Z85); `refused` hears each refusal. Bind errors propagate.
 */
export async function startZapHandler(
  context: zmq.Context,
  allowed: Iterable<string>,
  refused: (detail: string) => void,
  bind: (socket: zmq.Router) => Promise<void>,
): Promise<zmq.Router> {
  const allowedRaw = [...allowed].map((key) => Buffer.from(rawKey(key)));
  const zap = new zmq.Router({ context, linger: 0 });
  await bind(zap);
  void serveZap(zap, (key) => allowedRaw.some((k) => k.equals(key)), refused);
  return zap;
}
