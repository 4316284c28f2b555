import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../core/errors.js';
import { expand, expandWords, splitWords, unquote } from './expand.js';
import { parseDockerfile, type Instruction } from './parser.js';
import { expandInstruction } from './resolve.js';

const vars = new Map([
  ['A', 'a'],
  ['B', 'b b'],
  ['EMPTY', ''],
  ['HOME', '/root'],
  ['under_score1', 'u'],
]);

test('$var and ${var}', () => {
  assert.equal(expand('$A', vars), 'a');
  assert.equal(expand('${A}', vars), 'a');
  assert.equal(expand('x$A-y', vars), 'xa-y');
  assert.equal(expand('${A}bc', vars), 'abc');
  assert.equal(expand('$Abc', vars), ''); // the name is Abc
  assert.equal(expand('$under_score1!', vars), 'u!');
  assert.equal(expand('$HOME/bin:${HOME}/sbin', vars), '/root/bin:/root/sbin');
});

test('unset variables expand to nothing; a lone $ stays', () => {
  assert.equal(expand('[$NOPE][${NOPE}]', vars), '[][]');
  assert.equal(expand('cost: 5$', vars), 'cost: 5$');
  assert.equal(expand('$ $- $/', vars), '$ $- $/');
  assert.equal(expand('$1x', vars), 'x');
});

test('${var:-default} and ${var-default}', () => {
  assert.equal(expand('${A:-d}', vars), 'a');
  assert.equal(expand('${NOPE:-d}', vars), 'd');
  assert.equal(expand('${EMPTY:-d}', vars), 'd');
  assert.equal(expand('${EMPTY-d}', vars), '');
  assert.equal(expand('${NOPE-d}', vars), 'd');
  assert.equal(expand('${NOPE:-}', vars), '');
  assert.equal(expand('${NOPE:-with space}', vars), 'with space');
});

test('${var:+alt} and ${var+alt}', () => {
  assert.equal(expand('${A:+alt}', vars), 'alt');
  assert.equal(expand('${NOPE:+alt}', vars), '');
  assert.equal(expand('${EMPTY:+alt}', vars), '');
  assert.equal(expand('${EMPTY+alt}', vars), 'alt');
});

test('${var:?message} fails when unset or empty', () => {
  assert.equal(expand('${A:?need A}', vars), 'a');
  assert.throws(() => expand('${NOPE:?need NOPE}', vars), /^InvalidArgumentError: NOPE: need NOPE$/);
  assert.throws(() => expand('${EMPTY:?}', vars), (e: unknown) => e instanceof InvalidArgumentError && e.message === 'EMPTY: is not allowed to be empty');
  assert.equal(expand('${EMPTY?x}', vars), '');
});

test('modifier words are themselves expanded and may nest', () => {
  assert.equal(expand('${NOPE:-$A}', vars), 'a');
  assert.equal(expand('${NOPE:-${NOPE2:-${A}x}}', vars), 'ax');
  assert.equal(expand('${A:+[$HOME]}', vars), '[/root]');
  assert.equal(expand('${NOPE:-"}"}', vars), '}');
  assert.equal(expand('${NOPE:-\\}}', vars), '}');
});

test('bad substitutions are errors', () => {
  assert.throws(() => expand('${A', vars), /missing '}'/);
  assert.throws(() => expand('${}', vars), /bad substitution/);
  assert.throws(() => expand('${A#prefix}', vars), /unsupported modifier "#"/);
  assert.throws(() => expand('${NOPE:-abc', vars), /missing '}'/);
});

test('escaped $ stays literal; the escape character is removed', () => {
  assert.equal(expand('\\$A', vars), '$A');
  assert.equal(expand('\\${A}', vars), '${A}');
  assert.equal(expand('a\\ b', vars), 'a b');
  assert.equal(expand('c:\\\\dir', vars), 'c:\\dir');
  assert.equal(expand('trailing\\', vars), 'trailing');
});

test('the backtick escape character', () => {
  const o = { escapeChar: '`' };
  assert.equal(expand('`$A', vars, o), '$A');
  assert.equal(expand('c:\\$A', vars, o), 'c:\\a');
  assert.equal(expand('"x`"y"', vars, o), 'x"y');
});

