#!/usr/bin/env bash
# train-llamafactory.sh — supervised fine-tuning with LLaMA-Factory (`llamafactory-cli train`),
# for rft's `command` trainer backend. Reads the SFT file rft writes for LLaMA-Factory
# (sft.backend llamafactory: OpenAI chat JSONL, one {"messages": [...]} per line, tool-call
# arguments as objects), registers it in a dataset_info.json — "sharegpt" formatting with OpenAI
# role/content tags, or, when the lines carry tools, LLaMA-Factory's "openai" formatting (tool_calls
# become function turns, tool messages observation turns, the tools column is read) — writes a
# training YAML, trains, writes the model to <output-dir>/model and that path to <output-dir>/MODEL.
#
# Which tokens carry loss (--train-on, the recipe's sft.train_on): train_on_prompt: false always;
#   assistant  every assistant turn (mask_history: false), SWE-Gym's choice
#   target     the last turn only (mask_history: true)
# LLaMA-Factory keeps a system message only as the first message: rft refuses sft.unit trajectory
# with this backend at recipe check.
#
# Recipe example (SWE-Gym 32B settings: LoRA rank 64, lr 5e-4, 10240 tokens):
# (a recipe in recipes/: its commands run from the recipe's folder, so the wrapper is ../scripts/)
#   finetune:
#     backend: command
#     base_model: Qwen/Qwen2.5-Coder-32B-Instruct
#     hyperparameters: { epochs: 5, learning_rate: 5e-4, batch_size: 8 }
#     command: >-
#       bash ../scripts/train-llamafactory.sh --dataset {dataset} --output-dir {output_dir} --model {base_model}
#       --epochs {hp.epochs} --learning-rate {hp.learning_rate} --batch-size {hp.batch_size}
#       --max-length 10240 --lora-rank 64 --template qwen
#     output_model_file: '{output_dir}/MODEL'
#
# Flags (→ the LLaMA-Factory setting each writes into <output-dir>/llamafactory.yaml):
#   --dataset PATH         SFT data, OpenAI chat JSONL; copied to <output-dir>/lf-data/train.jsonl and
#                          registered as dataset "rft_sft" in <output-dir>/lf-data/dataset_info.json
#                          (→ dataset: rft_sft, dataset_dir: <output-dir>/lf-data). Required.
#   --output-dir DIR       rft's fine-tune folder; the model goes to DIR/model (→ output_dir). Required.
#   --model NAME|PATH      base model, a Hub id or a local folder (→ model_name_or_path). Required.
#                          A LoRA adapter folder (adapter_config.json, e.g. the previous iteration's
#                          model with start_from: previous) needs --lora-rank: training starts from the
#                          base it names (→ model_name_or_path) and continues it (→ adapter_name_or_path),
#                          so the new adapter is relative to the same base.
#   --epochs N             → num_train_epochs (default 5)
#   --learning-rate LR     → learning_rate (default 2e-5)
#   --batch-size N         effective batch size = micro batch × gradient accumulation × GPUs
#                          (→ per_device_train_batch_size, gradient_accumulation_steps; default 8)
#   --max-length N         tokens per example, longer ones are truncated (→ cutoff_len; default 10240)
#   --lora-rank R          optional: train a LoRA adapter (→ finetuning_type: lora, lora_rank: R,
#                          lora_alpha: 2R, lora_target: all); without it: finetuning_type: full
#   --train-on P           assistant (default) or target: the recipe's sft.train_on (→ mask_history)
#   --template NAME        LLaMA-Factory chat template of the model family (→ template; default qwen)
#   --micro-batch-size N   examples per device and step (default 1)
#   --gpus N               processes the batch is spread over, for the arithmetic above (default 1;
#                          llamafactory-cli starts one per visible GPU: set CUDA_VISIBLE_DEVICES)
#   -- KEY=VALUE...        overrides passed after the YAML to `llamafactory-cli train`
#                          (e.g. -- deepspeed=examples/deepspeed/ds_z3_config.json for a 7B full fine-tune)
#   -h, --help             this text
# Always set: stage: sft, do_train: true, bf16: true, lr_scheduler_type: cosine, warmup_ratio: 0.1,
# save_strategy: "no", logging_steps: 10, plot_loss: true, overwrite_output_dir: true, report_to: none.
#
# Needs: pip install llamafactory (a GPU machine). Exit codes: 2 bad arguments, 127 llamafactory-cli missing.
set -euo pipefail

