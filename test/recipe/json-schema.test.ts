import { describe, expect, it } from 'vitest';
import { recipeJsonSchema } from '../../src/recipe/json-schema.js';

describe('recipe JSON Schema', () => {
  const schema = recipeJsonSchema() as {
    $schema: string;
    required: string[];
    additionalProperties: boolean;
    properties: Record<string, { properties?: Record<string, { default?: unknown; description?: string }> }>;
  };

  it('is a draft 2020-12 schema that rejects unknown top-level keys', () => {
    expect(schema.$schema).toContain('2020-12');
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(expect.arrayContaining(['name', 'tasks', 'policy', 'finetune']));
  });

  it('carries defaults and descriptions for editors', () => {
    expect(schema.properties.select!.properties!.cap!.default).toBe(2);
    expect(schema.properties.sampling!.properties!.samples_per_task!.default).toBe(30);
    expect(schema.properties.select!.properties!.cap!.description).toMatch(/null keeps all/);
  });
});
