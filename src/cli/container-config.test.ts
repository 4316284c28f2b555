import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from './args.js';
import { buildCreateRequest, CONTAINER_FLAGS, parsePorts, parseRestartPolicy, parseVolumes } from './container-config.js';

const build = (argv: string[], env: Record<string, string> = {}) =>
  buildCreateRequest(parseArgs(CONTAINER_FLAGS, argv, { interspersed: false }), (k) => env[k]);

test('flags map onto Docker create fields', () => {
  const { name, body } = build([
    '--name', 'web', '-e', 'A=1', '-e', 'HOME', '-w', '/srv', '-u', '1000:1000', '-h', 'box',
    '-it', '-m', '64m', '--cpus', '0.5', '-c', '512', '--pids-limit', '100', '--read-only',
    '--tmpfs', '/run:size=64m', '--tmpfs', '/tmp', '-v', '/host:/data:ro', '--cap-add', 'NET_ADMIN',
    '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '-l', 'a=b', '--runtime', 'runc',
    '--stop-signal', 'SIGINT', '--stop-timeout', '5', '--network', 'mynet', '--restart', 'on-failure:3',
    'busybox', 'sh', '-c', 'echo hi',
  ], { HOME: '/root' });
  assert.equal(name, 'web');
  assert.equal(body.Image, 'busybox');
  assert.deepEqual(body.Cmd, ['sh', '-c', 'echo hi']);
  assert.deepEqual(body.Env, ['A=1', 'HOME=/root']);
  assert.equal(body.WorkingDir, '/srv');
  assert.equal(body.User, '1000:1000');
  assert.equal(body.Hostname, 'box');
  assert.equal(body.Tty, true);
  assert.equal(body.OpenStdin, true);
  assert.equal(body.AttachStdin, true);
  assert.equal(body.StdinOnce, true);
  assert.deepEqual(body.Labels, { a: 'b' });
  assert.equal(body.StopSignal, 'SIGINT');
  assert.equal(body.StopTimeout, 5);
  assert.equal(body.Entrypoint, null);
  assert.equal(body.Healthcheck, null);
  const hc = body.HostConfig;
  assert.equal(hc.Memory, 64 * 1024 * 1024);
  assert.equal(hc.NanoCpus, 500_000_000);
  assert.equal(hc.CpuShares, 512);
  assert.equal(hc.PidsLimit, 100);
  assert.equal(hc.ReadonlyRootfs, true);
  assert.deepEqual(hc.Tmpfs, { '/run': 'size=64m', '/tmp': '' });
  assert.deepEqual(hc.Binds, ['/host:/data:ro']);
  assert.deepEqual(hc.CapAdd, ['NET_ADMIN']);
  assert.deepEqual(hc.CapDrop, ['ALL']);
  assert.deepEqual(hc.SecurityOpt, ['no-new-privileges']);
  assert.equal(hc.Runtime, 'runc');
  assert.equal(hc.NetworkMode, 'mynet');
  assert.deepEqual(hc.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
  assert.equal(hc.AutoRemove, false);
});

test('defaults: no command, default network, no pids limit, attach stdout/stderr', () => {
  const { name, body } = build(['busybox']);
  assert.equal(name, undefined);
  assert.equal(body.Cmd, null);
  assert.equal(body.AttachStdout, true);
  assert.equal(body.AttachStdin, false);
  assert.equal(body.HostConfig.NetworkMode, 'default');
  assert.equal(body.HostConfig.PidsLimit, null);
  assert.deepEqual(body.HostConfig.RestartPolicy, { Name: 'no', MaximumRetryCount: 0 });
});

test('--entrypoint: a string becomes [string]; empty clears it', () => {
  assert.deepEqual(build(['--entrypoint', '/bin/sh', 'img']).body.Entrypoint, ['/bin/sh']);
  assert.deepEqual(build(['--entrypoint', '', 'img']).body.Entrypoint, ['']);
  assert.deepEqual(build(['--entrypoint=', 'img']).body.Entrypoint, ['']);
});

test('healthcheck flags', () => {
  assert.deepEqual(build(['--health-cmd', 'true', '--health-interval', '1s', '--health-retries', '2', 'img']).body.Healthcheck, {
    Test: ['CMD-SHELL', 'true'],
    Interval: 1e9,
    Timeout: 0,
    StartPeriod: 0,
    Retries: 2,
  });
  assert.deepEqual(build(['--no-healthcheck', 'img']).body.Healthcheck, { Test: ['NONE'] });
  assert.throws(() => build(['--no-healthcheck', '--health-cmd', 'x', 'img']), /conflicts/);
  assert.throws(() => build(['--health-interval', '-1s', 'img']), /cannot be negative/);
});

test('memory flags: swap -1, invalid sizes', () => {
  assert.equal(build(['--memory-swap', '-1', 'img']).body.HostConfig.MemorySwap, -1);
  assert.equal(build(['--memory-reservation', '1g', 'img']).body.HostConfig.MemoryReservation, 1024 ** 3);
  assert.throws(() => build(['-m', 'abc', 'img']), { message: 'Invalid size: abc' });
});

test('--rm sets AutoRemove and conflicts with a restart policy', () => {
  assert.equal(build(['--rm', 'img']).body.HostConfig.AutoRemove, true);
  assert.throws(() => build(['--rm', '--restart', 'always', 'img']), /--restart and --rm/);
});

test('restart policy validation', () => {
  assert.deepEqual(parseRestartPolicy('always'), { Name: 'always', MaximumRetryCount: 0 });
  assert.deepEqual(parseRestartPolicy('unless-stopped'), { Name: 'unless-stopped', MaximumRetryCount: 0 });
  assert.deepEqual(parseRestartPolicy('on-failure'), { Name: 'on-failure', MaximumRetryCount: 0 });
  assert.throws(() => parseRestartPolicy('sometimes'), /invalid restart policy/);
  assert.throws(() => parseRestartPolicy('always:3'), /maximum retry count cannot be used/);
  assert.throws(() => parseRestartPolicy('on-failure:x'), /invalid maximum retry count/);
});

test('volumes: binds vs anonymous, mode validation', () => {
  assert.deepEqual(parseVolumes(['/a:/b', 'named:/c:rw', '/anon']), { binds: ['/a:/b', 'named:/c:rw'], volumes: { '/anon': {} } });
  assert.throws(() => parseVolumes(['/a:/b:xx']), /invalid mode/);
  assert.throws(() => parseVolumes(['/a:relative']), /invalid volume specification/);
});

test('ports: -p forms and --expose', () => {
  assert.deepEqual(parsePorts(['8080:80', '127.0.0.1:53:53/udp', '443'], ['9000']), {
    exposed: { '80/tcp': {}, '53/udp': {}, '443/tcp': {}, '9000/tcp': {} },
    bindings: {
      '80/tcp': [{ HostIp: '', HostPort: '8080' }],
      '53/udp': [{ HostIp: '127.0.0.1', HostPort: '53' }],
      '443/tcp': [{ HostIp: '', HostPort: '' }],
    },
  });
  assert.deepEqual(parsePorts(['8000-8001:80-81']).bindings, {
    '80/tcp': [{ HostIp: '', HostPort: '8000' }],
    '81/tcp': [{ HostIp: '', HostPort: '8001' }],
  });
  assert.deepEqual(parsePorts(['[::1]:8080:80']).bindings, { '80/tcp': [{ HostIp: '::1', HostPort: '8080' }] });
  assert.throws(() => parsePorts(['80/xyz']), /invalid proto/);
  assert.throws(() => parsePorts(['a:b']), /invalid port specification/);
});
