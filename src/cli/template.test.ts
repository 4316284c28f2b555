import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTemplate, show } from './template.js';

const container = {
  Id: 'abc',
  Name: '/web',
  State: { Status: 'exited', ExitCode: 3, Running: false, Health: null },
  Config: { Env: ['A=1', 'B=2'], Labels: { 'com.example': 'yes' }, Cmd: ['sh', '-c', 'x'] },
  HostConfig: { Memory: 67108864 },
  Mounts: [{ Source: '/a' }, { Source: '/b' }],
};
const run = (t: string, data: unknown = container) => parseTemplate(t).execute(data);

test('field chains', () => {
  assert.equal(run('{{.State.Status}}'), 'exited');
  assert.equal(run('{{.State.ExitCode}}'), '3');
  assert.equal(run('{{.Name}}'), '/web');
  assert.equal(run('{{ .HostConfig.Memory }}'), '67108864');
  assert.equal(run('{{.State.Running}}'), 'false');
  assert.equal(run('name={{.Name}} code={{.State.ExitCode}}'), 'name=/web code=3');
});

test('json', () => {
  assert.equal(run('{{json .State}}'), '{"Status":"exited","ExitCode":3,"Running":false,"Health":null}');
  assert.equal(run('{{json .Config.Cmd}}'), '["sh","-c","x"]');
  assert.equal(run('{{json .}}', { a: '<b>' }), '{"a":"<b>"}');
});

test('Go-style printing of lists, maps and nil', () => {
  assert.equal(run('{{.Config.Env}}'), '[A=1 B=2]');
  assert.equal(run('{{.Config.Labels}}'), 'map[com.example:yes]');
  assert.equal(run('{{.State.Health}}'), '<no value>');
  assert.equal(show({ b: 1, a: [1, 'x'] }), 'map[a:[1 x] b:1]');
});

test('functions and pipes', () => {
  assert.equal(run('{{index .Config.Labels "com.example"}}'), 'yes');
  assert.equal(run('{{join .Config.Env ","}}'), 'A=1,B=2');
  assert.equal(run('{{.State.Status | upper}}'), 'EXITED');
  assert.equal(run('{{len .Mounts}}'), '2');
  assert.equal(run('{{lower "ABC"}}'), 'abc');
});

test('range, if/else, with, trim markers', () => {
  assert.equal(run('{{range .Mounts}}{{.Source}} {{end}}'), '/a /b ');
  assert.equal(run('{{if .State.Running}}up{{else}}down{{end}}'), 'down');
  assert.equal(run('{{with .Config}}{{index .Labels "com.example"}}{{end}}'), 'yes');
  assert.equal(run('a  {{- .Name -}}  b'), 'a/webb');
});

test('errors: missing keys, unknown functions, unbalanced blocks', () => {
  assert.throws(() => run('{{.Nope}}'), /map has no entry for key "Nope"/);
  assert.throws(() => run('{{.State.Health.Status}}'), /nil pointer/);
  assert.throws(() => parseTemplate('{{frobnicate .Name}}').execute(container), /function "frobnicate" not defined/);
  assert.throws(() => parseTemplate('{{if .Name}}x'), /missing \{\{end\}\}/);
  assert.throws(() => parseTemplate('{{.Name'), /unclosed action/);
});
