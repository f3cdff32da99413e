"""``compare-losses --metric``: tables and tests on HD95 (lower is better) and NSD, checked against scipy."""

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from statsmodels.stats.multitest import multipletests

from pipeline.evaluation.compare import main

CASES = [f"case_{i:05d}" for i in range(8)]
HD95 = {  # mm per case: Dice lowest (best), then Focal, then Combo
    "dice": [2.0, 3.0, 2.5, 4.0, 3.5, 2.0, 3.1, 2.2],
    "focal": [6.0, 7.5, 6.1, 9.0, 8.0, 7.7, 6.4, 8.8],
    "combo": [11.0, 9.5, 12.0, 10.5, 14.0, 13.0, 9.9, 12.5],
}


def write_run(root, loss, hd95, with_surface=True):
    run_dir = root / f"kits19_{loss}"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "experiment": {"name": f"kits19_{loss}"},
                "loss": {"name": loss, "params": {}},
                "data": {"dataset": "kits19", "root": "no-such-data"},
            }
        )
    )
    rows = [
        {
            "case": case,
            "fold": index % 2,
            "class": "kidney",
            "dsc": 0.8,
            "precision": 0.8,
            "recall": 0.8,
            **({"hd95": distance, "nsd": 1 / (1 + distance)} if with_surface else {}),
        }
        for index, (case, distance) in enumerate(zip(CASES, hd95))
    ]
    pd.DataFrame(rows).to_csv(run_dir / "metrics.csv", index=False)
    return run_dir


def test_hd95_tables_bold_the_lowest_and_test_it(tmp_path, capsys):
    runs = [write_run(tmp_path / "runs", loss, values) for loss, values in HD95.items()]
    out = tmp_path / "out"
    main([*map(str, runs), "--out", str(out), "--metric", "hd95"])
    performance = (out / "performance.md").read_text()
    assert "HD95 (mm) kidney" in performance and "lowest for HD95 (mm)" in performance
    dice_row = next(line for line in performance.splitlines() if line.startswith("| Dice"))
    combo_row = next(line for line in performance.splitlines() if line.startswith("| Combo"))
    assert f"**{np.mean(HD95['dice']):.3f}" in dice_row and "**" not in combo_row.split("|")[-2]

    pvalues = pd.read_csv(out / "pvalues_hd95_kidney.csv")
    labels = {"Dice": "dice", "Focal": "focal", "Combo": "combo"}
    raw = [
        stats.wilcoxon(HD95[labels[row]], HD95[labels[column]]).pvalue
        for row, column in zip(pvalues["row"], pvalues["column"])
    ]
    np.testing.assert_allclose(pvalues["p_value"], raw)
    np.testing.assert_allclose(pvalues["p_holm"], multipletests(raw, method="holm")[1])
    markdown = (out / "pvalues_hd95_kidney.md").read_text()
    assert "lower HD95 (mm)" in markdown
    focal_row = next(line for line in markdown.splitlines() if line.startswith("| Focal"))
    assert "(−)" in focal_row  # Focal has the larger distances than Dice (the column): worse
    combo_row = next(line for line in markdown.splitlines() if line.startswith("| Combo"))
    assert combo_row.count("(−)") == 2
    assert not (out / "pvalues_kidney.md").exists()  # the DSC tables are another comparison


def test_nsd_is_higher_is_better(tmp_path):
    runs = [write_run(tmp_path / "runs", loss, values) for loss, values in HD95.items()]
    main([*map(str, runs), "--out", str(tmp_path / "out"), "--metric", "nsd"])
    markdown = (tmp_path / "out" / "pvalues_nsd_kidney.md").read_text()
    focal_row = next(line for line in markdown.splitlines() if line.startswith("| Focal"))
    assert "(−)" in focal_row  # lower NSD than Dice: worse
    dice_row = next(
        line for line in (tmp_path / "out" / "performance.md").read_text().splitlines() if line.startswith("| Dice")
    )
    assert f"**{np.mean([1 / (1 + d) for d in HD95['dice']]):.3f}" in dice_row


def test_runs_scored_without_hd95_are_refused(tmp_path, capsys):
    runs = [
        write_run(tmp_path / "runs", "dice", HD95["dice"]),
        write_run(tmp_path / "runs", "focal", HD95["focal"], with_surface=False),
    ]
    with pytest.raises(SystemExit) as exit_info:
        main([*map(str, runs), "--out", str(tmp_path / "out"), "--metric", "hd95"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "kits19_focal/metrics.csv" in error and "no hd95 column" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "out").exists()
