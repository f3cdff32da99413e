"""Paper mode of compare-losses against SciPy and statsmodels called directly, and two table regressions."""

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from statsmodels.stats.multitest import multipletests

from pipeline.evaluation import tables
from pipeline.evaluation.compare import main, table_outputs
from pipeline.evaluation.methods import PAPER, PROJECT, choose_method
from pipeline.evaluation.published import PUBLISHED
from pipeline.evaluation.runs import load_runs
from pipeline.evaluation.statistics import compare_pair, fold_means, pairwise_tests


def write_brats_run(root: Path, loss: str, dsc, folds, deep_supervision=False) -> Path:
    """A finished BraTS20 run folder: one enhancing-tumour row per case, precision = recall = DSC."""
    run_dir = root / f"brats20_{loss}{'_ds' if deep_supervision else ''}"
    run_dir.mkdir(parents=True)
    config = {
        "experiment": {"name": run_dir.name},
        "loss": {"name": loss, "params": {}},
        "data": {"dataset": "brats20", "root": "no-such-data"},
        "model": {"deep_supervision": deep_supervision},
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    lines = ["case,fold,class,dsc,precision,recall"]
    lines += [
        f"BraTS20_Training_{i:03d},{fold},enhancing_tumour,{v},{v},{v}"
        for i, (v, fold) in enumerate(zip(dsc, folds), start=1)
    ]
    (run_dir / "metrics.csv").write_text("\n".join(lines) + "\n")
    return run_dir


# Table 4's family: three losses, 20 cases in 5 folds. Two decimals make ties within and across
# losses; Combo equals Focal Tversky on cases 1-8 (zero differences).
RNG = np.random.default_rng(4)
FOLDS = np.arange(20) % 5
FOCAL_TVERSKY = np.round(RNG.uniform(0.5, 0.95, 20), 2)
COMBO = np.where(np.arange(20) < 8, FOCAL_TVERSKY, np.round(RNG.uniform(0.45, 0.9, 20), 2))
MIXED_FOCAL = np.round(np.clip(FOCAL_TVERSKY + RNG.normal(0.06, 0.05, 20), 0, 1), 2)
TABLE4 = {"focal_tversky": FOCAL_TVERSKY, "combo": COMBO, "mixed_focal": MIXED_FOCAL}
LABELS = {"focal_tversky": "Focal Tversky", "combo": "Combo", "mixed_focal": "Mixed Focal"}


@pytest.fixture
def table4_runs(tmp_path):
    return load_runs([write_brats_run(tmp_path / "runs", loss, values, FOLDS) for loss, values in TABLE4.items()])


def test_the_synthetic_data_has_ties_and_zero_differences():
    assert np.sum(COMBO == FOCAL_TVERSKY) >= 8
    pooled = np.concatenate([COMBO, MIXED_FOCAL])
    assert len(np.unique(pooled)) < len(pooled)


def test_paper_mode_table4_family_is_scipy_ranksums_with_holm_over_three_pairs(table4_runs):
    outputs = table_outputs(table4_runs, PAPER, PUBLISHED["mixed_focal_brats20"])
    result = pd.read_csv(pd.io.common.StringIO(outputs["pvalues_enhancing_tumour.csv"]))
    pairs = [(row, column) for column, row in itertools.combinations(TABLE4, 2)]
    raw = [stats.ranksums(TABLE4[row], TABLE4[column]).pvalue for row, column in pairs]
    z = [stats.ranksums(TABLE4[row], TABLE4[column]).statistic for row, column in pairs]
    assert list(zip(result["row"], result["column"])) == [(LABELS[r], LABELS[c]) for r, c in pairs]
    assert list(result["p_value"]) == pytest.approx(raw, rel=1e-12)
    assert list(result["statistic"]) == pytest.approx(z, rel=1e-12)
    assert list(result["p_holm"]) == pytest.approx(multipletests(raw, method="holm")[1], rel=1e-12)
    assert set(result["family_size"]) == {3} and set(result["test"]) == {"ranksum"}
    # The published Table 4 beside ours, pair by pair.
    assert list(result["p_holm_published"]) == [0.312, 0.176, 0.018]
    markdown = outputs["pvalues_enhancing_tumour.md"]
    assert "over the 3 pairs of this table" in markdown and "scipy.stats.ranksums" in markdown
    assert "| Mixed Focal | Combo |" in markdown and "| 0.0180 |" in markdown


def test_rank_sum_has_no_tie_correction():
    """scipy.stats.ranksums, as the paper names it; mannwhitneyu would correct the variance for ties."""
    row, column = MIXED_FOCAL, COMBO
    _, p_value, _ = compare_pair(row, column, "ranksum")
    tie_corrected = stats.mannwhitneyu(row, column, use_continuity=False, method="asymptotic").pvalue
    assert p_value == stats.ranksums(row, column).pvalue
    assert p_value != pytest.approx(tie_corrected, rel=1e-9)
    # Identical samples: z = 0, p = 1.
    assert compare_pair(COMBO, COMBO.copy(), "ranksum")[1:] == (1.0, 0)


def test_paper_mode_interval_is_scipys_t_interval_over_the_fold_means(table4_runs):
    summary = tables.performance_summary(table4_runs, PAPER)
    for loss, values in TABLE4.items():
        means = pd.Series(values).groupby(FOLDS).mean().to_numpy()
        low, high = stats.t.interval(0.95, len(means) - 1, loc=means.mean(), scale=stats.sem(means))
        row = summary[(summary["loss"] == LABELS[loss]) & (summary["metric"] == "dsc")].iloc[0]
        assert row["n"] == 5 and row["interval"] == "folds"
        assert (row["mean"], row["ci_low"], row["ci_high"]) == pytest.approx((means.mean(), low, high), rel=1e-12)
    cases = tables.performance_summary(table4_runs, choose_method(paper=True, interval="cases"))
    low, high = stats.t.interval(0.95, 19, loc=COMBO.mean(), scale=stats.sem(COMBO))
    row = cases[(cases["loss"] == "Combo") & (cases["metric"] == "dsc")].iloc[0]
    assert (row["n"], row["ci_low"], row["ci_high"]) == (20, pytest.approx(low), pytest.approx(high))


def test_table2_family_is_21_pairs_per_class_not_42(tmp_path):
    """Mixed Focal Table 2: 7 losses, kidney and tumour each a Holm family of 21 pairs."""
    from test_compare_outputs import write_run

    rng = np.random.default_rng(11)
    losses = ["focal", "dice", "tversky", "cosine_tversky", "focal_tversky", "combo", "mixed_focal"]
    scores = {loss: np.round(rng.uniform(0.3, 0.95, (10, 6)), 2) for loss in losses}
    cases = [f"case_{i:05d}" for i in range(10)]
    runs = load_runs([write_run(tmp_path, loss, loss, scores[loss], cases=cases, folds=5) for loss in losses])
    outputs = table_outputs(runs, PAPER, PUBLISHED["mixed_focal_kits19"])
    for class_name, column in (("kidney", 0), ("tumour", 3)):
        result = pd.read_csv(pd.io.common.StringIO(outputs[f"pvalues_{class_name}.csv"]))
        pairs = [(row, col) for col, row in itertools.combinations(losses, 2)]
        raw = [stats.ranksums(scores[row][:, column], scores[col][:, column]).pvalue for row, col in pairs]
        assert len(result) == 21 and set(result["family_size"]) == {21}
        assert list(result["p_value"]) == pytest.approx(raw, rel=1e-12)
        assert list(result["p_holm"]) == pytest.approx(multipletests(raw, method="holm")[1], rel=1e-12)
    kidney = pd.read_csv(pd.io.common.StringIO(outputs["pvalues_kidney.csv"]))
    assert kidney["p_holm_published"].notna().sum() == 18  # the published kidney cells that survived
    assert kidney.set_index(["row", "column"]).loc[("Tversky", "Focal"), "p_holm_published"] == 0.209
    assert "Published adjusted p-values" not in outputs["pvalues_tumour.md"]


def test_interval_over_folds_needs_two_folds(tmp_path, capsys):
    run_dirs = [str(write_brats_run(tmp_path, loss, values, np.zeros(20, int))) for loss, values in TABLE4.items()]
    with pytest.raises(SystemExit) as exit_info:
        main([*run_dirs, "--out", str(tmp_path / "out"), "--paper"])
    assert exit_info.value.code == 2 and "fewer than two folds" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_fold_means_by_hand():
    assert list(fold_means([0.2, 0.4, 0.9, 0.6], [1, 0, 1, 0])) == pytest.approx([0.5, 0.55])
    with pytest.raises(ValueError):
        fold_means([0.2], [0, 1])


def test_published_rows_and_differences_in_markdown_and_latex(table4_runs):
    outputs = table_outputs(table4_runs, PAPER, PUBLISHED["mixed_focal_brats20"])
    ours = tables.performance_summary(table4_runs, PAPER).set_index(["loss", "metric"]).loc[("Combo", "dsc"), "mean"]
    lines = outputs["performance.md"].splitlines()
    published = lines.index("| Combo, published | 0.748 ± 0.032 | – | – |")
    assert lines[published - 1].startswith("| Combo | ")
    assert lines[published + 1] == f"| Combo, ours − published | {ours - 0.748:+.3f} | – | – |"
    assert "| Focal Tversky, published | 0.747 ± 0.050 | 0.776 ± 0.070 | 0.765 ± 0.029 |" in lines
    assert "Mixed Focal, published" not in outputs["performance.md"]
    assert "Tables 3 and 4" in outputs["performance.md"]
    assert r"Combo, published & 0.748 $\pm$ 0.032 & -- & -- \\" in outputs["performance.tex"]


def test_the_method_is_named_in_every_caption(table4_runs):
    outputs = table_outputs(table4_runs, choose_method(paper=True, interval="cases"))
    for name in ("performance.md", "performance.tex", "pvalues_enhancing_tumour.md", "pvalues_enhancing_tumour.tex"):
        assert "paper mode, interval over cases" in outputs[name]
        assert "ranksums" in outputs[name]
    assert choose_method().name == "project default" and choose_method(paper=True) == PAPER
    assert choose_method(test="ranksum").name == "project default, test ranksum"
    assert outputs["performance.tex"].startswith(r"% needs \usepackage{booktabs}")


# --- regressions of two defects an independent check found --------------------------------------


def test_bold_follows_the_printed_rounding():
    """0.9055 prints as 0.905 (binary 0.90549...); pandas' round(3) made it 0.906 and the cell lost its bold."""
    summary = pd.DataFrame(
        [
            {
                "loss": "A",
                "class": "kidney",
                "metric": "dsc",
                "interval": "cases",
                "n": 5,
                "mean": 0.9055,
                "ci_low": 0.9,
                "ci_high": 0.911,
                "ci_half_width": 0.0055,
            },
            {
                "loss": "B",
                "class": "kidney",
                "metric": "dsc",
                "interval": "cases",
                "n": 5,
                "mean": 0.9001,
                "ci_low": 0.89,
                "ci_high": 0.91,
                "ci_half_width": 0.01,
            },
        ]
    )
    markdown = tables.performance_markdown(summary)
    assert "| A | **0.905 ± 0.005** |" in markdown
    assert "| B | 0.900 ± 0.010 |" in markdown


def test_lower_is_better_metric_bolds_the_lowest():
    summary = pd.DataFrame(
        [
            {
                "loss": loss,
                "class": "tumour",
                "metric": "hd95",
                "interval": "cases",
                "n": 5,
                "mean": mean,
                "ci_low": mean - 1,
                "ci_high": mean + 1,
                "ci_half_width": 1.0,
            }
            for loss, mean in (("A", 4.2), ("B", 7.9))
        ]
    )
    markdown = tables.performance_markdown(summary)
    assert "| A | **4.200 ± 1.000** |" in markdown and "lowest for HD95" in markdown
    pairs = pairwise_tests({"A": [1.0, 2.0, 3.0, 4.0, 5.0], "B": [2.0, 3.0, 4.0, 5.0, 6.0]})
    assert pairs[0].sign == 1  # B - A > 0: B is higher, hence worse on a distance
    assert "| B | 0.0625 (−) | – |" in tables.pvalue_markdown(pairs, ["A", "B"], "tumour", PROJECT, 5, "hd95")


def test_signed_rank_direction_from_the_signed_statistic_when_most_differences_are_zero():
    """16 of 30 differences are zero, the other 14 all positive: the median difference is 0, yet row is better."""
    column = np.linspace(0.5, 0.8, 30)
    row = column + np.r_[np.zeros(16), np.arange(1, 15) * 0.01]
    assert np.median(row - column) == 0
    statistic, p_value, sign = compare_pair(row, column, "signedrank")
    assert p_value == stats.wilcoxon(row, column).pvalue < 0.01
    assert statistic == 14 * 15 / 2 and sign == 1
    markdown = tables.pvalue_markdown(pairwise_tests({"B": column, "A": row}), ["B", "A"], "kidney", PROJECT, 30)
    assert "| A | 9.82e-04*** (+) | – |" in markdown


@pytest.mark.slow
def test_command_paper_mode_with_published_numbers(table4_runs, tmp_path, capsys):
    out = tmp_path / "results"
    run_dirs = [str(run.path) for run in table4_runs]
    assert main([*run_dirs, "--out", str(out), "--paper", "--published", "mixed_focal_brats20"]) == 0
    assert "Combo, published" in (out / "performance.md").read_text()
    assert "paper mode" in capsys.readouterr().out
    assert pd.read_csv(out / "performance.csv")["interval"].eq("folds").all()
