import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../core/errors.js';
import { exposedPortKeys, findStage, normalizePortSpec, parseDockerfile, type Instruction } from './parser.js';

/** The instructions of the only (or given) stage. */
function instrs(text: string, stage = 0): Instruction[] {
  return parseDockerfile(text).stages[stage]!.instructions;
}
function one<K extends Instruction['kind']>(text: string, kind: K): Extract<Instruction, { kind: K }> {
  const list = instrs(`FROM scratch\n${text}`);
  assert.equal(list.length, 1);
  assert.equal(list[0]!.kind, kind);
  return list[0] as Extract<Instruction, { kind: K }>;
}
function throwsAt(text: string, message: string | RegExp): void {
  assert.throws(
    () => parseDockerfile(text),
    (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(e)}`);
      if (typeof message === 'string') assert.equal(e.message, message);
      else assert.match(e.message, message);
      return true;
    },
  );
}

test('FROM forms: plain, AS alias (lower-cased), --platform, scratch', () => {
  const df = parseDockerfile('FROM alpine:3.19\nFROM --platform=linux/amd64 golang AS Build\nfrom scratch as final\n');
  assert.equal(df.stages.length, 3);
  assert.deepEqual(df.stages[0]!.from, { kind: 'FROM', line: 1, original: 'FROM alpine:3.19', image: 'alpine:3.19', alias: null, platform: null });
  assert.equal(df.stages[1]!.name, 'build');
  assert.equal(df.stages[1]!.from.platform, 'linux/amd64');
  assert.equal(df.stages[1]!.from.image, 'golang');
  assert.equal(df.stages[2]!.from.image, 'scratch');
  assert.equal(df.stages[2]!.name, 'final');
  assert.deepEqual(df.stages.map((s) => s.index), [0, 1, 2]);
  assert.equal(df.escapeChar, '\\');
});

test('FROM errors: argument count, bad and duplicate stage names', () => {
  throwsAt('FROM a b', 'Dockerfile:1: FROM requires either one or three arguments');
  throwsAt('FROM a AS b c', 'Dockerfile:1: FROM requires either one or three arguments');
  throwsAt('FROM a AS 1st', /^Dockerfile:1: invalid name for build stage: "1st"/);
  throwsAt('FROM a AS x\nFROM b AS X', 'Dockerfile:2: duplicate stage name: "x"');
  throwsAt('FROM --platform a', 'Dockerfile:1: FROM --platform requires a value');
  throwsAt('FROM --foo=1 a', 'Dockerfile:1: unknown flag for FROM: --foo');
});

test('stages collect their instructions; global ARGs before the first FROM', () => {
  const df = parseDockerfile('ARG A=1\nARG B\nFROM x\nRUN a\nFROM y AS two\nRUN b\nRUN c\n');
  assert.deepEqual(df.globalArgs.map((a) => a.args), [[{ name: 'A', default: '1' }], [{ name: 'B', default: null }]]);
  assert.equal(df.stages[0]!.instructions.length, 1);
  assert.deepEqual(df.stages[1]!.instructions.map((i) => i.line), [6, 7]);
  assert.equal(findStage(df, 'TWO')?.index, 1);
  assert.equal(findStage(df, '0')?.index, 0);
  assert.equal(findStage(df, '5'), null);
  assert.equal(findStage(df, 'nope'), null);
});

test('only ARG may precede the first FROM; empty files and files without FROM are refused', () => {
  throwsAt('# hi\nRUN x\nFROM a', /^Dockerfile:2: RUN before the first FROM/);
  throwsAt('', 'Dockerfile has no instructions');
  throwsAt('\n  \n# only a comment\n', 'Dockerfile has no instructions');
  throwsAt('# syntax=docker/dockerfile:1\n', 'Dockerfile has no instructions');
  throwsAt('ARG X=1\n', 'Dockerfile has no FROM instruction');
});

test('unknown instruction names the line and the keyword as written', () => {
  throwsAt('FROM a\n\n# c\nRUN x\n\n\nFOO bar', 'Dockerfile:7: unknown instruction: FOO');
  throwsAt('FROM a\nfrobnicate', 'Dockerfile:2: unknown instruction: frobnicate');
});

test('keywords are case-insensitive', () => {
  const list = instrs('from a\nrun echo hi\nRun echo 2\ncOpY a b\nenv X=1');
  assert.deepEqual(list.map((i) => i.kind), ['RUN', 'RUN', 'COPY', 'ENV']);
});

test('comments and blank lines are skipped; lines keep their numbers', () => {
  const list = instrs('\n# comment\nFROM a\n\n   # indented comment\n\tRUN x\n\n');
  assert.equal(list[0]!.line, 6);
  assert.equal(list[0]!.original, 'RUN x');
});

test('a # inside an instruction is not a comment', () => {
  assert.equal(one('RUN echo # not a comment', 'RUN').command, 'echo # not a comment');
});

test('line continuations join lines; the instruction keeps its first line', () => {
  const list = instrs('FROM a\nRUN apt-get update && \\\n    apt-get install -y \\\n    curl\nRUN next');
  const run = list[0]!;
  assert.equal(run.kind, 'RUN');
  assert.equal(run.line, 2);
  assert.equal(run.kind === 'RUN' && run.command, 'apt-get update &&     apt-get install -y     curl');
  assert.equal(run.original, 'RUN apt-get update &&     apt-get install -y     curl');
  assert.equal(list[1]!.line, 5);
});

test('continuations: trailing whitespace after the escape, comments and blank lines inside', () => {
  const text = 'FROM a\nRUN echo one \\   \n# a comment in the middle\n  # indented too\n\n   two \\\t\n three\nUSER x';
  const list = instrs(text);
  assert.equal(list.length, 2);
  assert.equal(list[0]!.kind === 'RUN' && list[0]!.command, 'echo one    two  three');
  assert.equal(list[1]!.line, 8);
});

test('continuation of the keyword itself and of a flag', () => {
  const list = instrs('FROM a\nCOPY \\\n --chown=1:1 \\\n src /dst');
  const c = list[0]!;
  assert.ok(c.kind === 'COPY');
  assert.equal(c.chown, '1:1');
  assert.deepEqual(c.sources, ['src']);
});

test('a file ending inside a continuation ends the instruction there', () => {
  const list = instrs('FROM a\nRUN echo hi \\');
  assert.equal(list[0]!.kind === 'RUN' && list[0]!.command, 'echo hi');
});

test('the escape directive switches continuations to the backtick', () => {
  const df = parseDockerfile('# escape=`\nFROM windows\nRUN dir c:\\ `\n  && echo done\nCOPY a\\b c:\\dest\\');
  assert.equal(df.escapeChar, '`');
  const [run, copy] = df.stages[0]!.instructions;
  assert.equal(run!.kind === 'RUN' && run!.command, 'dir c:\\   && echo done');
  assert.ok(copy!.kind === 'COPY');
  assert.deepEqual(copy.sources, ['a\\b']);
  assert.equal(copy.dest, 'c:\\dest\\');
});

