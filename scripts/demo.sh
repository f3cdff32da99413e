#!/usr/bin/env bash
# The CPU demo (`make demo`): KiTS19 phantoms -> three losses x five folds -> loss comparison.
# `scripts/demo.sh 2d` (`make demo2d`) does the same in 2D on BUS2017 phantoms
# (configs/demo2d_<loss>.yaml, runs/demo2d/, results/demo2d/).
#
#   scripts/demo.sh [2d]
#
# 1. Writes 20 KiTS19 phantom cases to data/phantoms/kits19 if that folder is missing
#    (make-phantoms; DEMO_CASES=N for another number; delete the folder to regenerate).
# 2. Trains, cross-validates and scores configs/demo_<loss>.yaml for nnU-Net's Dice + CE with batch
#    Dice (the Dice baseline, demo_nnunet_baseline), the focal and the asymmetric Unified Focal losses
#    (run-experiment; runs/demo/demo_<loss>/); in 2D the Dice loss instead of the baseline. Rerunning
#    resumes: finished folds are skipped.
# 3. Compares them with compare-losses into results/demo/ (tables, p-values, figures).
# 4. Ranks them over the classes with rank-losses into results/demo_ranking/ (bootstrap, blob plot).
# Run from anywhere with the project's commands on PATH, e.g. `uv run scripts/demo.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-3d}" in
  3d) demo=demo dataset=kits19 baseline=nnunet_baseline ;;
  2d) demo=demo2d dataset=bus2017 baseline=dice ;;
  *) echo "usage: $0 [2d]" >&2; exit 2 ;;
esac
data=data/phantoms/$dataset
losses=("$baseline" focal asymmetric_unified_focal)
started=$SECONDS

if [[ ! -d $data ]]; then
  make-phantoms "$dataset" "$data" --size demo --cases "${DEMO_CASES:-20}"
fi

run_dirs=()
for loss in "${losses[@]}"; do
  echo "== run-experiment configs/${demo}_$loss.yaml" >&2
  run-experiment "configs/${demo}_$loss.yaml"
  run_dirs+=("runs/$demo/${demo}_$loss")    # experiment.output_root / experiment.name of the demo configs
done

compare-losses "${run_dirs[@]}" --out "results/$demo"
rank-losses "results/$demo" --out "results/${demo}_ranking"
echo "demo finished in $((SECONDS - started)) s" >&2
