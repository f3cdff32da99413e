#!/usr/bin/env bash
# Reproduce a paper's loss comparison: train every loss of its grid (all five
# folds, one run-experiment call per config), then compare the runs with
# compare-losses into results/<dataset>/.
#
#   scripts/reproduce_paper.sh kits19|brats20 [--print] [extra run-experiment args]
#
# kits19: the nine losses of the Unified Focal paper's KiTS19 comparison.
# brats20: the Mixed Focal paper's top three on BraTS20 (focal_tversky, combo,
#          mixed_focal) and both Unified Focal variants.
# Configs: configs/<dataset>_<loss>.yaml. A run's folder comes from
# `run-experiment CONFIG --print-run-dir`. Extra arguments (e.g.
# `--set training.epochs=3`) go to every run-experiment call, the
# --print-run-dir ones included, so an experiment.output_root override holds.
# --print lists the commands instead of running them.
#
# Run from the repository root with the project's commands on PATH, e.g.
# `uv run scripts/reproduce_paper.sh kits19`.
set -euo pipefail

usage() {
  echo "usage: $0 kits19|brats20 [--print] [extra run-experiment args]" >&2
  exit 2
}

# The arguments as one shell-quoted line, to print commands that can be pasted.
quoted() {
  local line
  line=$(printf '%q ' "$@")
  echo "${line% }"
}

[[ $# -ge 1 ]] || usage
dataset=$1
shift
case "$dataset" in
  kits19) losses=(focal dice tversky cosine_tversky focal_tversky combo mixed_focal
                  symmetric_unified_focal asymmetric_unified_focal) ;;
  brats20) losses=(focal_tversky combo mixed_focal symmetric_unified_focal asymmetric_unified_focal) ;;
  *) usage ;;
esac

print_only=false
extra=()
for argument in "$@"; do
  if [[ $argument == --print ]]; then print_only=true; else extra+=("$argument"); fi
done
out="results/$dataset"
configs=()
for loss in "${losses[@]}"; do configs+=("configs/${dataset}_${loss}.yaml"); done

if $print_only; then
  compare=(compare-losses)
  for config in "${configs[@]}"; do
    quoted run-experiment "$config" "${extra[@]}"
    compare+=("\"\$($(quoted run-experiment "$config" "${extra[@]}" --print-run-dir))\"")
  done
  echo "${compare[*]} --out $(quoted "$out")"
  exit 0
fi

for config in "${configs[@]}"; do
  [[ -f $config ]] || { echo "error: $config: config file missing" >&2; exit 2; }
done
run_dirs=()
for config in "${configs[@]}"; do
  echo "+ $(quoted run-experiment "$config" "${extra[@]}")" >&2
  run-experiment "$config" "${extra[@]}"
  run_dirs+=("$(run-experiment "$config" "${extra[@]}" --print-run-dir)")
done
echo "+ $(quoted compare-losses "${run_dirs[@]}" --out "$out")" >&2
compare-losses "${run_dirs[@]}" --out "$out"
