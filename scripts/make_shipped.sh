#!/usr/bin/env bash
# Re-creates every shipped artifact in sparknet_hw/checkpoints/ with the project's own commands.
# This is the record of how they were made: the offline corpus (seed 1948), the real Speech
# Commands clips of ../shared/data (gsc-train and gsc-dev; 15 % of each folder's speakers held
# out for validation by the fixed speaker hash, `data stats --root DIR` lists the split), the
# real-speech recipe (docs/training.md), the training seed, the epochs per width, and QAT.
# Each checkpoint records its data sources, split, recipe and the commit that trained it.
# Usage: scripts/make_shipped.sh [CORPUS_DIR] [C ...]   (REAL=DIR for another copy of the clips;
# JOBS=2 trains two widths at once, one thread each: about 1 h 15 min for all four on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
CORPUS=${1:-build/corpus}
shift || true
WIDTHS=${*:-4 8 16 32}
REAL=${REAL:-../shared/data}
OUT=sparknet_hw/checkpoints
# epochs per width: the authors' 200 do not fit the 30-minute training budget on 2 cores
# with ~13k training clips (C=8: ~13 s per epoch on one core, C=32: ~25 s)
declare -A EPOCHS=([4]=100 [8]=100 [16]=80 [32]=80)
# the training gate's noise: 0.25 rather than the authors' 0.5 where it gained on the held-out
# speakers; C = 4 did not gain and keeps 0.5 (docs/training.md, "Less gate noise")
declare -A GATE_NOISE=([4]=0.5 [8]=0.25 [16]=0.25 [32]=0.25)
JOBS=${JOBS:-1}
DATA=(--data "$CORPUS" --data "$REAL/gsc-train" --data "$REAL/gsc-dev")

[ -d "$REAL/gsc-train" ] && [ -d "$REAL/gsc-dev" ] || {
  echo "make_shipped: $REAL/gsc-train and $REAL/gsc-dev (real Speech Commands clips) are needed" >&2
  exit 2; }
[ -f "$CORPUS/corpus.json" ] || $PY -m sparknet_hw data synth --out "$CORPUS" --per-class 500 --seed 1948
# the clips build and sim verify the RTL on: real speakers of the held-out validation split
# The clips are picked by name; their MFCC differ in the last float bits from one machine's
# FFT to another's, so the committed file stays when the same clips are picked.
mkdir -p build
$PY -m sparknet_hw data clips --root "$REAL/gsc-dev" --split validation --per-class 2 \
    --out build/test_clips.npz
$PY - "$OUT/test_clips.npz" build/test_clips.npz <<'EOF' || cp build/test_clips.npz "$OUT/test_clips.npz"
import sys, numpy as np
old, new = (np.load(p) for p in sys.argv[1:])
sys.exit(0 if list(old["names"]) == list(new["names"]) and
         (old["labels"] == new["labels"]).all() else 1)
EOF
make_width() {
  local C=$1
  $PY -m sparknet_hw train --C "$C" "${DATA[@]}" --recipe real-speech --epochs "${EPOCHS[$C]}" \
      --gate-noise "${GATE_NOISE[$C]}" --seed 1948 --out "$OUT/sparknet_C$C.pt"
  $PY -m sparknet_hw quantize --checkpoint "$OUT/sparknet_C$C.pt" "${DATA[@]}" \
      --weight-bits 8 --act-bits 8 --epochs 6 --seed 1948 --out "$OUT/sparknet_C${C}_int8.pt"
  $PY -m sparknet_hw export --checkpoint "$OUT/sparknet_C${C}_int8.pt" --out "build/export_C$C"
  cp "build/export_C$C/sparknet_export.json" "$OUT/sparknet_C${C}_int8_export.json"
}
if [ "$JOBS" -gt 1 ]; then
  # widest first so the longest run starts at once; each width logs to build/make_shipped_C<C>.log
  export OMP_NUM_THREADS=1
  running=0
  for C in $(printf '%s\n' $WIDTHS | sort -rn); do
    make_width "$C" > "build/make_shipped_C$C.log" 2>&1 &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
  done
  while [ "$running" -gt 0 ]; do wait -n; running=$((running - 1)); done
else
  for C in $WIDTHS; do make_width "$C"; done
fi
$PY -m sparknet_hw results --data "$REAL/gsc-dev"
$PY -m sparknet_hw results --data "$CORPUS"
