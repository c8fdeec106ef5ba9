import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { type Dim, dimAdd, dimEq, dimScale, dimSub, dimToString, evalDim, parseDim, productEq, sym } from '../graph/dim.js';

const [seq, pos, a, b] = ['seq', 'pos', 'a', 'b'].map(sym) as [Dim, Dim, Dim, Dim];

/** Random linear dims: up to three of a few symbols with small non-zero coefficients, plus an offset. */
const linearDim: fc.Arbitrary<Dim> = fc
  .record({
    terms: fc.array(fc.tuple(fc.constantFrom('seq', 'pos', 'a', 'n_kv2'), fc.integer({ min: -5, max: 5 })), { maxLength: 3 }),
    offset: fc.integer({ min: -1000, max: 1000 }),
  })
  .map(({ terms, offset }) => terms.reduce<Dim>((d, [s, k]) => dimAdd(d, dimScale(sym(s), k)), offset));

describe('dimToString / parseDim', () => {
  test('print the forms a reader expects', () => {
    expect([seq, dimAdd(pos, seq), dimAdd(dimScale(seq, 2), -1), dimSub(7, seq), 4096].map(dimToString)).toEqual([
      'seq',
      'pos + seq',
      '2*seq - 1',
      '-seq + 7',
      '4096',
    ]);
  });

  test('round trip on random linear dims', () => {
    fc.assert(
      fc.property(linearDim, (d) => {
        expect(parseDim(dimToString(d))).toEqual(d);
      }),
    );
  });

  test('parse tolerates spacing and rejects what is not a dim', () => {
    expect(parseDim(' 2 * seq+pos -  3 ')).toEqual(dimAdd(dimAdd(dimScale(seq, 2), pos), -3));
    for (const bad of ['', 'seq +', '2seq', 'seq*2', 'seq + + 1', '(seq)', '1.5', 'a b', 'se q', '4 096']) expect(parseDim(bad), bad).toBeUndefined();
  });
});

describe('dimAdd / dimSub', () => {
  test('collect terms, and cancel back to numbers', () => {
    expect(dimToString(dimAdd(dimAdd(seq, 1), seq))).toBe('2*seq + 1');
    expect(dimSub(dimAdd(pos, seq), seq)).toEqual(pos);
    expect(dimSub(dimAdd(seq, 3), seq)).toBe(3);
    expect(dimAdd(2, 3)).toBe(5);
    expect(dimEq(dimAdd(pos, seq), dimAdd(seq, pos))).toBe(true);
  });

  test('agree with arithmetic on the values (property)', () => {
    const env = { seq: 7, pos: 11, a: -3, n_kv2: 5 };
    fc.assert(
      fc.property(linearDim, linearDim, (x, y) => {
        expect(evalDim(dimAdd(x, y), env)).toBe(evalDim(x, env) + evalDim(y, env));
        expect(evalDim(dimSub(x, y), env)).toBe(evalDim(x, env) - evalDim(y, env));
        expect(dimSub(dimAdd(x, y), y)).toEqual(x);
      }),
    );
  });
});

describe('productEq', () => {
  test.each<[string, Dim[], Dim[], boolean]>([
    ['[seq, 32, 128] = [seq, 4096]', [seq, 32, 128], [seq, 4096], true],
    ['[a, b] = [b, a]', [a, b], [b, a], true],
    ['[seq, 2] = [2*seq]', [seq, 2], [dimScale(seq, 2)], true],
    ['[2, 3] = [6]', [2, 3], [6], true],
    ['[] = [1]', [], [1], true],
    ['[a + b] ≠ [a, b]', [dimAdd(a, b)], [a, b], false],
    ['[seq, 32] ≠ [seq, 64]', [seq, 32], [seq, 64], false],
    ['[a] ≠ [b]', [a], [b], false],
    ['[seq, seq] ≠ [seq]', [seq, seq], [seq], false],
  ])('%s', (_, x, y, want) => {
    expect(productEq(x, y)).toBe(want);
  });

  test('any reordering is equal; one more factor of 2 is not (property)', () => {
    fc.assert(
      fc.property(
        fc
          .array(fc.oneof(linearDim.filter((d) => typeof d !== 'number'), fc.integer({ min: 1, max: 64 })), { maxLength: 4 })
          .chain((dims) => fc.tuple(fc.constant(dims), fc.shuffledSubarray(dims, { minLength: dims.length, maxLength: dims.length }))),
        ([dims, shuffled]) => {
          expect(productEq(dims, shuffled)).toBe(true);
          expect(productEq(dims, [...shuffled, 2])).toBe(false);
        },
      ),
    );
  });
});