own_flags=(--template)
template=qwen
trainer_own_flag() { case "$1" in --template) template=$2 ;; esac; }
# (Plain bash to find it: the missing-tool message must work with nothing on PATH.)
here=${BASH_SOURCE[0]%/*}; [ "$here" != "${BASH_SOURCE[0]}" ] || here=.
source "$here/lib/trainer-args.sh"
trainer_parse_args "$@"
trainer_check_args
trainer_continue_adapter
[[ "$template" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--template must be a LLaMA-Factory template name, not $template"
trainer_check_train_on
if [ "$train_on" = target ]; then mask_history=true; else mask_history=false; fi
trainer_batch_split
trainer_require_tool llamafactory-cli "pip install llamafactory   (see github.com/hiyouga/LLaMA-Factory)"

output_dir=$(mkdir -p "$output_dir" && cd "$output_dir" && pwd)
data_dir="$output_dir/lf-data"
mkdir -p "$data_dir"
cp "$dataset" "$data_dir/train.jsonl"
rm -f "$output_dir/MODEL"
if grep -q '"tools":\[' "$dataset"; then
  # Tools protocol: the "openai" converter maps assistant tool_calls to function turns and merges
  # consecutive tool messages into one observation turn; the tools column feeds the template.
  formatting=openai
  columns='"messages": "messages", "tools": "tools"'
  extra_tags=',
      "observation_tag": "tool",
      "function_tag": "function_call"'
else
  formatting=sharegpt
  columns='"messages": "messages"'
  extra_tags=''
fi
cat > "$data_dir/dataset_info.json" <<EOF
{
  "rft_sft": {
    "file_name": "train.jsonl",
    "formatting": "$formatting",
    "columns": { $columns },
    "tags": {
      "role_tag": "role",
      "content_tag": "content",
      "user_tag": "user",
      "assistant_tag": "assistant",
      "system_tag": "system"$extra_tags
    }
  }
}
EOF

config="$output_dir/llamafactory.yaml"
{
  echo "### model"
  echo "model_name_or_path: $(q "$model")"
  [ -z "$adapter_dir" ] || echo "adapter_name_or_path: $(q "$adapter_dir")"
  echo "trust_remote_code: true"
  echo "### method"
  echo "stage: sft"
  echo "do_train: true"
  if [ -n "$lora_rank" ]; then
    echo "finetuning_type: lora"
    echo "lora_rank: $lora_rank"
    echo "lora_alpha: $((lora_rank * 2))"
    echo "lora_target: all"
  else
    echo "finetuning_type: full"
  fi
  echo "### dataset"
  echo "dataset: rft_sft"
  echo "dataset_dir: $(q "$data_dir")"
  echo "template: $template"
  echo "cutoff_len: $max_length"
  echo "train_on_prompt: false"
  echo "mask_history: $mask_history"
  echo "overwrite_cache: true"
  echo "preprocessing_num_workers: 8"
  echo "### output"
  echo "output_dir: $(q "$output_dir/model")"
  echo "logging_steps: 10"
  echo "save_strategy: \"no\""
  echo "plot_loss: true"
  echo "overwrite_output_dir: true"
  echo "report_to: none"
  echo "### train"
  echo "per_device_train_batch_size: $micro_batch"
  echo "gradient_accumulation_steps: $accumulation"
  echo "learning_rate: $learning_rate"
  echo "num_train_epochs: $epochs"
  echo "lr_scheduler_type: cosine"
  echo "warmup_ratio: 0.1"
  echo "bf16: true"
} > "$config"

echo "train-llamafactory.sh: llamafactory-cli train $config ${extra[*]:-}"
llamafactory-cli train "$config" "${extra[@]}"
echo "$output_dir/model" > "$output_dir/MODEL"
echo "train-llamafactory.sh: model written to $output_dir/model"