test('parser directives: case-insensitive, syntax ignored, only at the very top', () => {
  assert.equal(parseDockerfile('# ESCAPE = `\nFROM a').escapeChar, '`');
  assert.equal(parseDockerfile('# syntax=docker/dockerfile:1.4\n# escape=`\nFROM a').escapeChar, '`');
  // After a comment, a blank line or an instruction, it is just a comment.
  assert.equal(parseDockerfile('# hello\n# escape=`\nFROM a').escapeChar, '\\');
  assert.equal(parseDockerfile('\n# escape=`\nFROM a').escapeChar, '\\');
  assert.equal(parseDockerfile('FROM a\n# escape=`\n').escapeChar, '\\');
  // An unknown directive is a comment and ends the directives.
  assert.equal(parseDockerfile('# foo=bar\n# escape=`\nFROM a').escapeChar, '\\');
});

test('parser directive errors', () => {
  throwsAt('# escape=x\nFROM a', /^Dockerfile:1: invalid escape character: "x"/);
  throwsAt('# escape=`\n# escape=\\\nFROM a', 'Dockerfile:2: only one use of each parser directive is allowed: escape');
});

test('a byte-order mark and CRLF line endings are handled', () => {
  const list = instrs('\uFEFFFROM a\r\nRUN x \\\r\n  y\r\nUSER u\r\n');
  assert.equal(list[0]!.kind === 'RUN' && list[0]!.command, 'x   y');
  assert.equal(list[1]!.kind === 'USER' && list[1]!.user, 'u');
  assert.equal(list[1]!.line, 4);
});

