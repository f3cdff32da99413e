"""compare-losses end to end on hand-made run folders: tables, refusals, figures."""

from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.errors import DataError
from pipeline.evaluation import tables
from pipeline.evaluation.compare import main
from pipeline.evaluation.figures import class_labels, default_cases, densest_slice
from pipeline.evaluation.methods import PROJECT
from pipeline.evaluation.runs import load_runs
from pipeline.evaluation.statistics import pairwise_tests, t_confidence_interval

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Per case: kidney (dsc, precision, recall), tumour (dsc, precision, recall). Five cases, folds 0-1.
FIXTURE_SCORES = {
    "dice": [
        (0.90, 0.92, 0.88, 0.60, 0.70, 0.55),
        (0.85, 0.80, 0.90, 0.50, 0.60, 0.45),
        (0.95, 0.96, 0.94, 0.70, 0.75, 0.66),
        (0.80, 0.82, 0.79, 0.40, 0.50, 0.35),
        (0.88, 0.90, 0.86, 0.65, 0.72, 0.60),
    ],
    "combo": [
        (0.92, 0.93, 0.91, 0.62, 0.72, 0.56),
        (0.88, 0.86, 0.90, 0.58, 0.64, 0.52),
        (0.96, 0.97, 0.95, 0.71, 0.80, 0.64),
        (0.84, 0.85, 0.83, 0.48, 0.52, 0.44),
        (0.91, 0.90, 0.92, 0.66, 0.70, 0.62),
    ],
    "focal": [
        (0.89, 0.97, 0.82, 0.30, 0.80, 0.20),
        (0.80, 0.93, 0.70, 0.20, 0.75, 0.12),
        (0.93, 0.98, 0.89, 0.45, 0.85, 0.31),
        (0.75, 0.90, 0.64, 0.10, 0.60, 0.05),
        (0.86, 0.95, 0.79, 0.35, 0.82, 0.23),
    ],
}
CASES = [f"case_{i:05d}" for i in range(5)]


def write_run(
    root: Path, experiment: str, loss: str, scores, cases=CASES, data_root="no-such-data", folds=2, regions=None
) -> Path:
    """A finished run folder as run-experiment writes it (config, metrics.csv, fold logs)."""
    run_dir = root / experiment
    run_dir.mkdir(parents=True)
    config = {
        "experiment": {"name": experiment},
        "loss": {"name": loss, "params": {}},
        "data": {"dataset": "kits19", "root": str(data_root)},
    }
    if regions:
        config["evaluation"] = {"regions": regions}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    lines = ["case,fold,class,dsc,precision,recall"]
    for index, (case_id, row) in enumerate(zip(cases, scores)):
        lines.append(f"{case_id},{index % folds},kidney,{row[0]},{row[1]},{row[2]}")
        lines.append(f"{case_id},{index % folds},tumour,{row[3]},{row[4]},{row[5]}")
    (run_dir / "metrics.csv").write_text("\n".join(lines) + "\n")
    for fold in range(folds):
        (run_dir / f"fold_{fold}").mkdir()
        (run_dir / f"fold_{fold}" / "log.csv").write_text(
            "epoch,loss,val_loss,lr\n" + "".join(f"{e},{1 / (e + 1)},{1.2 / (e + 1)},0.0001\n" for e in range(4))
        )
    return run_dir


@pytest.fixture
def fixture_runs(tmp_path):
    """Dice, Combo and Focal runs of five paired cases, in that order."""
    return [write_run(tmp_path / "runs", f"kits19_{loss}", loss, scores) for loss, scores in FIXTURE_SCORES.items()]


EXPECTED_PERFORMANCE_MD = """\
Table: Performance per loss: mean ± half-width of the 95% Student t interval over n = 5 cases (mean ± t_0.975,n−1 · s/√n). Bold: best mean of each column as printed (highest). Statistics: project default: two-sided Wilcoxon signed-rank test paired by case (scipy.stats.wilcoxon); Holm–Bonferroni over the pairs of one table; ± over cases.

| Loss | DSC kidney | Precision kidney | Recall kidney | DSC tumour | Precision tumour | Recall tumour |
|---|---|---|---|---|---|---|
| Dice | 0.876 ± 0.069 | 0.880 ± 0.084 | 0.874 ± 0.069 | 0.570 ± 0.150 | 0.654 ± 0.128 | 0.522 ± 0.153 |
| Combo | **0.902 ± 0.056** | 0.902 ± 0.062 | **0.902 ± 0.055** | **0.610 ± 0.108** | 0.676 ± 0.130 | **0.556 ± 0.100** |
| Focal | 0.846 ± 0.089 | **0.946 ± 0.040** | 0.768 ± 0.123 | 0.280 ± 0.168 | **0.764 ± 0.122** | 0.182 ± 0.125 |
"""