test('quotes: single quotes are literal, double quotes expand, both are removed', () => {
  assert.equal(expand("'$A'", vars), '$A');
  assert.equal(expand('"$A"', vars), 'a');
  assert.equal(expand(`"it's $A"`, vars), "it's a");
  assert.equal(expand(`'say "$A"'`, vars), 'say "$A"');
  assert.equal(expand('x"$B"y', vars), 'xb by');
  assert.equal(expand("'a\\b'", vars), 'a\\b');
  assert.equal(expand('"a\\"b\\$A\\\\c\\n"', vars), 'a"b$A\\c\\n');
  assert.equal(expand('""', vars), '');
  assert.throws(() => expand("'open", vars), /matching single-quote/);
  assert.throws(() => expand('"open', vars), /matching double-quote/);
});

test('whitespace is kept in single-word expansion', () => {
  assert.equal(expand('/my dir/$A', vars), '/my dir/a');
});

test('expandWords splits on unquoted whitespace, including in substituted values', () => {
  assert.deepEqual(expandWords('80 $B "c d" \'e f\'', vars), ['80', 'b', 'b', 'c d', 'e f']);
  assert.deepEqual(expandWords('"$B"', vars), ['b b']);
  assert.deepEqual(expandWords('$NOPE', vars), []);
  assert.deepEqual(expandWords('""', vars), ['']);
  assert.deepEqual(expandWords('a\\ b', vars), ['a b']);
});

test('used collects every variable referred to', () => {
  const used = new Set<string>();
  expand('$A ${NOPE:-$HOME} \\$ESC \'$SQ\'', vars, { used });
  assert.deepEqual([...used].sort(), ['A', 'HOME', 'NOPE']);
});

test('quotes: false treats quote characters literally (JSON-form words)', () => {
  assert.equal(expand(`it's "$A"`, vars, { quotes: false }), `it's "a"`);
  assert.equal(expand('c:\\dir\\$A', vars, { quotes: false }), 'c:\\dir$A');
});

test('unquote removes quotes and escapes but leaves variables', () => {
  assert.equal(unquote('"x y" $A \'$B\' \\$C'), 'x y $A $B $C');
  assert.equal(unquote('"${A:-x}"'), '${A:-x}');
});

test('splitWords keeps quotes and escapes, splits only on unquoted whitespace', () => {
  assert.deepEqual(splitWords('a=1  b="x y" c=\'p q\' d=e\\ f g=\\"h'), ['a=1', 'b="x y"', "c='p q'", 'd=e\\ f', 'g=\\"h']);
  assert.deepEqual(splitWords("x='a \"b' y"), ["x='a \"b'", 'y']);
  assert.deepEqual(splitWords('  '), []);
  assert.deepEqual(splitWords('a=`"b c', '`'), ['a=`"b', 'c']);
});

// --- expandInstruction -------------------------------------------------------

function stageInstrs(text: string): Instruction[] {
  return parseDockerfile(`FROM scratch\n${text}`).stages[0]!.instructions;
}
function x<T extends Instruction>(i: T, v: Map<string, string> = vars): T {
  return expandInstruction(i, v);
}

test('expandInstruction: ENV and LABEL keys and values; quotes removed', () => {
  const [env, label] = stageInstrs('ENV P=$HOME/bin Q="$B" R=\'$A\' S=\\$A ${A}K=v\nLABEL "com.$A"="v $A" plain=x');
  assert.ok(env!.kind === 'ENV');
  assert.deepEqual(x(env).pairs, [
    { key: 'P', value: '/root/bin' },
    { key: 'Q', value: 'b b' },
    { key: 'R', value: '$A' },
    { key: 'S', value: '$A' },
    { key: 'aK', value: 'v' },
  ]);
  assert.ok(label!.kind === 'LABEL');
  assert.deepEqual(x(label).pairs, [{ key: 'com.a', value: 'v a' }, { key: 'plain', value: 'x' }]);
});

test('expandInstruction: ENV on one line sees the values from before the line', () => {
  const [env] = stageInstrs('ENV A=new B=$A');
  assert.ok(env!.kind === 'ENV');
  assert.deepEqual(x(env).pairs, [{ key: 'A', value: 'new' }, { key: 'B', value: 'a' }]);
});

test('expandInstruction: legacy ENV value is one word with quotes removed', () => {
  const [env] = stageInstrs('ENV MSG "hello  $A" and more');
  assert.ok(env!.kind === 'ENV');
  assert.deepEqual(x(env).pairs, [{ key: 'MSG', value: 'hello  a and more' }]);
});

