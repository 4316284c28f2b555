import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseJson, stringifyJson, u64OrNull, U64_MAX } from './json.js';

describe('parseJson', () => {
  it('keeps integers beyond 2^53 exact as bigint', () => {
    const v = parseJson('{"a":18446744073709551615,"b":9007199254740993,"c":-9007199254740993,"d":42,"e":1.5e3}') as Record<string, unknown>;
    assert.equal(v['a'], U64_MAX);
    assert.equal(v['b'], 9007199254740993n);
    assert.equal(v['c'], -9007199254740993n);
    assert.equal(v['d'], 42);
    assert.equal(v['e'], 1500);
  });
  it('parses strings, escapes, arrays, literals like JSON.parse', () => {
    const text = '{"s":"a\\"b\\u00e9\\n","l":[true,false,null,[],{}],"n":-0.25}';
    assert.deepEqual(parseJson(text), JSON.parse(text));
  });
  it('rejects malformed input with one line', () => {
    assert.throws(() => parseJson('{"a":}'), /Invalid JSON: unexpected character/);
    assert.throws(() => parseJson('{"a":1} x'), /trailing data/);
    assert.throws(() => parseJson('"abc'), /unterminated string/);
  });
  it('u64OrNull maps u64 max to null', () => {
    assert.equal(u64OrNull(U64_MAX), null);
    assert.equal(u64OrNull(5), 5);
    assert.equal(u64OrNull(undefined), null);
  });
  it('stringifyJson writes bigint bare and drops undefined', () => {
    assert.equal(stringifyJson({ a: 1n << 64n, b: undefined, c: ['x', 2] }), '{"a":18446744073709551616,"c":["x",2]}');
  });
});
