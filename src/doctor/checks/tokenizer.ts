import { pathProblem } from '../../recipe/paths.js';
import { isTiktokenEncoding, resolveTokenizerSpec } from '../../sft/tokenizer.js';
import type { DoctorContext } from '../context.js';
import { fail, ok, type CheckResult } from '../record.js';

/** The tokenizer SFT examples are counted with: an encoding name, or a folder with tokenizer.json and tokenizer_config.json. */
export async function checkTokenizer(ctx: DoctorContext): Promise<CheckResult[]> {
  const { recipe } = ctx;
  const spec = resolveTokenizerSpec(recipe.sft, recipe.finetune.base_model, ctx.baseDir);
  const what = 'tokenizer sft.tokenizer';
  if (isTiktokenEncoding(spec)) {
    const chosen = recipe.sft.tokenizer === null ? ' (the default)' : '';
    return [ok('tokenizer', what, `${spec}${chosen}, a js-tiktoken encoding: nothing to load`)];
  }
  const problem = pathProblem({ field: 'sft.tokenizer', fieldPath: ['sft', 'tokenizer'], what: 'tokenizer folder', written: recipe.sft.tokenizer ?? spec, resolved: spec });
  if (problem === null) return [ok('tokenizer', what, `folder ${spec} has tokenizer.json and tokenizer_config.json`)];
  return [
    fail(
      'tokenizer',
      what,
      problem,
      `download the model's tokenizer there (\`huggingface-cli download ${recipe.finetune.base_model} tokenizer.json tokenizer_config.json --local-dir ${spec}\`) or set sft.tokenizer to cl100k_base`,
    ),
  ];
}