test('exec form vs shell form for RUN, CMD and ENTRYPOINT', () => {
  assert.deepEqual(one('RUN ["echo", "a b"]', 'RUN').command, ['echo', 'a b']);
  assert.equal(one('RUN echo "a b"', 'RUN').command, 'echo "a b"');
  assert.deepEqual(one('CMD ["nginx", "-g", "daemon off;"]', 'CMD').command, ['nginx', '-g', 'daemon off;']);
  assert.deepEqual(one('ENTRYPOINT []', 'ENTRYPOINT').command, []);
  assert.equal(one('ENTRYPOINT exec top -b', 'ENTRYPOINT').command, 'exec top -b');
  assert.deepEqual(one('CMD ["a\\"b", "\\u0041"]', 'CMD').command, ['a"b', 'A']);
});

test('invalid JSON falls back to shell form, as Docker', () => {
  assert.equal(one("CMD ['single', 'quotes']", 'CMD').command, "['single', 'quotes']");
  assert.equal(one('CMD [1, 2]', 'CMD').command, '[1, 2]');
  assert.equal(one('RUN [ -f /x ] && echo yes', 'RUN').command, '[ -f /x ] && echo yes');
  assert.equal(one('CMD ["unterminated"', 'CMD').command, '["unterminated"');
});

test('instructions without arguments are refused', () => {
  throwsAt('FROM a\nRUN', 'Dockerfile:2: RUN requires at least one argument');
  throwsAt('FROM a\nWORKDIR   ', 'Dockerfile:2: WORKDIR requires at least one argument');
  throwsAt('FROM', 'Dockerfile:1: FROM requires at least one argument');
});

test('RUN flags are refused clearly; CMD keeps a leading -- word', () => {
  throwsAt('FROM a\nRUN --mount=type=cache,target=/root/.cache make', 'Dockerfile:2: RUN --mount is not supported');
  throwsAt('FROM a\nRUN --network=none make', 'Dockerfile:2: RUN --network is not supported');
  throwsAt('FROM a\nRUN --security=insecure make', 'Dockerfile:2: RUN --security is not supported');
  throwsAt('FROM a\nRUN --foo make', 'Dockerfile:2: unknown flag for RUN: --foo');
  assert.equal(one('CMD --help', 'CMD').command, '--help');
  assert.equal(one('RUN -- --weird', 'RUN').command, '--weird');
});

test('heredocs are refused with the line number', () => {
  throwsAt('FROM a\n\nRUN <<EOF\necho hi\nEOF', 'Dockerfile:3: heredocs are not supported');
  throwsAt('FROM a\nRUN cat <<-"END" > /x', 'Dockerfile:2: heredocs are not supported');
  throwsAt('FROM a\nCOPY <<EOF /etc/x', 'Dockerfile:2: heredocs are not supported');
  // Not heredocs: here-strings and shifts.
  assert.equal(one('RUN cat <<< "x"', 'RUN').command, 'cat <<< "x"');
  assert.equal(one('RUN echo $((1<<4))', 'RUN').command, 'echo $((1<<4))');
  assert.deepEqual(one('RUN ["sh", "-c", "cat <<EOF"]', 'RUN').command, ['sh', '-c', 'cat <<EOF']);
});

test('SHELL requires exec form', () => {
  assert.deepEqual(one('SHELL ["/bin/bash", "-o", "pipefail", "-c"]', 'SHELL').shell, ['/bin/bash', '-o', 'pipefail', '-c']);
  throwsAt('FROM a\nSHELL /bin/bash -c', 'Dockerfile:2: SHELL requires the arguments to be in JSON form');
  throwsAt('FROM a\nSHELL []', 'Dockerfile:2: SHELL requires at least one argument');
});

test('ENV: key=value pairs keep quotes and escapes raw for expansion', () => {
  const env = one('ENV A=1 B="two words" C=\'$X\' D=a\\ b E= F="x=y"', 'ENV');
  assert.deepEqual(env.pairs, [
    { key: 'A', value: '1' },
    { key: 'B', value: '"two words"' },
    { key: 'C', value: "'$X'" },
    { key: 'D', value: 'a\\ b' },
    { key: 'E', value: '' },
    { key: 'F', value: '"x=y"' },
  ]);
});

