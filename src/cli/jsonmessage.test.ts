import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressRenderer, progressText, type RenderMode } from './jsonmessage.js';

const id = `sha256:${'e'.repeat(64)}`;
const messages = [
  { status: 'Preparing rootfs' },
  { status: 'Downloading', id: 'layer1', progressDetail: { current: 10, total: 100 } },
  { status: 'Downloading', id: 'layer1', progressDetail: { current: 50, total: 100 } },
  { status: 'Download complete', id: 'layer1' },
  { stream: 'some text\n' },
  { aux: { ID: id } },
];

function render(mode: RenderMode): string {
  let text = '';
  const r = new ProgressRenderer(mode, (s) => (text += s));
  for (const m of messages) r.handle(m, JSON.stringify(m));
  r.finish();
  return text;
}

test('plain mode prints status changes once per id', () => {
  assert.equal(
    render('plain'),
    `Preparing rootfs\nlayer1: Downloading ${progressText(messages[1] as never)}\nlayer1: Download complete\nsome text\n`,
  );
});

test('tty mode redraws an id line in place', () => {
  const out = render('tty');
  assert.match(out, /^Preparing rootfs\nlayer1: Downloading \[/);
  assert.ok(out.includes('\x1b[1A\r\x1b[2Klayer1: Download complete\r\x1b[1B'));
});

test('quiet prints only the image id; json echoes raw lines', () => {
  assert.equal(render('quiet'), `${id}\n`);
  assert.equal(render('json'), messages.map((m) => `${JSON.stringify(m)}\n`).join(''));
});

test('a final sha256 status counts as the image id (docker import)', () => {
  let text = '';
  const r = new ProgressRenderer('quiet', (s) => (text += s));
  r.handle({ status: id });
  r.finish();
  assert.equal(text, `${id}\n`);
});

test('an error in the stream throws with its message', () => {
  const r = new ProgressRenderer('plain', () => undefined);
  assert.throws(() => r.handle({ error: 'boom', errorDetail: { message: 'boom detail' } }), { message: 'boom detail' });
});

test('progress bar', () => {
  assert.equal(progressText({ progressDetail: { current: 50, total: 100 } }), `[${'='.repeat(24)}>${' '.repeat(25)}]  50B/100B`);
  assert.equal(progressText({ progress: 'custom' }), 'custom');
});
