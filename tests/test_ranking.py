"""rank-losses: aggregate-then-rank, bootstrap stability, Friedman/Nemenyi, the command end to end."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.evaluation.rank_losses import main
from pipeline.evaluation.ranking import (
    Task,
    bootstrap_consensus,
    bootstrap_task,
    consensus,
    friedman,
    nemenyi_critical_difference,
    rank_means,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_ties_share_the_best_rank_and_the_next_is_skipped():
    assert list(rank_means([0.9, 0.8, 0.9, 0.7])) == [1, 3, 1, 4]
    assert list(rank_means([3.0, 1.0, 1.0], higher_is_better=False)) == [3, 1, 1]


def test_a_tie_gives_equal_ranks_in_every_task_and_in_the_consensus():
    rng = np.random.default_rng(0)
    same = rng.uniform(0.6, 0.9, size=30)
    tasks = [Task(f"t{k}", ("a", "b", "c"), np.stack([same, same, same - 0.2], axis=1)) for k in range(2)]
    full = np.stack([task.ranks() for task in tasks])
    assert full.tolist() == [[1, 1, 3], [1, 1, 3]]
    mean_ranks, ranks = consensus(full)
    assert list(mean_ranks) == [1, 1, 3] and list(ranks) == [1, 1, 3]
    frequencies = bootstrap_task(tasks[0], 200, rng).frequencies()
    assert frequencies[0, 0] == frequencies[1, 0] == 1.0  # identical scores tie in every resample


def synthetic_tasks(rng, cases=40, gap=0.08):
    """Three data sets, loss 'best' ahead of 'middle' ahead of 'worst' by ``gap`` per case, with noise."""
    tasks = []
    for name in ("kits19: tumour", "brats20: enhancing_tumour", "bus2017: lesion"):
        base = rng.uniform(0.4, 0.8, size=cases)
        scores = np.stack(
            [
                base + gap + rng.normal(0, 0.02, cases),
                base + rng.normal(0, 0.02, cases),
                base - gap + rng.normal(0, 0.02, cases),
            ],
            axis=1,
        )
        tasks.append(Task(name, ("best", "middle", "worst"), scores))
    return tasks


def test_a_known_best_loss_ranks_first_with_bootstrap_frequency_near_one():
    rng = np.random.default_rng(1)
    tasks = synthetic_tasks(rng)
    for task in tasks:
        assert list(task.ranks()) == [1, 2, 3]
        boot = bootstrap_task(task, 500, rng)
        assert boot.frequencies()[0, 0] >= 0.99
        assert boot.kendall_tau(task.ranks()) > 0.95
        assert list(boot.interval()[0]) == [1.0, 1.0]
    overall = bootstrap_consensus(tasks, 500, rng)
    assert overall.frequencies()[0, 0] >= 0.99
    assert np.allclose(overall.frequencies().sum(axis=1), 1.0)


def test_noise_spreads_the_bootstrap_ranks():
    rng = np.random.default_rng(2)
    scores = rng.uniform(0.5, 0.9, size=(15, 3))
    boot = bootstrap_task(Task("noise", ("a", "b", "c"), scores), 1000, rng)
    assert boot.frequencies().max() < 0.95
    assert np.allclose(boot.frequencies().sum(axis=1), 1.0)


def test_friedman_matches_scipy_and_ranks_ties_by_average():
    means = np.array([[0.9, 0.8, 0.7, 0.8], [0.85, 0.86, 0.6, 0.7], [0.7, 0.75, 0.65, 0.6], [0.9, 0.9, 0.5, 0.6]])
    result = friedman(means)
    expected = stats.friedmanchisquare(*means.T)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    # Ranks by hand, 1 best, ties averaged: rows give [1,2.5,4,2.5], [2,1,4,3], [2,1,3,4], [1.5,1.5,4,3].
    assert result.mean_ranks == pytest.approx([6.5 / 4, 6.0 / 4, 15 / 4, 12.5 / 4])


def test_friedman_orients_lower_is_better_tasks():
    distances = np.array([[1.0, 2.0, 3.0], [1.5, 2.5, 4.0]])
    result = friedman(distances, higher_is_better=False)
    assert list(result.mean_ranks) == [1.0, 2.0, 3.0]


def test_nemenyi_critical_difference_matches_demsar_table():
    # Demšar (2006), Table 5(a): q_0.05 for k = 2..6 classifiers.
    for k, q in [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (6, 2.850)]:
        scale = np.sqrt(k * (k + 1) / (6 * 10))
        assert nemenyi_critical_difference(k, 10) / scale == pytest.approx(q, abs=1e-3)


def write_comparison(folder, tasks_by_class, losses):
    """A compare-losses output folder's per_case.csv for one data set."""
    rows = []
    for class_name, scores in tasks_by_class.items():
        for case in range(scores.shape[0]):
            for j, loss in enumerate(losses):
                rows.append(
                    {
                        "loss": loss,
                        "case": f"case_{case:03d}",
                        "fold": case % 5,
                        "class": class_name,
                        "dsc": scores[case, j],
                        "precision": scores[case, j],
                        "recall": scores[case, j],
                    }
                )
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "per_case.csv", index=False)


@pytest.mark.slow
def test_command_ranks_the_known_best_first_and_writes_every_output(tmp_path, capsys):
    rng = np.random.default_rng(3)
    tasks = synthetic_tasks(rng)
    write_comparison(
        tmp_path / "kits19", {"kidney": tasks[0].scores, "tumour": tasks[1].scores}, ("Best", "Middle", "Worst")
    )
    write_comparison(tmp_path / "brats20", {"enhancing_tumour": tasks[2].scores}, ("Best", "Middle", "Worst"))
    out = tmp_path / "ranking"
    assert main([str(tmp_path / "kits19"), str(tmp_path / "brats20"), "--out", str(out), "--bootstrap", "300"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["ranking.md", "ranking.tex", "ranking.csv", "rank_stability.csv", "blob_plot.png"]
    )
    ranking = pd.read_csv(out / "ranking.csv")
    assert list(ranking["loss"]) == ["Best", "Middle", "Worst"]
    assert list(ranking["consensus rank"]) == [1, 2, 3]
    assert ranking.loc[0, "consensus frequency"] >= 0.99
    stability = pd.read_csv(out / "rank_stability.csv")
    assert set(stability["task"]) == {"kits19: kidney", "kits19: tumour", "brats20: enhancing_tumour", "consensus"}
    assert "Friedman test over 3 tasks" in capsys.readouterr().out
    assert (out / "blob_plot.png").read_bytes().startswith(PNG_SIGNATURE)
    assert r"\usepackage{booktabs}" in (out / "ranking.tex").read_text()


def test_command_refuses_data_sets_comparing_other_losses_and_writes_nothing(tmp_path, capsys):
    rng = np.random.default_rng(4)
    write_comparison(tmp_path / "a", {"tumour": rng.uniform(size=(5, 2))}, ("Dice", "Focal"))
    write_comparison(tmp_path / "b", {"tumour": rng.uniform(size=(5, 2))}, ("Dice", "Combo"))
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "b/per_case.csv" in error and "Combo" in error
    assert not (tmp_path / "out").exists()


def test_command_refuses_a_folder_without_per_case_scores(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        main([str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
    assert "per_case.csv: missing" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
