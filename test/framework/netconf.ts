/**
 * A default-network bridge name and subnet private to one test or bench
 * daemon, so several daemons (and the quickstart one on vessel0/10.88.0.0/16)
 * never share a bridge. Subnets come from 10.200.0.0/13, clear of the host's,
 * and skip any /24 the host already routes (a bridge left by a killed run).
 */
import { spawnSync } from 'node:child_process';

let counter = 0;

function routedPrefixes(): Set<string> {
  const out = spawnSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' }).stdout ?? '';
  return new Set(out.split('\n').map((l) => /^(10\.\d+\.\d+)\.0\/24\b/.exec(l)?.[1]).filter((x): x is string => !!x));
}

export function privateNetwork(): { bridge: string; subnet: string; args: string[] } {
  const used = routedPrefixes();
  const a = 200 + (process.pid % 8);
  let b = 0;
  for (let tries = 0; tries < 256; tries++) {
    counter += 1;
    b = (Math.floor(process.pid / 8) * 7 + counter * 13) % 256;
    if (!used.has(`10.${a}.${b}`)) break;
  }
  const bridge = `vt${(process.pid % 0xffff).toString(16)}x${counter.toString(16)}`.slice(0, 15);
  const subnet = `10.${a}.${b}.0/24`;
  return { bridge, subnet, args: ['--bridge', bridge, '--subnet', subnet] };
}