test('ENV: legacy `ENV key value` form takes the rest of the line', () => {
  assert.deepEqual(one('ENV PATH /usr/local/bin:$PATH', 'ENV').pairs, [{ key: 'PATH', value: '/usr/local/bin:$PATH' }]);
  assert.deepEqual(one('ENV MSG   hello   world  ', 'ENV').pairs, [{ key: 'MSG', value: 'hello   world' }]);
  throwsAt('FROM a\nENV ONLYKEY', 'Dockerfile:2: ENV must have two arguments');
});

test('ENV and LABEL errors', () => {
  throwsAt('FROM a\nENV A=1 B', 'Dockerfile:2: syntax error - can\'t find = in "B". Must be of the form: name=value');
  throwsAt('FROM a\nENV =x', 'Dockerfile:2: ENV names can not be blank');
  throwsAt('FROM a\nLABEL a=1 =2', 'Dockerfile:2: LABEL names can not be blank');
});

test('ENV across continuation lines', () => {
  const env = one('ENV A=1 \\\n    B="2 \\\n3"', 'ENV');
  assert.deepEqual(env.pairs, [{ key: 'A', value: '1' }, { key: 'B', value: '"2 3"' }]);
});

test('LABEL: quoted keys and values, legacy form', () => {
  assert.deepEqual(one('LABEL "com.example.vendor"="ACME Inc" version=1.0 desc="a \\"b\\""', 'LABEL').pairs, [
    { key: '"com.example.vendor"', value: '"ACME Inc"' },
    { key: 'version', value: '1.0' },
    { key: 'desc', value: '"a \\"b\\""' },
  ]);
  assert.deepEqual(one('LABEL maintainer someone@example.com', 'LABEL').pairs, [{ key: 'maintainer', value: 'someone@example.com' }]);
});

test('ARG: one or several per line, with and without defaults', () => {
  assert.deepEqual(one('ARG A B=2 C="x y" D=', 'ARG').args, [
    { name: 'A', default: null },
    { name: 'B', default: '2' },
    { name: 'C', default: '"x y"' },
    { name: 'D', default: '' },
  ]);
  throwsAt('FROM a\nARG =1', 'Dockerfile:2: ARG names can not be blank');
});

test('WORKDIR, USER, STOPSIGNAL, MAINTAINER', () => {
  assert.equal(one('WORKDIR /app/$DIR', 'WORKDIR').path, '/app/$DIR');
  assert.equal(one('WORKDIR "/my dir"', 'WORKDIR').path, '"/my dir"');
  assert.equal(one('USER app:staff', 'USER').user, 'app:staff');
  assert.equal(one('STOPSIGNAL SIGQUIT', 'STOPSIGNAL').signal, 'SIGQUIT');
  throwsAt('FROM a\nSTOPSIGNAL A B', 'Dockerfile:2: STOPSIGNAL requires exactly one argument');
  assert.equal(one('MAINTAINER Jane Doe <jane@example.com>', 'MAINTAINER').maintainer, 'Jane Doe <jane@example.com>');
});

test('EXPOSE: ports, protocols, ranges; checked unless a variable is involved', () => {
  assert.deepEqual(one('EXPOSE 80 443/tcp 53/udp 8000-8010 $PORT', 'EXPOSE').ports, ['80', '443/tcp', '53/udp', '8000-8010', '$PORT']);
  throwsAt('FROM a\nEXPOSE 80/xyz', 'Dockerfile:2: Invalid protocol: xyz');
  throwsAt('FROM a\nEXPOSE http', 'Dockerfile:2: Invalid port specification: "http"');
  throwsAt('FROM a\nEXPOSE 70000', 'Dockerfile:2: Invalid port specification: "70000"');
  throwsAt('FROM a\nEXPOSE 90-80', 'Dockerfile:2: Invalid port range: 90-80');
});

test('normalizePortSpec and exposedPortKeys', () => {
  assert.equal(normalizePortSpec('80'), '80/tcp');
  assert.equal(normalizePortSpec('53/UDP'), '53/udp');
  assert.equal(normalizePortSpec('8000-8002/sctp'), '8000-8002/sctp');
  assert.deepEqual(exposedPortKeys(['80', '8000-8002/udp', '80/tcp']), ['80/tcp', '8000/udp', '8001/udp', '8002/udp']);
});