EXPECTED_PERFORMANCE_TEX = r"""% needs \usepackage{booktabs} (\toprule, \midrule, \bottomrule)
\begin{table}[ht]
\centering
\caption{Performance per loss: mean $\pm$ half-width of the 95\% Student t interval over n = 5 cases ($\bar{x} \pm t_{0.975,\,n-1}\,s/\sqrt{n}$). Bold: best mean of each column as printed (highest). Statistics: project default: two-sided Wilcoxon signed-rank test paired by case (scipy.stats.wilcoxon); Holm--Bonferroni over the pairs of one table; $\pm$ over cases.}
\label{tab:performance}
\begin{tabular}{lcccccc}
\toprule
Loss & DSC kidney & Precision kidney & Recall kidney & DSC tumour & Precision tumour & Recall tumour \\
\midrule
Dice & 0.876 $\pm$ 0.069 & 0.880 $\pm$ 0.084 & 0.874 $\pm$ 0.069 & 0.570 $\pm$ 0.150 & 0.654 $\pm$ 0.128 & 0.522 $\pm$ 0.153 \\
Combo & \textbf{0.902 $\pm$ 0.056} & 0.902 $\pm$ 0.062 & \textbf{0.902 $\pm$ 0.055} & \textbf{0.610 $\pm$ 0.108} & 0.676 $\pm$ 0.130 & \textbf{0.556 $\pm$ 0.100} \\
Focal & 0.846 $\pm$ 0.089 & \textbf{0.946 $\pm$ 0.040} & 0.768 $\pm$ 0.123 & 0.280 $\pm$ 0.168 & \textbf{0.764 $\pm$ 0.122} & 0.182 $\pm$ 0.125 \\
\bottomrule
\end{tabular}
\end{table}
"""

EXPECTED_PVALUES_TUMOUR_MD = """\
Table: Holm–Bonferroni adjusted p-values over the 3 pairs of this table, tumour DSC, n = 5 cases: two-sided Wilcoxon signed-rank test paired by case (scipy.stats.wilcoxon). Row loss compared with column loss: (+) row better (higher DSC), (−) row worse, (=) neither; sign of W+ − W− of the per-case differences row − column. * p < 0.05, ** p < 0.01, *** p < 0.001. Statistics: project default: two-sided Wilcoxon signed-rank test paired by case (scipy.stats.wilcoxon); Holm–Bonferroni over the pairs of one table; ± over cases.

|  | Dice | Combo | Focal |
|---|---|---|---|
| Dice | – |  |  |
| Combo | 0.188 (+) | – |  |
| Focal | 0.188 (−) | 0.188 (−) | – |
"""


def test_performance_tables_render_the_fixture_numbers(fixture_runs):
    # Hand check of one cell: Dice kidney DSC = (0.90+0.85+0.95+0.80+0.88)/5 = 0.876.
    summary = tables.performance_summary(load_runs(fixture_runs))
    assert tables.performance_markdown(summary) == EXPECTED_PERFORMANCE_MD
    assert tables.performance_latex(summary) == EXPECTED_PERFORMANCE_TEX
    row = summary[(summary["loss"] == "Focal") & (summary["class"] == "tumour") & (summary["metric"] == "dsc")]
    interval = t_confidence_interval([0.30, 0.20, 0.45, 0.10, 0.35])
    assert row[["mean", "ci_low", "ci_high"]].to_numpy().ravel() == pytest.approx(
        [interval.mean, interval.low, interval.high]
    )


def test_pvalue_tables_render_the_fixture_tests(fixture_runs):
    runs = load_runs(fixture_runs)
    labels = [run.label for run in runs]
    scores = {run.label: run.per_case("tumour").to_numpy() for run in runs}
    # n = 5 with every difference of one sign: exact two-sided p = 2/32 = 0.0625, times 3 (Holm) = 0.1875.
    pairs = pairwise_tests(scores, "signedrank")
    assert [pair.p_adjusted for pair in pairs] == pytest.approx([0.1875] * 3)
    assert tables.pvalue_markdown(pairs, labels, "tumour", PROJECT, 5) == EXPECTED_PVALUES_TUMOUR_MD
    latex = tables.pvalue_latex(pairs, labels, "tumour", PROJECT, 5)
    assert r"Focal & 0.188 ($-$) & 0.188 ($-$) & -- \\" in latex
    assert r"Holm--Bonferroni" in latex and "* p $<$ 0.05" in latex


