/** Socket helpers shared by the parts of a {@link Peer}: the receive loop and handshake watching. */
import type * as zmq from 'zeromq';

/** What the parts of a peer that open sockets need of it. */
export interface SocketHost {
  readonly context: zmq.Context;
  /** The largest frame the receiving sockets take. */
  frameLimit(): number;
  isClosed(): boolean;
  /** Counts and reports failed handshakes on `socket`, then calls `after`. */
  watchHandshakes(socket: zmq.Socket, after?: () => void): void;
  receiveLoop(socket: ReceivingSocket, handle: (frames: Buffer[]) => void): void;
  warn(err: unknown): void;
}

/** Any socket a peer receives on. */
export type ReceivingSocket = zmq.Subscriber | zmq.Router | zmq.XPublisher | zmq.Dealer;

/**
 * Receives on `socket` until it or its owner closes, handing each message to `handle`; an error
 * thrown by `handle`, or by a receive while both are open, goes to `warn` (the loop goes on after
 * the former, ends after the latter).
 */
export function receiveLoop(
  socket: ReceivingSocket,
  handle: (frames: Buffer[]) => void,
  isClosed: () => boolean,
  warn: (err: unknown) => void,
): void {
  void (async () => {
    for (;;) {
      let frames: Buffer[];
      try {
        frames = await socket.receive();
      } catch (err) {
        if (!isClosed() && !socket.closed) warn(err);
        return;
      }
      if (isClosed()) return;
      try {
        handle(frames);
      } catch (err) {
        warn(err);
      }
    }
  })();
}

/** Calls `onFail` for each failed handshake on `socket` (wrong key, CURVE vs plaintext …). */
export function watchHandshakes(socket: zmq.Socket, onFail: (e: { address: string; error: Error }) => void): void {
  socket.events.on('handshake:error:auth', onFail);
  socket.events.on('handshake:error:protocol', onFail);
  socket.events.on('handshake:error:other', onFail);
}
