import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuPercent, memoryUsage, statsRow, type StatsSample } from './stats.js';

const sample: StatsSample = {
  id: 'f'.repeat(64),
  name: '/web',
  cpu_stats: { cpu_usage: { total_usage: 300_000_000 }, system_cpu_usage: 20_000_000_000, online_cpus: 4 },
  precpu_stats: { cpu_usage: { total_usage: 100_000_000 }, system_cpu_usage: 16_000_000_000 },
  memory_stats: { usage: 10 * 1024 * 1024, limit: 100 * 1024 * 1024, stats: { inactive_file: 2 * 1024 * 1024 } },
  blkio_stats: {
    io_service_bytes_recursive: [
      { op: 'read', value: 1000 },
      { op: 'Write', value: 2_000_000 },
      { op: 'read', value: 500 },
    ],
  },
  pids_stats: { current: 3 },
  networks: { eth0: { rx_bytes: 1200, tx_bytes: 648 }, eth1: { rx_bytes: 800, tx_bytes: 0 } },
};

test('CPU % = Δcontainer / Δsystem × CPUs × 100', () => {
  // 0.2e9 / 4e9 * 4 * 100 = 20%
  assert.equal(cpuPercent(sample), 20);
});

test('CPU % falls back to percpu_usage length and is 0 without deltas', () => {
  const s: StatsSample = {
    cpu_stats: { cpu_usage: { total_usage: 200, percpu_usage: [1, 1] }, system_cpu_usage: 2000 },
    precpu_stats: { cpu_usage: { total_usage: 100 }, system_cpu_usage: 1000 },
  };
  assert.equal(cpuPercent(s), 20);
  assert.equal(cpuPercent({ cpu_stats: sample.cpu_stats, precpu_stats: sample.cpu_stats }), 0);
  assert.equal(cpuPercent({}), 0);
});

test('memory usage excludes inactive file cache (v2 and v1 keys)', () => {
  assert.equal(memoryUsage(sample), 8 * 1024 * 1024);
  assert.equal(memoryUsage({ memory_stats: { usage: 100, stats: { total_inactive_file: 30 } } }), 70);
  assert.equal(memoryUsage({ memory_stats: { usage: 100, stats: { inactive_file: 300 } } }), 100);
});

test('statsRow formats every column like docker stats', () => {
  assert.deepEqual(statsRow(sample, 'web'), {
    BlockIO: '1.5kB / 2MB',
    CPUPerc: '20.00%',
    Container: 'web',
    ID: 'ffffffffffff',
    MemPerc: '8.00%',
    MemUsage: '8MiB / 100MiB',
    Name: 'web',
    NetIO: '2kB / 648B',
    PIDs: '3',
  });
});
