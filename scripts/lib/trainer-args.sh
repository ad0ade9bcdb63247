# trainer-args.sh — the argument handling every scripts/train-*.sh wrapper shares: --help, the
# error exit, the common flags and their checks, the batch arithmetic, the missing-tool message.
# Sourced, not run. Before sourcing, a wrapper may set:
#   own_flags=(--template ...)   flags of its own that take a value; for each, trainer_own_flag
#                                FLAG VALUE (a function the wrapper defines) stores the value.
# After `trainer_parse_args "$@"` these are set: dataset output_dir model epochs learning_rate
# batch_size max_length lora_rank micro_batch gpus train_on extra (the array after `--`).
# Messages name the wrapper ($0's file name), as each wrapper's did on its own.

trainer_name=${0##*/}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "$trainer_name: $*" >&2; echo "($trainer_name --help lists the flags)" >&2; exit 2; }
is_int() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
is_num() { [[ "$1" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$ ]]; }
# A YAML (and JSON) double-quoted string.
q() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

dataset='' output_dir='' model='' epochs=5 learning_rate=2e-5 batch_size=8 max_length=10240
lora_rank='' micro_batch=1 gpus=1 train_on=assistant
extra=()
[ -n "${own_flags+set}" ] || own_flags=()

trainer_is_own_flag() {
  local f
  for f in ${own_flags[@]+"${own_flags[@]}"}; do [ "$f" = "$1" ] && return 0; done
  return 1
}

# Reads the flags into the variables above; -h/--help prints the header comment and exits 0.
trainer_parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      -h|--help) usage; exit 0 ;;
      --dataset|--output-dir|--model|--epochs|--learning-rate|--batch-size|--max-length|--lora-rank|--micro-batch-size|--gpus|--train-on)
        [ $# -ge 2 ] || die "$1 needs a value"
        case "$1" in
          --dataset) dataset=$2 ;; --output-dir) output_dir=$2 ;; --model) model=$2 ;;
          --epochs) epochs=$2 ;; --learning-rate) learning_rate=$2 ;; --batch-size) batch_size=$2 ;;
          --max-length) max_length=$2 ;; --lora-rank) lora_rank=$2 ;; --micro-batch-size) micro_batch=$2 ;;
          --gpus) gpus=$2 ;; --train-on) train_on=$2 ;;
        esac
        shift 2 ;;
      --) shift; extra=("$@"); break ;;
      *)
        trainer_is_own_flag "$1" || die "unknown argument: $1"
        [ $# -ge 2 ] || die "$1 needs a value"
        trainer_own_flag "$1" "$2"
        shift 2 ;;
    esac
  done
}

# The checks of the common flags: required ones present, the dataset a file, numbers numbers.
# (--train-on is checked by trainer_check_train_on, after any checks of the wrapper's own flags.)
trainer_check_args() {
  [ -n "$dataset" ] || die "--dataset is required"
  [ -n "$output_dir" ] || die "--output-dir is required"
  [ -n "$model" ] || die "--model is required"
  [ -f "$dataset" ] || die "--dataset $dataset does not exist"
  local pair
  for pair in "batch-size:$batch_size" "max-length:$max_length" "micro-batch-size:$micro_batch" "gpus:$gpus"; do
    is_int "${pair#*:}" || die "--${pair%%:*} must be a positive whole number, not ${pair#*:}"
  done
  is_num "$epochs" || die "--epochs must be a number, not $epochs"
  is_num "$learning_rate" || die "--learning-rate must be a number, not $learning_rate"
  [ -z "$lora_rank" ] || is_int "$lora_rank" || die "--lora-rank must be a positive whole number, not $lora_rank"
}

trainer_check_train_on() {
  case "$train_on" in assistant|target) ;; *) die "--train-on must be assistant or target, not $train_on" ;; esac
}

# Sets per_step and accumulation: batch size = micro batch × gradient accumulation × GPUs.
trainer_batch_split() {
  per_step=$((micro_batch * gpus))
  [ $((batch_size % per_step)) -eq 0 ] || die "--batch-size $batch_size is not a multiple of micro batch × gpus ($per_step)"
  accumulation=$((batch_size / per_step))
}

# trainer_require_tool COMMAND INSTALL-HINT: exit 127 with the hint when COMMAND is not on PATH.
trainer_require_tool() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "$trainer_name: the '$1' command is not installed in this environment." >&2
    echo "  Install it on the GPU machine: $2" >&2
    exit 127
  fi
}

# The base a LoRA adapter folder names (adapter_config.json's base_model_name_or_path), or nothing.
# PEFT writes the file as indented JSON with the key on a line of its own.
trainer_adapter_base() {
  sed -n 's/^[[:space:]]*"base_model_name_or_path":[[:space:]]*"\(.*\)",\{0,1\}[[:space:]]*$/\1/p' "$1/adapter_config.json" | head -n 1 | sed 's/\\"/"/g; s/\\\\/\\/g'
}

# For trainers that continue an adapter (LLaMA-Factory, axolotl): when --model is a LoRA adapter
# folder (the previous iteration's output with start_from: previous), train from its base and
# continue the adapter, so the new adapter is relative to the same base (and can be loaded into
# the vLLM already serving that base). Sets adapter_dir ('' when --model is a full model).
adapter_dir=''
trainer_continue_adapter() {
  [ -f "$model/adapter_config.json" ] || return 0
  [ -n "$lora_rank" ] || die "--model $model is a LoRA adapter folder (it has adapter_config.json); continuing it needs --lora-rank (the rank it was trained with), or give a full model folder"
  local base
  base=$(trainer_adapter_base "$model")
  [ -n "$base" ] || die "--model $model: adapter_config.json names no base_model_name_or_path"
  adapter_dir=$(cd "$model" && pwd)
  model=$base
}
