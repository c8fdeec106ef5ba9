#!/usr/bin/env bash
# The checkpoint round in a few commands: write a GGUF (stories15M's shape, seeded random
# weights, the LLaMA vocabulary), run it on a text prompt, look inside it, convert it to
# safetensors and back, and show how a truncated file is reported. Run from the repository root;
# everything is written to a temporary folder that is removed afterwards.
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
kiln() { node bin/kiln.js "$@"; }

kiln convert preset:stories15M "$dir/demo.gguf"
kiln run "$dir/demo.gguf" --prompt "Once upon a time" --max-tokens 32
kiln info "$dir/demo.gguf" | head -6
kiln convert "$dir/demo.gguf" "$dir/hf"
kiln convert "$dir/hf" "$dir/back.gguf"
head -c 1000000 "$dir/demo.gguf" > "$dir/cut.gguf"
if kiln info "$dir/cut.gguf"; then echo "expected an error for a truncated file" >&2; exit 1; fi
