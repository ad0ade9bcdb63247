"""merge-lora.py ADAPTER_DIR OUTPUT_DIR — merge a LoRA adapter into its base model and save the
result as a full model folder (config.json, safetensors weights, tokenizer), which `trl sft` can
start the next iteration from and `vllm serve` can serve. Run by scripts/train-trl.sh with
${PYTHON:-python3}; needs peft and transformers (installed with trl's --use_peft anyway).
The base is the adapter's adapter_config.json base_model_name_or_path (a local folder or a Hub id).
"""
import argparse
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser(prog="merge-lora.py")
    parser.add_argument("adapter_dir")
    parser.add_argument("output_dir")
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(args.adapter_dir, "adapter_config.json")):
        print(f"merge-lora.py: {args.adapter_dir} has no adapter_config.json (not a LoRA adapter folder)", file=sys.stderr)
        return 2
    try:
        from peft import AutoPeftModelForCausalLM
        from transformers import AutoTokenizer
    except ImportError as err:
        print(f"merge-lora.py: {err}; install with: pip install peft transformers", file=sys.stderr)
        return 127
    # Loads the base named in adapter_config.json, applies the adapter, folds it into the weights.
    model = AutoPeftModelForCausalLM.from_pretrained(args.adapter_dir, dtype="auto")
    merged = model.merge_and_unload()
    merged.save_pretrained(args.output_dir, safe_serialization=True)
    # The tokenizer the adapter was trained with (TRL saves it beside the adapter), else the base's.
    has_tokenizer = os.path.isfile(os.path.join(args.adapter_dir, "tokenizer_config.json"))
    source = args.adapter_dir if has_tokenizer else model.peft_config["default"].base_model_name_or_path
    AutoTokenizer.from_pretrained(source).save_pretrained(args.output_dir)
    print(f"merge-lora.py: {args.adapter_dir} merged into its base, saved to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
