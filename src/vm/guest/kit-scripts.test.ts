import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { INITRAMFS_INIT, KIT_INIT } from './initramfs-script.js';
import { IDENTITY_SH, KIT, KIT_COMMANDS } from './kit-scripts.js';
import { kitScripts } from './kit.js';

test('every guest script parses under busybox sh', () => {
  const scripts = { ...kitScripts(), init: INITRAMFS_INIT };
  for (const [name, text] of Object.entries(scripts)) {
    const r = spawnSync('busybox', ['sh', '-n'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
  }
});

test('the kit has a script for each command it claims and the initramfs hands over to its init', () => {
  const files = kitScripts();
  for (const c of KIT_COMMANDS) assert.ok(files[`${KIT.bin}/${c}`]?.startsWith('#!/.vessel/bin/busybox sh\n'), c);
  assert.ok(files[`${KIT.root}/init`]);
  assert.equal(`/${KIT.root}/init`, KIT_INIT);
});

/** Runs identity.sh's vessel_param against a fake command line (the function reads /proc/cmdline). */
function param(cmdline: string, name: string): string {
  const fn = IDENTITY_SH.replace('$(cat /proc/cmdline)', '$CMDLINE');
  const r = spawnSync('busybox', ['sh', '-c', `${fn}\nvessel_param "$1"`, 'sh', name], { encoding: 'utf8', env: { CMDLINE: cmdline, PATH: '/usr/bin:/bin' } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.replace(/\n$/, '');
}

test('vessel_param reads exact names, the last occurrence, and never globs', () => {
  const line = 'console=ttyS0 vessel.net0=52:54:00:00:00:01,10.0.0.2/24 vessel.net01=x vessel.hostname=a vessel.hostname=b star=* vessel.root=/dev/vda';
  assert.equal(param(line, 'vessel.hostname'), 'b');
  assert.equal(param(line, 'vessel.net0'), '52:54:00:00:00:01,10.0.0.2/24');
  assert.equal(param(line, 'star'), '*');
  assert.equal(param(line, 'vessel.dns'), '');
});
