#!/usr/bin/env bash
# The seed-noise figure of the README and docs/statistics.md (docs/images/seed_noise.png) and reliability diagram
# (docs/images/reliability.png): two losses x two training seeds on 2D phantoms.
#
#   scripts/seed_noise_figure.sh [WORK_DIR]      # default /tmp/unifocal-seed-noise
#
# 1. Writes 20 BUS2017 phantom images to WORK_DIR/data (make-phantoms) if missing.
# 2. Trains configs/demo2d_dice.yaml and configs/demo2d_focal.yaml with run-experiment --seeds 0,1:
#    the same five folds, each trained once per seed (WORK_DIR/runs/<name>/seed_<S>/fold_<K>/).
#    Rerunning resumes; a few CPU minutes on 2 cores.
# 3. compare-losses into WORK_DIR/results (seed SD, differences_<class>.md, seed_noise.png) and copies
#    seed_noise.png to docs/images/; compare-losses --metric ece into WORK_DIR/results_ece (calibration
#    tables, reliability.png) and copies reliability.png to docs/images/.
# Run from anywhere with the project's commands on PATH, e.g. `uv run scripts/seed_noise_figure.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/unifocal-seed-noise}
started=$SECONDS

if [[ ! -d $work/data ]]; then
  make-phantoms bus2017 "$work/data" --size demo --cases 20
fi
run_dirs=()
for loss in dice focal; do
  echo "== run-experiment configs/demo2d_$loss.yaml --seeds 0,1" >&2
  run-experiment "configs/demo2d_$loss.yaml" --seeds 0,1 -q \
    --set "experiment.output_root=$work/runs" --set "data.root=$work/data" \
    --set "preprocessing.cache_dir=$work/cache" --set "cross_validation.splits_file=$work/runs/splits.json"
  run_dirs+=("$work/runs/demo2d_$loss")
done
compare-losses "${run_dirs[@]}" --out "$work/results" -q > /dev/null
cp "$work/results/seed_noise.png" docs/images/seed_noise.png
compare-losses "${run_dirs[@]}" --metric ece --out "$work/results_ece" -q > /dev/null
cp "$work/results_ece/reliability.png" docs/images/reliability.png
cat "$work/results"/differences_*.md "$work/results_ece"/performance.md
echo "docs/images/seed_noise.png, docs/images/reliability.png ($(( SECONDS - started )) s)" >&2
