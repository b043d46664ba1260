#!/usr/bin/env bash
# Re-runs every command whose output the README quotes and saves each output under
# build/figures/ (the README tables are copied from these files).  About an hour on
# 2 cores, most of it synthesis and Icarus.  Usage: scripts/readme_figures.sh [CORPUS_DIR]
# (REAL=DIR for another copy of the real clips; the real-speech tables need ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
CORPUS=${1:-build/corpus}
OUT=build/figures
mkdir -p "$OUT"
CLIPS=sparknet_hw/checkpoints/test_clips.npz
REAL=${REAL:-../shared/data}

[ -f "$CORPUS/corpus.json" ] || $PY -m sparknet_hw data synth --out "$CORPUS" --per-class 500 --seed 1948
for C in 4 8 16 32; do $PY -m sparknet_hw info --C "$C"; done > "$OUT/info.txt"
if [ -d "$REAL/gsc-dev" ]; then
  # held-out speakers of the real clips (validation split: 15 % of the speakers)
  $PY -m sparknet_hw results --data "$REAL/gsc-dev" | tee "$OUT/results_real_dev.md"
  $PY -m sparknet_hw results --data "$REAL/gsc-train" | tee "$OUT/results_real_train.md"
  $PY -m sparknet_hw eval --checkpoint sparknet_hw/checkpoints/sparknet_C8_int8.pt --data "$REAL/gsc-dev" > "$OUT/eval_C8_int8_real.txt"
fi
$PY -m sparknet_hw results --data "$CORPUS" | tee "$OUT/results.md"
$PY -m sparknet_hw eval --checkpoint sparknet_hw/checkpoints/sparknet_C8.pt --data "$CORPUS" > "$OUT/eval_C8.txt"
$PY -m sparknet_hw sim --C 8 --inputs "$CLIPS" --seed 1 | tee "$OUT/sim_C8.txt"
$PY -m sparknet_hw sim --C 8 --inputs "$CLIPS" --seed 1 --no-skip | tee "$OUT/sim_C8_noskip.txt"
$PY -m sparknet_hw sim --C 8 --inputs "$CLIPS" --seed 1 --depthwise channels | tee "$OUT/sim_C8_channels.txt"
$PY -m sparknet_hw build --C 8 --board ulx3s --clips 4 --force | tee "$OUT/build_C8_ulx3s.txt"
$PY -m sparknet_hw build --C 8 --board ulx3s --clips 4 --depthwise channels --force \
  --out build/sparknet_C8_ulx3s_channels > "$OUT/build_C8_ulx3s_channels.txt"
$PY -m sparknet_hw build --C 32 --board ulx3s --clips 4 --depthwise frames --force \
  --out build/sparknet_C32_ulx3s_frames > "$OUT/build_C32_ulx3s_frames.txt"
$PY -m sparknet_hw build --C 8 --force | tee "$OUT/build_C8_icebreaker.txt"
$PY scripts/ice40_modules.py build/sparknet_C8_icebreaker > "$OUT/ice40_modules.txt"
$PY scripts/ice40_classifier.py > "$OUT/ice40_classifier.txt"
$PY -m sparknet_hw build --C 8 --pll-mhz 24 --clips 4 --force --out build/sparknet_C8_icebreaker_pll \
  | tee "$OUT/build_C8_icebreaker_pll.txt"
for cfg in "8 8 skip" "8 8 skipch" "8 2 skip" "8 2 skipch" "8 2 skip1x1" "8 2 skip1x1 block" "8 2 noskip"; do
  $PY scripts/ice40_area.py $cfg
done > "$OUT/ice40_area.txt"
$PY -m sparknet_hw sim --C 8 --pes 2 --depthwise channels --inputs "$CLIPS" --clips 4 --seed 1 > "$OUT/sim_C8_2pes_all_channels.txt"
for mode in all 1x1 off; do
  $PY -m sparknet_hw sim --C 8 --pes 2 --skip $mode --inputs "$CLIPS" --clips 4 --seed 1 > "$OUT/sim_C8_2pes_$mode.txt"
done
$PY -m sparknet_hw sim --C 8 --skip 1x1 --inputs "$CLIPS" --seed 1 > "$OUT/sim_C8_1x1.txt"
$PY -m sparknet_hw sim --C 8 --inputs "$CLIPS" --clips 1 --seed 1 > "$OUT/sim_C8_verilator_1clip.txt"
$PY -m sparknet_hw bench | tee "$OUT/bench.txt"
# 8 PEs (C = 8, 1x1 skipping) do not fit the UP5K: the build says by how much
$PY -m sparknet_hw build --C 8 --pes 8 --clips 1 --force \
  --out build/sparknet_C8_icebreaker_8pes > "$OUT/build_C8_8pes_misfit.txt" 2>&1 || true
# 4 PEs at C = 16: at the edge of the UP5K (5,274 of 5,280 cells on 2026-12-08; 5,287 the
# revision before, which did not fit); the build says which
$PY -m sparknet_hw build --C 16 --pes 4 --clips 2 --force \
  --out build/sparknet_C16_icebreaker_4pes > "$OUT/build_C16_4pes.txt" 2>&1 || true
$PY -m sparknet_hw bench --predict | tee "$OUT/bench_predict.txt"
for C in 4 8 16 32; do
  $PY -m sparknet_hw sim --C "$C" --simulator icarus --inputs "$CLIPS" --clips 1 --seed 1 > "$OUT/sim_C${C}_icarus.txt"
done
# the learning curve (README "Results on real speech"): ~30 minutes on 2 cores; LEARNING_CURVE=1
if [ "${LEARNING_CURVE:-0}" = 1 ] && [ -d "$REAL/gsc-dev" ]; then
  $PY scripts/learning_curve.py --real "$REAL" --corpus "$CORPUS" --epochs 30 | tee "$OUT/learning_curve.txt"
  cp build/learning_curve/learning_curve.png build/learning_curve/learning_curve.json docs/
fi
$PY -m sparknet_hw bench --energy --C 8 > "$OUT/bench_energy_C8.txt"