test('expandInstruction: WORKDIR, USER, STOPSIGNAL, VOLUME, EXPOSE', () => {
  const v = new Map([...vars, ['PORTS', '80 53/udp'], ['SIG', 'SIGINT'], ['U', 'app']]);
  const list = stageInstrs('WORKDIR "$HOME/my app"\nUSER ${U}:${G:-staff}\nSTOPSIGNAL $SIG\nVOLUME $HOME/data "/x y"\nVOLUME ["$HOME", "it\'s"]\nEXPOSE $PORTS 8080-8081');
  const out = list.map((i) => x(i, v));
  assert.ok(out[0]!.kind === 'WORKDIR' && out[0]!.path === '/root/my app');
  assert.ok(out[1]!.kind === 'USER' && out[1]!.user === 'app:staff');
  assert.ok(out[2]!.kind === 'STOPSIGNAL' && out[2]!.signal === 'SIGINT');
  assert.ok(out[3]!.kind === 'VOLUME');
  assert.deepEqual(out[3]!.paths, ['/root/data', '/x y']);
  assert.ok(out[4]!.kind === 'VOLUME');
  assert.deepEqual(out[4]!.paths, ['/root', "it's"]);
  assert.ok(out[5]!.kind === 'EXPOSE');
  assert.deepEqual(out[5]!.ports, ['80/tcp', '53/udp', '8080-8081/tcp']);
});

test('expandInstruction: COPY and ADD sources, destination and flags', () => {
  const v = new Map([...vars, ['STAGE', 'build'], ['OWNER', 'app'], ['MODE', '644']]);
  const [copy, add, json] = stageInstrs('COPY --from=$STAGE --chown=${OWNER}:${OWNER} --chmod=$MODE src/$A "with space" /dst/$A/\nADD --chown=$OWNER x.tar ${HOME}\nCOPY ["$A\'s file", "/d"]');
  const c = x(copy!, v);
  assert.ok(c.kind === 'COPY');
  assert.deepEqual([c.from, c.chown, c.chmod, c.sources, c.dest], ['build', 'app:app', '644', ['src/a', 'with space'], '/dst/a/']);
  const a = x(add!, v);
  assert.ok(a.kind === 'ADD');
  assert.deepEqual([a.chown, a.sources, a.dest], ['app', ['x.tar'], '/root']);
  const j = x(json!, v);
  assert.ok(j.kind === 'COPY');
  assert.deepEqual(j.sources, ["a's file"]);
});

test('expandInstruction: RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD are left alone', () => {
  const list = stageInstrs('RUN echo $A\nCMD ["$A"]\nENTRYPOINT echo "$A"\nSHELL ["$A"]\nHEALTHCHECK CMD test $A\nONBUILD RUN echo $A\nMAINTAINER $A');
  for (const i of list) assert.deepEqual(x(i), i);
});

test('expandInstruction: FROM image and platform; blank image is an error', () => {
  const df = parseDockerfile('FROM --platform=$P ${IMG:-alpine}:$TAG AS b\nFROM $NOPE');
  const f = expandInstruction(df.stages[0]!.from, new Map([['P', 'linux/arm64'], ['TAG', '3']]));
  assert.deepEqual([f.image, f.platform, f.alias], ['alpine:3', 'linux/arm64', 'b']);
  assert.throws(() => expandInstruction(df.stages[1]!.from, new Map()), {
    message: 'Dockerfile:2: base name ($NOPE) should not be blank',
  });
});

test('expandInstruction: errors carry the line number', () => {
  const [w, e] = stageInstrs('WORKDIR ${A\nEXPOSE $P');
  assert.throws(() => x(w!), { message: 'Dockerfile:2: Invalid variable substitution in "${A": missing \'}\'' });
  assert.throws(() => x(e!, new Map([['P', 'nope']])), { message: 'Dockerfile:3: Invalid port specification: "nope"' });
});

test('expandInstruction honours the escape character', () => {
  const df = parseDockerfile('# escape=`\nFROM scratch\nWORKDIR c:\\`$A\\$A');
  const w = df.stages[0]!.instructions[0]!;
  const out = expandInstruction(w, vars, { escapeChar: df.escapeChar });
  assert.ok(out.kind === 'WORKDIR');
  assert.equal(out.path, 'c:\\$A\\a');
});

test('splitWords does not split inside ${...}', () => {
  assert.deepEqual(splitWords('A=${X:-a b} B="${Y:-}"'), ['A=${X:-a b}', 'B="${Y:-}"']);
  assert.deepEqual(splitWords("C='${' D=1"), ["C='${'", 'D=1']);
});
