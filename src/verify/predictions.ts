import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { fileProblem, splitRecords, TaskFileError, type TaskProblem } from '../tasks/load.js';

/** One line of a SWE-bench predictions file. A null patch is a prediction that gave up. */
export const PredictionSchema = z.object({
  instance_id: z.string().min(1),
  model_name_or_path: z.string().min(1),
  model_patch: z
    .string()
    .nullable()
    .transform((v) => v ?? ''),
});
export type Prediction = z.infer<typeof PredictionSchema>;

/** Reads predictions (JSONL or a JSON array); every bad record and duplicate id is reported, nothing half-loaded. */
export function loadPredictions(file: string): Prediction[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TaskFileError(file, [fileProblem((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'predictions file not found; it is the JSONL of {instance_id, model_patch} that an agent harness writes for SWE-bench (e.g. its `run_api` inference script)' : (err as Error).message)]);
  }
  const problems: TaskProblem[] = [];
  const predictions: Prediction[] = [];
  const seen = new Map<string, number | null>();
  for (const record of splitRecords(text, file)) {
    const at = { line: record.line, index: record.index, instance_id: null };
    if (record.parseError !== null) {
      problems.push({ ...at, field: '', message: `invalid JSON: ${record.parseError}` });
      continue;
    }
    const result = PredictionSchema.safeParse(record.value);
    if (!result.success) {
      for (const issue of result.error.issues) problems.push({ ...at, field: issue.path.map(String).join('.'), message: issue.message.replace(/^Invalid input: /, '') });
      continue;
    }
    const id = result.data.instance_id;
    if (seen.has(id)) {
      problems.push({ ...at, instance_id: id, field: 'instance_id', message: `duplicate prediction (also at line ${seen.get(id) ?? '?'})` });
      continue;
    }
    seen.set(id, record.line);
    predictions.push(result.data);
  }
  if (problems.length > 0) throw new TaskFileError(file, problems);
  return predictions;
}