def test_p_value_formatting():
    assert tables.format_p_value(1.0) == "1.00"
    assert tables.format_p_value(0.00468) == "0.00468"
    assert tables.format_p_value(2.52e-5) == "2.52e-05"
    assert tables.format_p_value(2.52e-5, latex=True) == r"$2.52 \times 10^{-5}$"


def test_latex_escape():
    assert tables.latex_escape("a_b & 50% ±") == r"a\_b \& 50\% $\pm$"


@pytest.mark.slow
def test_command_writes_every_output_and_prints_the_markdown(fixture_runs, tmp_path, capsys):
    out = tmp_path / "results"
    assert main([*map(str, fixture_runs), "--out", str(out)]) == 0
    written = sorted(path.name for path in out.iterdir())
    assert written == sorted(
        [
            "performance.md",
            "performance.tex",
            "performance.csv",
            "runs.csv",
            "per_case.csv",
            "dsc_distribution.png",
            "training_curves.png",
            *(f"pvalues_{c}.{e}" for c in ("kidney", "tumour") for e in ("md", "tex", "csv")),
        ]
    )
    captured = capsys.readouterr()
    assert EXPECTED_PERFORMANCE_MD in captured.out and EXPECTED_PVALUES_TUMOUR_MD in captured.out
    assert (out / "performance.md").read_text() == EXPECTED_PERFORMANCE_MD
    assert "case figures skipped" in captured.err and "no-such-data" in captured.err
    for name in ("dsc_distribution.png", "training_curves.png"):
        content = (out / name).read_bytes()
        assert content.startswith(PNG_SIGNATURE) and len(content) > 5000
    performance = pd.read_csv(out / "performance.csv")
    assert list(performance.columns) == [
        "loss",
        "class",
        "metric",
        "interval",
        "n",
        "mean",
        "ci_low",
        "ci_high",
        "ci_half_width",
    ]
    assert len(performance) == 3 * 2 * 3
    pvalues = pd.read_csv(out / "pvalues_kidney.csv")
    assert list(pvalues[["row", "column"]].itertuples(index=False, name=None)) == [
        ("Combo", "Dice"),
        ("Focal", "Dice"),
        ("Focal", "Combo"),
    ]
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs["loss"]) == ["dice", "combo", "focal"]
    per_case = pd.read_csv(out / "per_case.csv", dtype={"case": str})
    assert list(per_case.columns[:4]) == ["loss", "case", "fold", "class"]
    tumour = per_case[(per_case["loss"] == "Focal") & (per_case["class"] == "tumour")]
    assert list(tumour["dsc"]) == [row[3] for row in FIXTURE_SCORES["focal"]]
    assert not list(out.glob(".*"))  # no temporary files left behind


@pytest.mark.slow
def test_rank_sum_option_is_named_in_the_caption(fixture_runs, tmp_path):
    out = tmp_path / "results"
    main([*map(str, fixture_runs), "--out", str(out), "--test", "ranksum"])
    text = (out / "pvalues_kidney.md").read_text()
    assert "Wilcoxon rank-sum test (scipy.stats.ranksums)" in text
    assert pd.read_csv(out / "pvalues_kidney.csv")["test"].eq("ranksum").all()


