import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { EnginePool, isEngineFailure } from '../../src/sandbox/engine-pool.js';

const fake = (name: string) => ({ name }) as unknown as Docker;

describe('engine pool', () => {
  it('spreads containers by free capacity and waits when every engine is full', async () => {
    const pool = new EnginePool([
      { url: 'unix:///a.sock', docker: fake('a'), capacity: 2 },
      { url: 'unix:///b.sock', docker: fake('b'), capacity: 1 },
    ]);
    const leases = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
    expect(leases.map((l) => l.url).sort()).toEqual(['unix:///a.sock', 'unix:///a.sock', 'unix:///b.sock']);
    let fourth: string | null = null;
    const waiting = pool.acquire().then((l) => (fourth = l.url));
    await new Promise((r) => setTimeout(r, 20));
    expect(fourth).toBeNull();
    leases.find((l) => l.url === 'unix:///b.sock')!.release();
    await waiting;
    expect(fourth).toBe('unix:///b.sock');
  });

  it('takes a failed engine out of rotation with a warning and goes on with the others', async () => {
    const warnings: string[] = [];
    const pool = new EnginePool(
      [
        { url: 'unix:///a.sock', docker: fake('a'), capacity: 1 },
        { url: 'unix:///b.sock', docker: fake('b'), capacity: 1 },
      ],
      (m) => warnings.push(m),
    );
    const a = await pool.acquire();
    const b = await pool.acquire();
    const waiting = pool.acquire();
    b.release({ failed: new Error('connect ECONNREFUSED') });
    expect(warnings[0]).toMatch(/engine unix:\/\/\/b\.sock failed .* taken out of rotation/);
    a.release();
    expect((await waiting).url).toBe('unix:///a.sock');
    expect(pool.healthy().map((e) => e.url)).toEqual(['unix:///a.sock']);
    pool.takeOut('unix:///a.sock', new Error('gone'));
    await expect(pool.acquire()).rejects.toThrow(/no Docker engine left/);
  });

  it('tells engine failures from other errors', () => {
    expect(isEngineFailure(Object.assign(new Error('connect ECONNREFUSED /x.sock'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isEngineFailure(new Error('socket hang up'))).toBe(true);
    expect(isEngineFailure(new Error('infrastructure: connect ENOENT /tmp/rft-e2-x/d.sock'))).toBe(true);
    expect(isEngineFailure(Object.assign(new Error('no such image'), { statusCode: 404 }))).toBe(false);
  });
});
