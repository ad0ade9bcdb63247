#!/usr/bin/env bash
# train-trl.sh — supervised fine-tuning with Hugging Face TRL's `trl sft` CLI, for rft's
# `command` trainer backend. Reads the SFT file rft writes for TRL (sft.backend trl): one
# {"messages": [...]} per line for sft.train_on assistant, TRL's conversational prompt-completion
# form {"prompt": [...], "completion": [...]} for train_on target; trains, writes the model to
# <output-dir>/model and that path to <output-dir>/MODEL (point finetune.output_model_file at it).
# With --lora-rank, TRL writes the adapter to <output-dir>/adapter and scripts/lib/merge-lora.py
# (run with ${PYTHON:-python3}; peft + transformers) merges it into its base as the full model
# <output-dir>/model: `trl sft` reads --model_name_or_path with AutoConfig (a full model only) and
# has no flag to continue an adapter, and `vllm serve` serves a full model, so the next iteration
# (start_from: previous) and the server both get the merge.
#
# Which tokens carry loss (--train-on, the recipe's sft.train_on):
#   assistant  every assistant turn, prompts masked (SWE-Gym): --assistant_only_loss true. TRL takes
#              the assistant spans from {% generation %} markers in the chat template; when the model's
#              template is exactly one TRL ships the original of (Qwen2.5, Qwen3, Llama 3, Gemma, Phi-3, …:
#              trl/chat_template_utils.py get_training_chat_template, TRL 1.9) TRL swaps in its marked
#              training version; any other template (an edited one included) makes TRL stop with "The chat
#              template is not training-compatible": pass --chat-template (a template with the markers;
#              `rft sft check` says whether the model's own has them).
#   target     the last turn only: prompt-completion data and --completion_only_loss true.
#
# Recipe example (SWE-Gym 7B settings: full fine-tune, lr 2e-5, batch 8, 5 epochs, 10240 tokens):
# (a recipe in recipes/: its commands run from the recipe's folder, so the wrapper is ../scripts/)
#   finetune:
#     backend: command
#     base_model: Qwen/Qwen2.5-Coder-7B-Instruct
#     hyperparameters: { epochs: 5, learning_rate: 2e-5, batch_size: 8 }
#     command: >-
#       bash ../scripts/train-trl.sh --dataset {dataset} --output-dir {output_dir} --model {base_model}
#       --epochs {hp.epochs} --learning-rate {hp.learning_rate} --batch-size {hp.batch_size} --max-length 10240
#     output_model_file: '{output_dir}/MODEL'
# (32B as in the paper: add --lora-rank 64 and use learning_rate 5e-4.)
#
# Flags (→ the `trl sft` argument each sets):
#   --dataset PATH         SFT data, OpenAI chat JSONL. Linked as <output-dir>/data/train.jsonl and
#                          given as --dataset_name <output-dir>/data (a local folder of JSONL files). Required.
#   --output-dir DIR       rft's fine-tune folder; TRL writes to DIR/model (→ --output_dir). Required.
#   --model NAME|PATH      base model, a Hub id or a local folder (→ --model_name_or_path). Required.
#                          A full model: a LoRA adapter folder is refused (give the merged <dir>/model).
#   --epochs N             → --num_train_epochs (default 5)
#   --learning-rate LR     → --learning_rate (default 2e-5)
#   --batch-size N         effective batch size = micro batch × gradient accumulation × GPUs
#                          (→ --per_device_train_batch_size and --gradient_accumulation_steps; default 8)
#   --max-length N         tokens per example, longer ones are truncated (→ --max_length, the name since
#                          TRL 0.16; older TRL calls it max_seq_length) (default 10240)
#   --train-on P           assistant (default) or target: the recipe's sft.train_on; must match the data
#   --chat-template FILE   optional: a Jinja chat template marking assistant spans (→ --chat_template_path)
#   --lora-rank R          optional: train a LoRA adapter instead of all weights
#                          (→ --use_peft --lora_r R --lora_alpha 2R --lora_target_modules all-linear,
#                          --output_dir DIR/adapter), then merge it into DIR/model
#   --micro-batch-size N   examples per device and step (default 1)
#   --gpus N               processes the batch is spread over, for the arithmetic above (default 1);
#                          how the processes are launched is accelerate's configuration (`accelerate config`)
#   -- ARGS...             passed to `trl sft` unchanged (e.g. -- --attn_implementation flash_attention_2)
#   -h, --help             this text
# Always set: --bf16 true --gradient_checkpointing true --save_strategy no --logging_steps 10 --report_to none.
#
# Needs: pip install trl peft accelerate (a GPU machine; written against TRL 1.9). Exit codes: 2 bad
# arguments, 127 trl (or, with --lora-rank, the Python for the merge) missing.
set -euo pipefail

