#!/usr/bin/env bash
# Re-creates every shipped artifact in sparknet_hw/checkpoints/ with the project's own commands.
# This is the record of how they were made (corpus seed, training seed, epochs); it takes about
# an hour on 2 cores (200 epochs: 9 min for C=8, ~20 min for C=32).
# Usage: scripts/make_shipped.sh [CORPUS_DIR] [C ...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
CORPUS=${1:-build/corpus}
shift || true
WIDTHS=${*:-4 8 16 32}
OUT=sparknet_hw/checkpoints

[ -f "$CORPUS/corpus.json" ] || $PY -m sparknet_hw data synth --out "$CORPUS" --per-class 500 --seed 1948
$PY -m sparknet_hw data clips --root "$CORPUS" --split test --per-class 2 --out "$OUT/test_clips.npz"
for C in $WIDTHS; do
  $PY -m sparknet_hw train --C "$C" --data "$CORPUS" --epochs 200 --seed 1948 --out "$OUT/sparknet_C$C.pt"
  $PY -m sparknet_hw quantize --checkpoint "$OUT/sparknet_C$C.pt" --data "$CORPUS" \
      --weight-bits 8 --act-bits 8 --epochs 6 --seed 1948 --out "$OUT/sparknet_C${C}_int8.pt"
  $PY -m sparknet_hw export --checkpoint "$OUT/sparknet_C${C}_int8.pt" --out "build/export_C$C"
  cp "build/export_C$C/sparknet_export.json" "$OUT/sparknet_C${C}_int8_export.json"
done
$PY -m sparknet_hw results --data "$CORPUS"
