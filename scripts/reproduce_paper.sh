#!/usr/bin/env bash
# Reproduce the papers' tables, each as a unit: a thin wrapper around the
# reproduce-paper command (pipeline/paper/reproduce.py).
#
#   scripts/reproduce_paper.sh TABLE|kits19|brats20|all [--print] [--set KEY=VALUE ...]
#                              [--results DIR] [--slurm [--slurm-option=OPTION ...]]
#   scripts/reproduce_paper.sh --list
#
# Each table trains its runs (run-experiment CONFIG, every --set override
# included) and compares them with the paper's statistics (compare-losses
# --paper: Wilcoxon rank-sum, Holm over the table's pairs, interval over fold
# means). --print shows the plan and runs nothing.
#
# Run from the repository root with the project's commands on PATH, e.g.
# `uv run scripts/reproduce_paper.sh mixed_focal_brats20 --print`.
set -euo pipefail
exec reproduce-paper "$@"
