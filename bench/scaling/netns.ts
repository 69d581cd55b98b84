/**
 * A rate-limited network for bench/scaling.ts: one network namespace per peer, each joined by a
 * veth pair to a bridge in a hub namespace of its own, with a `tc tbf` token bucket on both ends of
 * every pair (the peer's upload and its download are each limited to the rate). Only addresses
 * assigned here, inside these namespaces, are used; the host's own network is not touched.
 * Needs root (`ip netns`, `tc`).
 */
import { execFileSync } from 'node:child_process';

/** The namespaces of one series and the address of each peer. */
export interface RateLimitedNet {
  readonly hub: string;
  readonly peers: readonly { readonly netns: string; readonly address: string }[];
  /** Bytes through each token bucket and how often it had to hold packets back (`tc -s` counters). */
  counters(): { readonly device: string; readonly sentBytes: number; readonly overlimits: number; readonly dropped: number }[];
  /** Deletes every namespace (and with them the veth pairs and the bridge). Safe to call twice. */
  remove(): void;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function tokenBucket(netns: string, device: string, rateMbit: number): void {
  // A bucket of at least 5 ms at the rate and never under 128 KiB, so segmentation-offloaded
  // packets (up to 64 KiB) always fit; up to 100 ms of traffic may queue before drops.
  const burstBytes = Math.max(128 * 1024, Math.round(((rateMbit * 1e6) / 8) * 0.005));
  execFileSync(
    'ip',
    [
      'netns',
      'exec',
      netns,
      'tc',
      'qdisc',
      'add',
      'dev',
      device,
      'root',
      'tbf',
      'rate',
      `${rateMbit}mbit`,
      'burst',
      String(burstBytes),
      'latency',
      '100ms',
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
}

/** Names of every namespace this process may have created, for cleanup. */
const created = new Set<string>();

/** Deletes every namespace created by this process that still exists. */
export function removeAllNamespaces(): void {
  for (const name of [...created]) {
    try {
      ip('netns', 'delete', name);
    } catch {
      // already gone
    }
    created.delete(name);
  }
}

/**
 * Creates `count` peer namespaces (`<prefix>p<i>`, address 10.231.0.<i+1>/24) on a bridge in
 * `<prefix>hub`, every veth end limited to `rateMbit` Mbit/s.
 */
export function createRateLimitedNet(prefix: string, count: number, rateMbit: number): RateLimitedNet {
  const hub = `${prefix}hub`;
  const peers: { netns: string; address: string }[] = [];
  const devices: { netns: string; device: string }[] = [];
  try {
    ip('netns', 'add', hub);
    created.add(hub);
    ip('-n', hub, 'link', 'set', 'lo', 'up');
    ip('-n', hub, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', hub, 'link', 'set', 'br0', 'up');
    for (let i = 0; i < count; i++) {
      const netns = `${prefix}p${i}`;
      const address = `10.231.0.${i + 1}`;
      ip('netns', 'add', netns);
      created.add(netns);
      ip('-n', netns, 'link', 'set', 'lo', 'up');
      ip('link', 'add', `vp${i}`, 'netns', netns, 'type', 'veth', 'peer', 'name', `vh${i}`, 'netns', hub);
      ip('-n', netns, 'addr', 'add', `${address}/24`, 'dev', `vp${i}`);
      ip('-n', netns, 'link', 'set', `vp${i}`, 'up');
      ip('-n', hub, 'link', 'set', `vh${i}`, 'master', 'br0');
      ip('-n', hub, 'link', 'set', `vh${i}`, 'up');
      tokenBucket(netns, `vp${i}`, rateMbit);
      tokenBucket(hub, `vh${i}`, rateMbit);
      devices.push({ netns, device: `vp${i}` }, { netns: hub, device: `vh${i}` });
      peers.push({ netns, address });
    }
  } catch (err) {
    removeAllNamespaces();
    throw err;
  }
  return {
    hub,
    peers,
    counters: () =>
      devices.map(({ netns, device }) => {
        const text = execFileSync('ip', ['netns', 'exec', netns, 'tc', '-s', 'qdisc', 'show', 'dev', device], { encoding: 'utf8' });
        const sent = /Sent (\d+) bytes \d+ pkt \(dropped (\d+), overlimits (\d+)/.exec(text);
        return {
          device: `${netns}/${device}`,
          sentBytes: Number(sent?.[1] ?? NaN),
          dropped: Number(sent?.[2] ?? NaN),
          overlimits: Number(sent?.[3] ?? NaN),
        };
      }),
    remove: () => {
      for (const name of [hub, ...peers.map((p) => p.netns)]) {
        if (!created.has(name)) continue;
        try {
          ip('netns', 'delete', name);
        } catch {
          // already gone
        }
        created.delete(name);
      }
    },
  };
}
