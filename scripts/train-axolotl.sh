#!/usr/bin/env bash
# train-axolotl.sh — supervised fine-tuning with axolotl (`axolotl train`), for rft's `command`
# trainer backend. Reads the SFT file rft writes for axolotl (sft.backend axolotl: OpenAI chat
# JSONL, one {"messages": [...]} per line, every assistant message with a `weight` of 0 or 1,
# tool-call arguments as objects), writes an axolotl YAML with a `chat_template` dataset, trains,
# writes the model to <output-dir>/model and that path to <output-dir>/MODEL.
#
# Which tokens carry loss: the data says it. rft sets `weight` by the recipe's sft.train_on
# (assistant: every assistant turn 1; target: only the training target 1), and the dataset entry
# tells axolotl to read it: message_field_training: weight (a message's own field decides),
# roles_to_train: [assistant] (messages without the field: system, user and tool stay masked),
# train_on_eos: turn (the end-of-turn token of each trained turn is trained too).
#
# Recipe example:
# (a recipe in recipes/: its commands run from the recipe's folder, so the wrapper is ../scripts/)
#   finetune:
#     backend: command
#     base_model: Qwen/Qwen2.5-Coder-7B-Instruct
#     hyperparameters: { epochs: 5, learning_rate: 2e-5, batch_size: 8 }
#     command: >-
#       bash ../scripts/train-axolotl.sh --dataset {dataset} --output-dir {output_dir} --model {base_model}
#       --epochs {hp.epochs} --learning-rate {hp.learning_rate} --batch-size {hp.batch_size} --max-length 10240
#     output_model_file: '{output_dir}/MODEL'
#
# Flags (→ the axolotl setting each writes into <output-dir>/axolotl.yaml):
#   --dataset PATH         SFT data; copied to <output-dir>/axolotl-data/train.jsonl (→ datasets[0].path). Required.
#   --output-dir DIR       rft's fine-tune folder; the model goes to DIR/model (→ output_dir). Required.
#   --model NAME|PATH      base model, a Hub id or a local folder (→ base_model). Required.
#                          A LoRA adapter folder (adapter_config.json, e.g. the previous iteration's
#                          model with start_from: previous) needs --lora-rank: training starts from the
#                          base it names (→ base_model) and continues it (→ lora_model_dir), so the new
#                          adapter is relative to the same base.
#   --epochs N             → num_epochs (default 5)
#   --learning-rate LR     → learning_rate (default 2e-5)
#   --batch-size N         effective batch size = micro batch × gradient accumulation × GPUs
#                          (→ micro_batch_size, gradient_accumulation_steps; default 8)
#   --max-length N         tokens per example, longer ones are truncated (→ sequence_len; default 10240)
#   --train-on P           assistant (default) or target: the recipe's sft.train_on; checked against the
#                          data's weights (a line whose history has weight 1 is not target data)
#   --lora-rank R          optional: train a LoRA adapter (→ adapter: lora, lora_r: R, lora_alpha: 2R,
#                          lora_target_linear: true)
#   --micro-batch-size N   examples per device and step (default 1)
#   --gpus N               processes the batch is spread over, for the arithmetic above (default 1)
#   -- ARGS...             passed to `axolotl train` after the YAML
#   -h, --help             this text
# Always set: chat_template: tokenizer_default (the model's own template), bf16: auto,
# gradient_checkpointing: true, lr_scheduler: cosine, warmup_ratio: 0.1, val_set_size: 0,
# save_strategy: "no", logging_steps: 10.
#
# Needs: pip install axolotl (a GPU machine). Exit codes: 2 bad arguments, 127 axolotl missing.
set -euo pipefail

# (Plain bash to find it: the missing-tool message must work with nothing on PATH.)
here=${BASH_SOURCE[0]%/*}; [ "$here" != "${BASH_SOURCE[0]}" ] || here=.
source "$here/lib/trainer-args.sh"
trainer_parse_args "$@"
trainer_check_args
trainer_continue_adapter
trainer_check_train_on
# Target data has weight-0 history wherever there is history; assistant data has weight 0 only on
# invalid replies, each followed by the retry prompt answering it (rft writes keys sorted, content first).
if [ "$train_on" = assistant ] && sed 's/"weight":0},{"content":"Your last reply was not a valid action:/(spared)/g' "$dataset" | grep -q '"weight":0'; then
  die "--train-on assistant, but $dataset has weight-0 assistant messages that are not invalid replies (emit it with sft.train_on: assistant)"
fi
if grep -q '"prompt":\[' "$dataset"; then die "$dataset has prompt/completion lines (TRL's form); emit it with sft.backend: axolotl"; fi
trainer_batch_split
trainer_require_tool axolotl "pip install axolotl   (see docs.axolotl.ai)"

output_dir=$(mkdir -p "$output_dir" && cd "$output_dir" && pwd)
data_dir="$output_dir/axolotl-data"
mkdir -p "$data_dir"
cp "$dataset" "$data_dir/train.jsonl"
rm -f "$output_dir/MODEL"

config="$output_dir/axolotl.yaml"
{
  echo "base_model: $(q "$model")"
  echo "chat_template: tokenizer_default"
  echo "datasets:"
  echo "  - path: $(q "$data_dir/train.jsonl")"
  echo "    ds_type: json"
  echo "    type: chat_template"
  echo "    field_messages: messages"
  if grep -q '"tools":\[' "$dataset"; then echo "    field_tools: tools"; fi
  echo "    message_field_training: weight"
  echo "    roles_to_train: [assistant]"
  echo "    train_on_eos: turn"
  echo "dataset_prepared_path: $(q "$output_dir/axolotl-prepared")"
  echo "val_set_size: 0"
  echo "output_dir: $(q "$output_dir/model")"
  echo "sequence_len: $max_length"
  if [ -n "$lora_rank" ]; then
    echo "adapter: lora"
    [ -z "$adapter_dir" ] || echo "lora_model_dir: $(q "$adapter_dir")"
    echo "lora_r: $lora_rank"
    echo "lora_alpha: $((lora_rank * 2))"
    echo "lora_target_linear: true"
  fi
  echo "micro_batch_size: $micro_batch"
  echo "gradient_accumulation_steps: $accumulation"
  echo "num_epochs: $epochs"
  echo "learning_rate: $learning_rate"
  echo "lr_scheduler: cosine"
  echo "warmup_ratio: 0.1"
  echo "bf16: auto"
  echo "gradient_checkpointing: true"
  echo "logging_steps: 10"
  echo "save_strategy: \"no\""
} > "$config"

echo "train-axolotl.sh: axolotl train $config ${extra[*]:-}"
axolotl train "$config" "${extra[@]}"
echo "$output_dir/model" > "$output_dir/MODEL"
echo "train-axolotl.sh: model written to $output_dir/model"
