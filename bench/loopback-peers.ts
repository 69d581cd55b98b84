/**
 * The peer flags of peer `i` of a plaintext loopback run on `ports` (one port per peer): its
 * `--bind`, its `--shard i+1/N` and the others as `--peers`. Shared by the benches that start
 * `dbn-node train` peers on this machine.
 */
export function loopbackPeerFlags(ports: readonly number[], i: number): string[] {
  const others = ports.filter((_, j) => j !== i).map((q) => `tcp://127.0.0.1:${q}`);
  return ['--bind', `tcp://127.0.0.1:${ports[i]}`, '--plaintext', '--shard', `${i + 1}/${ports.length}`, '--peers', others.join(',')];
}