test('VOLUME: JSON array or space-separated list', () => {
  const j = one('VOLUME ["/data", "/var/log app"]', 'VOLUME');
  assert.deepEqual(j.paths, ['/data', '/var/log app']);
  assert.equal(j.json, true);
  const s = one('VOLUME /data  /cache', 'VOLUME');
  assert.deepEqual(s.paths, ['/data', '/cache']);
  assert.equal(s.json, false);
  throwsAt('FROM a\nVOLUME []', 'Dockerfile:2: VOLUME specified can not be an empty string');
  throwsAt('FROM a\nVOLUME [""]', 'Dockerfile:2: VOLUME specified can not be an empty string');
});

test('COPY: sources and destination, flags, JSON form', () => {
  const c = one('COPY --from=builder --chown=app:app --chmod=755 a.txt b/ /dest/', 'COPY');
  assert.deepEqual(
    { sources: c.sources, dest: c.dest, from: c.from, chown: c.chown, chmod: c.chmod, link: c.link, json: c.json },
    { sources: ['a.txt', 'b/'], dest: '/dest/', from: 'builder', chown: 'app:app', chmod: '755', link: false, json: false },
  );
  const j = one('COPY ["my file.txt", "other", "/dest dir/"]', 'COPY');
  assert.deepEqual([j.sources, j.dest, j.json], [['my file.txt', 'other'], '/dest dir/', true]);
  assert.equal(one('COPY --link . /app', 'COPY').link, true);
  assert.equal(one('COPY --link=false . /app', 'COPY').link, false);
  assert.equal(one('COPY --from=0 /out /', 'COPY').from, '0');
});

test('COPY/ADD errors', () => {
  throwsAt('FROM a\nCOPY onlyone', /^Dockerfile:2: COPY requires at least two arguments/);
  throwsAt('FROM a\nCOPY --chown=1 x', /^Dockerfile:2: COPY requires at least two arguments/);
  throwsAt('FROM a\nCOPY --parents a b', 'Dockerfile:2: COPY --parents is not supported');
  throwsAt('FROM a\nCOPY --from= a b', 'Dockerfile:2: COPY --from requires a value');
  throwsAt('FROM a\nCOPY --from=x --from=y a b', 'Dockerfile:2: COPY --from given more than once');
  throwsAt('FROM a\nCOPY --link=maybe a b', /^Dockerfile:2: COPY --link takes true or false/);
  throwsAt('FROM a\nADD --from=x a b', 'Dockerfile:2: unknown flag for ADD: --from');
  throwsAt('FROM a\nADD --checksum=sha256:00 http://x /y', 'Dockerfile:2: ADD --checksum is not supported');
  throwsAt('FROM a\nCOPY --flag', 'Dockerfile:2: unknown flag for COPY: --flag');
});

test('ADD mirrors COPY without --from', () => {
  const a = one('ADD --chown=1:2 https://example.com/x.tgz app.tar /opt/', 'ADD');
  assert.deepEqual([a.sources, a.dest, a.chown, a.chmod], [['https://example.com/x.tgz', 'app.tar'], '/opt/', '1:2', null]);
  assert.equal('from' in a, false);
});

test('HEALTHCHECK: NONE, CMD in both forms, options', () => {
  const none = one('HEALTHCHECK NONE', 'HEALTHCHECK');
  assert.deepEqual([none.test, none.command], [['NONE'], null]);
  const shell = one('HEALTHCHECK --interval=30s --timeout=3s --start-period=1m --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1', 'HEALTHCHECK');
  assert.deepEqual(shell.test, ['CMD-SHELL', 'curl -f http://localhost/ || exit 1']);
  assert.equal(shell.interval, 30e9);
  assert.equal(shell.timeout, 3e9);
  assert.equal(shell.startPeriod, 60e9);
  assert.equal(shell.startInterval, 500e6);
  assert.equal(shell.retries, 3);
  const exec = one('healthcheck cmd ["/bin/check", "--fast"]', 'HEALTHCHECK');
  assert.deepEqual(exec.test, ['CMD', '/bin/check', '--fast']);
  assert.deepEqual(exec.command, ['/bin/check', '--fast']);
  assert.equal(exec.interval, null);
  assert.equal(exec.retries, null);
});

