import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { imageNameFor } from '../../src/tasks/image-name.js';
import { loadInstances } from '../../src/tasks/load.js';

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/minigym/tasks.jsonl');

describe('the bundled minigym instance file', () => {
  it('loads, with at least 8 instances that each have FAIL_TO_PASS and at least 3 PASS_TO_PASS tests', () => {
    const instances = loadInstances(FIXTURE);
    expect(instances.length).toBeGreaterThanOrEqual(8);
    for (const instance of instances) {
      expect(instance.FAIL_TO_PASS.length, instance.instance_id).toBeGreaterThan(0);
      expect(instance.PASS_TO_PASS.length, instance.instance_id).toBeGreaterThanOrEqual(3);
      expect(instance.FAIL_TO_PASS.filter((t) => instance.PASS_TO_PASS.includes(t)), instance.instance_id).toEqual([]);
      expect(() => imageNameFor(instance.instance_id, 'swebench')).not.toThrow();
    }
  });
});
