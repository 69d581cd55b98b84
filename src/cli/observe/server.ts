/**
 * The HTTP side of `--metrics-port`: `/metrics` (Prometheus text), `/status` (JSON), `/` (the
 * dashboard) and `/filters.png`, `/samples.png` (the model's current pictures). GET and HEAD only;
 * nothing is written through it. It listens on 127.0.0.1 unless `--metrics-host` says otherwise.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { InvalidOptionError } from '../../errors.js';
import { DASHBOARD_HTML } from './dashboard.js';
import type { RunState } from './state.js';

/** Renders a picture of the model now, or undefined when there is none (no square inputs, no model yet). */
export type PictureSource = (which: 'filters' | 'samples') => Buffer | undefined;

/** A running observation server. */
export interface ObserveServer {
  /** `http://host:port` it serves on. */
  readonly url: string;
  close(): Promise<void>;
}

/** Pictures are rendered at most this often (sampling the model costs a few Gibbs steps). */
const PICTURE_TTL_MS = 5000;

function send(res: http.ServerResponse, status: number, type: string, body: string | Buffer, head: boolean): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(head ? undefined : body);
}

function handler(state: RunState, registry: Registry, pictures: PictureSource): http.RequestListener {
  const cache = new Map<string, { at: number; png: Buffer | undefined }>();
  const picture = (which: 'filters' | 'samples'): Buffer | undefined => {
    const hit = cache.get(which);
    if (hit !== undefined && Date.now() - hit.at < PICTURE_TTL_MS) return hit.png;
    let png: Buffer | undefined;
    try {
      png = pictures(which);
    } catch {
      png = undefined;
    }
    cache.set(which, { at: Date.now(), png });
    return png;
  };
  return (req, res) => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      send(res, 405, 'text/plain; charset=utf-8', 'only GET and HEAD\n', false);
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    switch (url.pathname) {
      case '/metrics':
        registry.metrics().then(
          (text) => send(res, 200, registry.contentType, text, head),
          (err: unknown) => send(res, 500, 'text/plain; charset=utf-8', `${(err as Error).message}\n`, head),
        );
        return;
      case '/status':
        send(res, 200, 'application/json; charset=utf-8', `${JSON.stringify(state.status())}\n`, head);
        return;
      case '/':
        send(res, 200, 'text/html; charset=utf-8', DASHBOARD_HTML, head);
        return;
      case '/filters.png':
      case '/samples.png': {
        const png = picture(url.pathname === '/filters.png' ? 'filters' : 'samples');
        if (png === undefined) send(res, 404, 'text/plain; charset=utf-8', 'no picture yet\n', head);
        else send(res, 200, 'image/png', png, head);
        return;
      }
      default:
        send(res, 404, 'text/plain; charset=utf-8', 'not found: try /, /status or /metrics\n', head);
    }
  };
}

/** Listens on `host:port` (port 0: any free port); rejects with an InvalidOptionError naming the flag when it cannot. */
export async function startObserveServer(
  host: string,
  port: number,
  state: RunState,
  registry: Registry,
  pictures: PictureSource,
): Promise<ObserveServer> {
  const server = http.createServer(handler(state, registry, pictures));
  server.keepAliveTimeout = 2000;
  server.headersTimeout = 5000;
  server.requestTimeout = 10_000;
  server.maxConnections = 64;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new InvalidOptionError(`--metrics-port ${port} on --metrics-host ${host}: cannot listen (${err.code ?? err.message}).`)),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