test('HEALTHCHECK errors', () => {
  throwsAt('FROM a\nHEALTHCHECK --interval=5s NONE', 'Dockerfile:2: HEALTHCHECK NONE takes no arguments');
  throwsAt('FROM a\nHEALTHCHECK NONE x', 'Dockerfile:2: HEALTHCHECK NONE takes no arguments');
  throwsAt('FROM a\nHEALTHCHECK RUN x', 'Dockerfile:2: unknown type "RUN" in HEALTHCHECK (try CMD)');
  throwsAt('FROM a\nHEALTHCHECK CMD', 'Dockerfile:2: missing command after HEALTHCHECK CMD');
  throwsAt('FROM a\nHEALTHCHECK --interval=soon CMD x', 'Dockerfile:2: HEALTHCHECK --interval: invalid duration: soon');
  throwsAt('FROM a\nHEALTHCHECK --timeout=-1s CMD x', 'Dockerfile:2: HEALTHCHECK --timeout cannot be negative');
  throwsAt('FROM a\nHEALTHCHECK --timeout=10us CMD x', 'Dockerfile:2: HEALTHCHECK --timeout cannot be less than 1ms');
  throwsAt('FROM a\nHEALTHCHECK --retries=-1 CMD x', 'Dockerfile:2: HEALTHCHECK --retries cannot be negative');
  throwsAt('FROM a\nHEALTHCHECK --retries=x CMD x', 'Dockerfile:2: HEALTHCHECK --retries: invalid number: x');
  throwsAt('FROM a\nHEALTHCHECK --oops=1 CMD x', 'Dockerfile:2: unknown flag for HEALTHCHECK: --oops');
});

test('ONBUILD: the trigger is parsed and the instruction marked unsupported', () => {
  const o = one('ONBUILD COPY --chown=1:1 . /app', 'ONBUILD');
  assert.equal(o.unsupported, true);
  assert.equal(o.expression, 'COPY --chown=1:1 . /app');
  assert.equal(o.trigger.kind, 'COPY');
  assert.equal(o.trigger.line, 2);
  throwsAt('FROM a\nONBUILD ONBUILD RUN x', /^Dockerfile:2: chaining ONBUILD/);
  throwsAt('FROM a\nONBUILD FROM x', "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger");
  throwsAt('FROM a\nONBUILD MAINTAINER x', "Dockerfile:2: MAINTAINER isn't allowed as an ONBUILD trigger");
  throwsAt('FROM a\nONBUILD BOGUS x', 'Dockerfile:2: unknown instruction: BOGUS');
});

test('original text is one trimmed line', () => {
  const list = instrs('FROM a\n   RUN   echo hi   \nCMD ["a",\\\n "b"]');
  assert.equal(list[0]!.original, 'RUN   echo hi');
  assert.equal(list[1]!.original, 'CMD ["a", "b"]');
  assert.deepEqual(list[1]!.kind === 'CMD' && list[1]!.command, ['a', 'b']);
});

test('a realistic multi-stage Dockerfile', () => {
  const df = parseDockerfile(`# syntax=docker/dockerfile:1
ARG NODE_VERSION=20
FROM node:\${NODE_VERSION}-alpine AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci

FROM deps AS build
COPY . .
RUN npm run build

FROM node:\${NODE_VERSION}-alpine
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/dist ./dist
COPY --from=deps /app/node_modules ./node_modules
EXPOSE 3000
USER node
HEALTHCHECK --interval=10s CMD wget -qO- http://localhost:3000/ || exit 1
CMD ["node", "dist/server.js"]
`);
  assert.equal(df.globalArgs.length, 1);
  assert.deepEqual(df.stages.map((s) => s.name), ['deps', 'build', null]);
  assert.deepEqual(df.stages.map((s) => s.instructions.length), [3, 2, 8]);
  assert.deepEqual(df.stages[2]!.instructions.map((i) => i.kind), ['ENV', 'WORKDIR', 'COPY', 'COPY', 'EXPOSE', 'USER', 'HEALTHCHECK', 'CMD']);
  assert.equal(df.stages[2]!.from.line, 12);
});
