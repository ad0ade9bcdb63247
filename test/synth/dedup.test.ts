import { describe, expect, it } from 'vitest';
import { diffKey, isCosmetic, normaliseLine, normalisedHunks } from '../../src/synth/dedup.js';
import { STRATEGIES, STRATEGY_NAMES, strategyByName } from '../../src/synth/strategies/index.js';

const BASE = 'def f(a, b):\n    x = a + b  # sum\n    y = x * 2\n    return y\n\n\ndef g(a, b):\n    x = a + b\n    return x\n';
const edit = (after: string) => [{ path: 'pkg/m.py', before: BASE, after }];

describe('the dedup key', () => {
  it('is the same for one bug however it is laid out or commented', () => {
    const plain = diffKey(edit(BASE.replace('x = a + b  # sum', 'x = a - b  # sum')));
    expect(diffKey(edit(BASE.replace('x = a + b  # sum', 'x = a-b')))).toBe(plain);
    expect(diffKey(edit(BASE.replace('x = a + b  # sum', 'x  =  a -  b  # minus, on purpose\n')))).toBe(plain);
  });

  it('tells apart other bugs, the same change at another place, and a swap of two lines', () => {
    const first = diffKey(edit(BASE.replace('x = a + b  # sum', 'x = a - b')));
    const second = diffKey(edit(BASE.replace('    x = a + b\n    return x', '    x = a - b\n    return x')));
    expect(second).not.toBe(first);
    expect(diffKey(edit(BASE.replace('y = x * 2', 'y = x * 3')))).not.toBe(first);
    const swapped = BASE.replace('    x = a + b  # sum\n    y = x * 2', '    y = x * 2\n    x = a + b  # sum');
    expect(isCosmetic(edit(swapped))).toBe(false);
    expect(diffKey(edit(swapped))).not.toBe(diffKey(edit(BASE)));
    expect(diffKey([{ path: 'other.py', before: BASE, after: BASE.replace('y = x * 2', 'y = x * 3') }])).not.toBe(diffKey(edit(BASE.replace('y = x * 2', 'y = x * 3'))));
  });

  it('does not depend on the order of the edits, and sees comment- and layout-only edits as cosmetic', () => {
    const a = { path: 'a.py', before: 'x = 1\n', after: 'x = 2\n' };
    const b = { path: 'b.py', before: 'y = 1\n', after: 'y = 2\n' };
    expect(diffKey([a, b])).toBe(diffKey([b, a]));
    expect(isCosmetic(edit(BASE.replace('# sum', '# total').replace('    return y', '    return  y\n\n')))).toBe(true);
    expect(isCosmetic(edit(BASE.replace('x * 2', 'x * 4')))).toBe(false);
  });

  it('strips comments outside quotes only', () => {
    expect(normaliseLine("  s = '#not a comment'  # a comment")).toBe("s='#notacomment'");
    expect(normaliseLine('t = "a\\"#b" # c')).toBe('t="a\\"#b"');
    expect(normalisedHunks({ path: 'x', before: 'a\nb\n', after: 'a\nc\n' })).toEqual([{ at: 1, removed: ['b'], added: ['c'] }]);
  });
});

describe('the strategy registry', () => {
  it('lists the three strategies and finds each by name', () => {
    expect(STRATEGY_NAMES).toEqual(['procedural', 'llm_rewrite', 'history_revert']);
    for (const s of STRATEGIES) expect(strategyByName(s.name)).toBe(s);
  });

  it('names the known strategies when asked for an unknown one', () => {
    expect(() => strategyByName('mutate')).toThrow('unknown synthesis strategy "mutate" (known: procedural, llm_rewrite, history_revert)');
  });
});