def run_failing(argv, capsys) -> str:
    """Run the command expecting exit code 2; return its single stderr line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ")
    return error


def test_unpaired_runs_are_refused_naming_the_cases(tmp_path, capsys):
    runs = tmp_path / "runs"
    dice = write_run(runs, "dice", "dice", FIXTURE_SCORES["dice"])
    other_cases = [*CASES[:3], "case_00007", "case_00009"]
    combo = write_run(runs, "combo", "combo", FIXTURE_SCORES["combo"], cases=other_cases)
    out = tmp_path / "results"
    error = run_failing([str(dice), str(combo), "--out", str(out)], capsys)
    assert "not paired" in error
    assert "cases only here: case_00007, case_00009" in error
    assert "case_00003, case_00004" in error
    assert not out.exists()


def test_runs_with_different_classes_are_refused(tmp_path, capsys):
    runs = tmp_path / "runs"
    dice = write_run(runs, "dice", "dice", FIXTURE_SCORES["dice"])
    combo = write_run(runs, "combo", "combo", FIXTURE_SCORES["combo"])
    metrics = combo / "metrics.csv"
    metrics.write_text(metrics.read_text().replace("tumour", "lesion"))
    error = run_failing([str(dice), str(combo), "--out", str(tmp_path / "out")], capsys)
    assert "classes only here: lesion" in error and "tumour" in error


def test_runs_of_different_data_sets_are_refused(fixture_runs, tmp_path, capsys):
    config = fixture_runs[2] / "config.yaml"
    config.write_text(config.read_text().replace("dataset: kits19", "dataset: brats20"))
    error = run_failing([*map(str, fixture_runs), "--out", str(tmp_path / "out")], capsys)
    assert error.startswith(f"error: {config}: data.dataset is 'brats20', but 'kits19' in ")


def test_missing_metrics_csv_is_refused_naming_the_file(fixture_runs, tmp_path, capsys):
    (fixture_runs[1] / "metrics.csv").unlink()
    error = run_failing([*map(str, fixture_runs), "--out", str(tmp_path / "out")], capsys)
    assert str(fixture_runs[1] / "metrics.csv") in error and "missing" in error


@pytest.mark.parametrize(
    "edit, problem",
    [
        (
            lambda text: text.replace("0.85,0.8,0.9", "0.85,abc,0.9"),
            "line 4: precision 'abc' is not a number in [0, 1]",
        ),
        (lambda text: text.replace("0.85,0.8,0.9", "1.85,0.8,0.9"), "line 4: dsc '1.85' is not a number in [0, 1]"),
        (lambda text: text.replace("dsc,", "dice,"), "missing columns: dsc"),
        (lambda text: "\n".join(text.splitlines()[:-1]) + "\n", "case case_00004 has no row for class tumour"),
        (lambda text: text + text.splitlines()[1] + "\n", "line 12: case case_00000 class kidney scored twice"),
    ],
)
def test_malformed_metrics_csv_is_refused(fixture_runs, tmp_path, capsys, edit, problem):
    metrics = fixture_runs[0] / "metrics.csv"
    metrics.write_text(edit(metrics.read_text()))
    error = run_failing([*map(str, fixture_runs), "--out", str(tmp_path / "out")], capsys)
    assert error == f"error: {metrics}: {problem}\n"


def test_config_without_loss_name_is_refused(fixture_runs, tmp_path, capsys):
    config = fixture_runs[0] / "config.yaml"
    config.write_text(config.read_text().replace("name: dice", "kind: dice"))
    error = run_failing([*map(str, fixture_runs), "--out", str(tmp_path / "out")], capsys)
    assert error == f"error: {config}: missing key loss.name\n"


def test_unknown_cases_are_refused(fixture_runs, tmp_path, capsys):
    error = run_failing([*map(str, fixture_runs), "--out", str(tmp_path / "o"), "--cases", "case_00099"], capsys)
    assert "case_00099" in error


def test_runs_of_the_same_loss_are_told_apart_by_experiment_name(tmp_path):
    runs = tmp_path / "runs"
    first = write_run(runs, "kits19_dice", "dice", FIXTURE_SCORES["dice"])
    second = write_run(runs, "kits19_dice_ds", "dice", FIXTURE_SCORES["combo"])
    focal = write_run(runs, "kits19_focal", "focal", FIXTURE_SCORES["focal"])
    labels = [run.label for run in load_runs([first, second, focal])]
    assert labels == ["Dice (kits19_dice)", "Dice (kits19_dice_ds)", "Focal"]


def test_a_batch_pooled_loss_is_labelled_as_such(tmp_path):
    runs = tmp_path / "runs"
    per_sample = write_run(runs, "kits19_dice", "dice", FIXTURE_SCORES["dice"])
    pooled = write_run(runs, "kits19_dice_batch", "dice", FIXTURE_SCORES["combo"])
    config = yaml.safe_load((pooled / "config.yaml").read_text())
    config["loss"]["params"] = {"batch": True}
    (pooled / "config.yaml").write_text(yaml.safe_dump(config))
    assert [run.label for run in load_runs([per_sample, pooled])] == ["Dice", "Dice (batch)"]


@pytest.mark.slow
def test_a_single_run_gives_the_performance_table_only(fixture_runs, tmp_path, capsys):
    out = tmp_path / "results"
    assert main([str(fixture_runs[0]), "--out", str(out)]) == 0
    assert (out / "performance.md").is_file() and not list(out.glob("pvalues_*"))
    assert "p-value tables need at least two runs" in capsys.readouterr().err


def test_default_cases_are_lowest_median_and_highest_dsc(fixture_runs):
    # Mean DSC over losses and classes: case 3 0.562, case 1 0.635, case 0 0.705, case 4 0.718,
    # case 2 0.783; lowest, median and highest are cases 3, 0 and 2.
    assert default_cases(load_runs(fixture_runs)) == ["case_00003", "case_00000", "case_00002"]
    assert default_cases(load_runs(fixture_runs), count=1) == ["case_00000"]


def test_class_labels_cover_classes_and_configured_regions(fixture_runs):
    run = load_runs(fixture_runs[:1])[0]
    region_rows = run.scores[run.scores["class"] == "kidney"].assign(**{"class": "kidney_and_tumour"})
    with_region = replace(
        run, regions={"kidney_and_tumour": [1, 2]}, scores=pd.concat([run.scores, region_rows], ignore_index=True)
    )
    assert class_labels(with_region, ["background", "kidney", "tumour"]) == {
        "kidney": (1,),
        "tumour": (2,),
        "kidney_and_tumour": (1, 2),
    }
    with pytest.raises(DataError, match="'tumour' is neither a class of the data set"):
        class_labels(run, ["background", "kidney"])


def test_densest_slice_per_class():
    mask = np.zeros((6, 24, 24), np.uint8)
    mask[1:5, 6:18, 6:18] = 1
    mask[3, 9:13, 9:13] = 2
    mask[4, 9:11, 9:11] = 2
    assert densest_slice(mask == 2, axis=0) == 3
    assert densest_slice(mask > 0, axis=0) == 1  # slices 1-4 tie: the first
    assert densest_slice(np.moveaxis(mask == 2, 0, 2), axis=2) == 3


def write_kits19_case(root: Path, case_id: str, shape=(6, 24, 24)) -> np.ndarray:
    """A tiny KiTS19 case: CT noise with a kidney block holding a tumour; returns the mask."""
    rng = np.random.default_rng(int(case_id[-1]))
    affine = np.array([[0, 0, -0.8, 0], [0, -0.8, 0, 0], [-3.0, 0, 0, 0], [0, 0, 0, 1]])
    mask = np.zeros(shape, np.uint8)
    mask[1:5, 6:18, 6:18] = 1
    mask[3, 9:13, 9:13] = 2
    image = rng.normal(0, 50, shape).astype(np.int16) + 200 * (mask > 0).astype(np.int16)
    folder = root / case_id
    folder.mkdir(parents=True)
    nib.save(nib.Nifti1Image(image, affine), folder / "imaging.nii.gz")
    nib.save(nib.Nifti1Image(mask, affine), folder / "segmentation.nii.gz")
    return mask


@pytest.mark.slow
def test_case_figures_from_a_kits19_fixture(tmp_path, capsys):
    data_root = tmp_path / "kits19"
    masks = {case_id: write_kits19_case(data_root, case_id) for case_id in CASES}
    affine = np.array([[0, 0, -0.8, 0], [0, -0.8, 0, 0], [-3.0, 0, 0, 0], [0, 0, 0, 1]])
    run_dirs = []
    for shift, (loss, scores) in enumerate(FIXTURE_SCORES.items()):
        run_dir = write_run(tmp_path / "runs", f"kits19_{loss}", loss, scores, data_root=data_root)
        for index, (case_id, mask) in enumerate(masks.items()):
            folder = run_dir / f"fold_{index % 2}" / "predictions"
            folder.mkdir(parents=True, exist_ok=True)
            prediction = np.roll(mask, shift, axis=2)  # each loss errs differently: FP and FN
            nib.save(nib.Nifti1Image(prediction, affine), folder / f"{case_id}.nii.gz")
        run_dirs.append(run_dir)
    (run_dirs[2] / "fold_1" / "predictions" / "case_00003.nii.gz").unlink()
    out = tmp_path / "results"
    assert main([*map(str, run_dirs), "--out", str(out), "--cases", "case_00000", "case_00003"]) == 0
    figure = (out / "case_00000.png").read_bytes()
    assert figure.startswith(PNG_SIGNATURE) and len(figure) > 10000
    assert not (out / "case_00003.png").exists()
    error = capsys.readouterr().err
    assert "case figure of case_00003 skipped" in error and "prediction missing" in error
