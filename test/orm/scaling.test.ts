import { describe, expect, it } from 'vitest';
import { bestAtK, chooseRatio, passAtK, randomAtK, scalingCurve, scalingKs, type ScoredCandidate } from '../../src/orm/scaling.js';

/** Every k-subset of 0..n-1. */
function subsets(n: number, k: number): number[][] {
  const out: number[][] = [];
  const pick = (start: number, chosen: number[]) => {
    if (chosen.length === k) return void out.push([...chosen]);
    for (let i = start; i < n; i++) pick(i + 1, [...chosen, i]);
  };
  pick(0, []);
  return out;
}

/** best@k by enumeration: the top score of each subset, ties picked uniformly. */
function bruteBest(cands: ScoredCandidate[], k: number): number {
  const all = subsets(cands.length, k);
  let total = 0;
  for (const s of all) {
    const top = Math.max(...s.map((i) => cands[i]!.score));
    const tied = s.filter((i) => cands[i]!.score === top);
    total += tied.filter((i) => cands[i]!.resolved).length / tied.length;
  }
  return total / all.length;
}

describe('pass@k', () => {
  it('matches hand-computed values', () => {
    expect(passAtK(5, 2, 2)).toBeCloseTo(1 - 3 / 10, 12); // 1 − C(3,2)/C(5,2)
    expect(passAtK(5, 2, 1)).toBeCloseTo(2 / 5, 12);
    expect(passAtK(4, 1, 4)).toBe(1);
    expect(passAtK(10, 0, 5)).toBe(0);
    expect(passAtK(30, 1, 1)).toBeCloseTo(1 / 30, 12);
    expect(passAtK(6, 3, 4)).toBe(1); // n − c < k: every draw holds a resolved one
  });

  it('stays exact where the binomial coefficients are astronomically large', () => {
    // C(1000, 500) ~ 1e299: the ratio form gives 1 − C(999,500)/C(1000,500) = 1 − 500/1000.
    expect(passAtK(1000, 1, 500)).toBeCloseTo(0.5, 12);
    expect(passAtK(2000, 3, 1000)).toBeCloseTo(1 - (1000 * 999 * 998) / (2000 * 1999 * 1998), 12);
    expect(chooseRatio(3, 5, 2)).toBeCloseTo(3 / 10, 12);
  });

  it('refuses k outside 1..n and c outside 0..n', () => {
    expect(() => passAtK(4, 1, 0)).toThrow(/k = 0/);
    expect(() => passAtK(4, 1, 5)).toThrow(/k = 5/);
    expect(() => passAtK(4, 5, 1)).toThrow(/c = 5/);
  });
});

describe('random@k', () => {
  it('is c/n whatever k', () => {
    expect(randomAtK(8, 2, 1)).toBe(0.25);
    expect(randomAtK(8, 2, 8)).toBe(0.25);
  });
});

describe('best@k', () => {
  it('matches hand-computed values without ties', () => {
    const wrongOnTop = [
      { score: 0.9, resolved: false },
      { score: 0.5, resolved: true },
      { score: 0.1, resolved: false },
    ];
    // k=2: {a,b}→a ✗, {a,c}→a ✗, {b,c}→b ✓
    expect(bestAtK(wrongOnTop, 1)).toBeCloseTo(1 / 3, 12);
    expect(bestAtK(wrongOnTop, 2)).toBeCloseTo(1 / 3, 12);
    expect(bestAtK(wrongOnTop, 3)).toBe(0);
    const rightOnTop = [
      { score: 0.9, resolved: true },
      { score: 0.5, resolved: false },
      { score: 0.1, resolved: false },
    ];
    expect(bestAtK(rightOnTop, 2)).toBeCloseTo(2 / 3, 12);
    expect(bestAtK(rightOnTop, 3)).toBe(1);
  });

  it('averages over tied scores', () => {
    // 6 pairs: {a,b}→a ✗, {a,c}→a ✗, {a,d}→a ✗, {b,c}→tie ½, {b,d}→b ✓, {c,d}→c ✗  ⇒ 1.5/6
    const c = [
      { score: 0.8, resolved: false },
      { score: 0.5, resolved: true },
      { score: 0.5, resolved: false },
      { score: 0.2, resolved: true },
    ];
    expect(bestAtK(c, 2)).toBeCloseTo(0.25, 12);
    expect(bestAtK([{ score: 0.5, resolved: true }, { score: 0.5, resolved: false }], 2)).toBeCloseTo(0.5, 12);
  });

  it('equals enumeration over every subset on random pools with ties', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let trial = 0; trial < 40; trial++) {
      const n = 2 + Math.floor(rnd() * 7);
      const cands = Array.from({ length: n }, () => ({ score: Math.floor(rnd() * 4) / 4, resolved: rnd() < 0.4 }));
      for (let k = 1; k <= n; k++) expect(bestAtK(cands, k)).toBeCloseTo(bruteBest(cands, k), 10);
    }
  });

  it('is random@1 at k=1 and a perfect scorer reaches pass@k', () => {
    const c = [0.1, 0.7, 0.3, 0.9, 0.2, 0.6].map((score, i) => ({ score, resolved: i === 1 || i === 3 }));
    expect(bestAtK(c, 1)).toBeCloseTo(randomAtK(6, 2, 1), 12);
    for (let k = 1; k <= 6; k++) expect(bestAtK(c, k)).toBeCloseTo(passAtK(6, 2, k), 12);
  });
});

describe('scalingCurve', () => {
  it('k = 1, 2, 4, … n and means over instances', () => {
    expect(scalingKs(8)).toEqual([1, 2, 4, 8]);
    expect(scalingKs(6)).toEqual([1, 2, 4, 6]);
    expect(scalingKs(1)).toEqual([1]);
    const curve = scalingCurve([
      { instance_id: 'a', candidates: [{ score: 0.9, resolved: true }, { score: 0.1, resolved: false }] },
      { instance_id: 'b', candidates: [{ score: 0.2, resolved: true }, { score: 0.8, resolved: false }] },
    ]);
    expect(curve).toEqual([
      { k: 1, instances: 2, pass: 0.5, best: 0.5, random: 0.5 },
      { k: 2, instances: 2, pass: 1, best: 0.5, random: 0.5 },
    ]);
  });

  it('has no best@k while a candidate is unscored', () => {
    const curve = scalingCurve([{ instance_id: 'a', candidates: [{ score: 0.9, resolved: true }, { score: null, resolved: false }] }]);
    expect(curve.map((p) => p.best)).toEqual([null, null]);
    expect(curve[1]!.pass).toBe(1);
  });
});
