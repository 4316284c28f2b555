/**
 * A default-network bridge name and subnet private to one test or bench
 * daemon, so several daemons (and the quickstart one on vessel0/10.88.0.0/16)
 * never share a bridge. Subnets come from 10.200.0.0/13, clear of the host's.
 */
let counter = 0;

export function privateNetwork(): { bridge: string; subnet: string; args: string[] } {
  counter += 1;
  const a = 200 + (process.pid % 8);
  const b = (Math.floor(process.pid / 8) * 7 + counter * 13) % 256;
  const bridge = `vt${(process.pid % 0xffff).toString(16)}x${counter.toString(16)}`.slice(0, 15);
  const subnet = `10.${a}.${b}.0/24`;
  return { bridge, subnet, args: ['--bridge', bridge, '--subnet', subnet] };
}
