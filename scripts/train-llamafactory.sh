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
#   finetune:
#     backend: command
#     base_model: Qwen/Qwen2.5-Coder-32B-Instruct
#     hyperparameters: { epochs: 5, learning_rate: 5e-4, batch_size: 8 }
#     command: >-
#       bash scripts/train-llamafactory.sh --dataset {dataset} --output-dir {output_dir} --model {base_model}
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

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "train-llamafactory.sh: $*" >&2; echo "(train-llamafactory.sh --help lists the flags)" >&2; exit 2; }

dataset='' output_dir='' model='' epochs=5 learning_rate=2e-5 batch_size=8 max_length=10240
lora_rank='' template=qwen micro_batch=1 gpus=1 train_on=assistant
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --dataset|--output-dir|--model|--epochs|--learning-rate|--batch-size|--max-length|--lora-rank|--template|--micro-batch-size|--gpus|--train-on)
      [ $# -ge 2 ] || die "$1 needs a value"
      case "$1" in
        --dataset) dataset=$2 ;; --output-dir) output_dir=$2 ;; --model) model=$2 ;;
        --epochs) epochs=$2 ;; --learning-rate) learning_rate=$2 ;; --batch-size) batch_size=$2 ;;
        --max-length) max_length=$2 ;; --lora-rank) lora_rank=$2 ;; --template) template=$2 ;;
        --micro-batch-size) micro_batch=$2 ;; --gpus) gpus=$2 ;; --train-on) train_on=$2 ;;
      esac
      shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown argument: $1" ;;
  esac
done

[ -n "$dataset" ] || die "--dataset is required"
[ -n "$output_dir" ] || die "--output-dir is required"
[ -n "$model" ] || die "--model is required"
[ -f "$dataset" ] || die "--dataset $dataset does not exist"
is_int() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
is_num() { [[ "$1" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$ ]]; }
for pair in "batch-size:$batch_size" "max-length:$max_length" "micro-batch-size:$micro_batch" "gpus:$gpus"; do
  is_int "${pair#*:}" || die "--${pair%%:*} must be a positive whole number, not ${pair#*:}"
done
is_num "$epochs" || die "--epochs must be a number, not $epochs"
is_num "$learning_rate" || die "--learning-rate must be a number, not $learning_rate"
[ -z "$lora_rank" ] || is_int "$lora_rank" || die "--lora-rank must be a positive whole number, not $lora_rank"
[[ "$template" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--template must be a LLaMA-Factory template name, not $template"
case "$train_on" in assistant|target) ;; *) die "--train-on must be assistant or target, not $train_on" ;; esac
if [ "$train_on" = target ]; then mask_history=true; else mask_history=false; fi
per_step=$((micro_batch * gpus))
[ $((batch_size % per_step)) -eq 0 ] || die "--batch-size $batch_size is not a multiple of micro batch × gpus ($per_step)"
accumulation=$((batch_size / per_step))

if ! command -v llamafactory-cli >/dev/null 2>&1; then
  echo "train-llamafactory.sh: the 'llamafactory-cli' command is not installed in this environment." >&2
  echo "  Install it on the GPU machine: pip install llamafactory   (see github.com/hiyouga/LLaMA-Factory)" >&2
  exit 127
fi

# A YAML (and JSON) double-quoted string.
q() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

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