own_flags=(--chat-template)
chat_template=''
trainer_own_flag() { case "$1" in --chat-template) chat_template=$2 ;; esac; }
# (Plain bash to find it: the missing-tool message must work with nothing on PATH.)
here=${BASH_SOURCE[0]%/*}; [ "$here" != "${BASH_SOURCE[0]}" ] || here=.
source "$here/lib/trainer-args.sh"
trainer_parse_args "$@"
trainer_check_args
trainer_check_train_on
[ -z "$chat_template" ] || [ -f "$chat_template" ] || die "--chat-template $chat_template does not exist"
if [ -f "$model/adapter_config.json" ]; then
  die "--model $model is a LoRA adapter folder; trl sft starts from a full model only (it reads config.json first). Give the adapter merged into its base: train-trl.sh writes it to <output-dir>/model, the path in <output-dir>/MODEL"
fi
# The data's form must be the policy's: rft writes prompt/completion exactly for train_on target.
first=''
IFS= read -r -n 64 first < "$dataset" || true
case "$first" in
  '{"completion":'*|'{"prompt":'*) form=prompt_completion ;;
  '') form=empty ;;
  *) form=messages ;;
esac
if [ "$train_on" = target ] && [ "$form" = messages ]; then die "--train-on target needs prompt-completion lines; $dataset has messages (emit it with sft.train_on: target)"; fi
if [ "$train_on" = assistant ] && [ "$form" = prompt_completion ]; then die "--train-on assistant needs messages lines; $dataset has prompt/completion (emit it with sft.train_on: assistant)"; fi
trainer_batch_split
trainer_require_tool trl "pip install trl peft accelerate   (then run 'accelerate config')"
python=${PYTHON:-python3}
[ -z "$lora_rank" ] || trainer_require_tool "$python" "a Python with peft and transformers (pip install peft transformers), or set PYTHON to one"

mkdir -p "$output_dir/data"
ln -sf "$(cd "$(dirname "$dataset")" && pwd)/$(basename "$dataset")" "$output_dir/data/train.jsonl"
rm -f "$output_dir/MODEL"
if [ -n "$lora_rank" ]; then trained_dir=$output_dir/adapter; else trained_dir=$output_dir/model; fi

args=(
  --model_name_or_path "$model"
  --dataset_name "$output_dir/data"
  --output_dir "$trained_dir"
  --num_train_epochs "$epochs"
  --learning_rate "$learning_rate"
  --per_device_train_batch_size "$micro_batch"
  --gradient_accumulation_steps "$accumulation"
  --max_length "$max_length"
  --bf16 true
  --gradient_checkpointing true
  --save_strategy no
  --logging_steps 10
  --report_to none
)
if [ "$train_on" = assistant ]; then
  args+=(--assistant_only_loss true)
  [ -z "$chat_template" ] || args+=(--chat_template_path "$chat_template")
else
  args+=(--completion_only_loss true)
fi
if [ -n "$lora_rank" ]; then
  args+=(--use_peft --lora_r "$lora_rank" --lora_alpha "$((lora_rank * 2))" --lora_target_modules all-linear)
fi

echo "train-trl.sh: trl sft ${args[*]} ${extra[*]:-}"
trl sft "${args[@]}" ${extra[@]+"${extra[@]}"}
if [ -n "$lora_rank" ]; then
  echo "train-trl.sh: $python $here/lib/merge-lora.py $trained_dir $output_dir/model"
  "$python" "$here/lib/merge-lora.py" "$trained_dir" "$output_dir/model"
fi
echo "$output_dir/model" > "$output_dir/MODEL"
echo "train-trl.sh: model written to $output_dir/model"
