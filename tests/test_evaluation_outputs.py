"""The output tail shared by compare-losses, sweep-report and rank-losses (pipeline.evaluation.outputs)."""

import logging

import pytest

from pipeline.errors import UnifocalError
from pipeline.evaluation import compare, rank_losses, sweep_report
from pipeline.evaluation.outputs import check_out_dir, write_outputs

OUTPUTS = {"table.md": "| a |\n", "table.csv": "a\n1\n", "figure.png": b"\x89PNG", "second.md": "| b |\n"}


def test_check_out_dir_accepts_a_folder_or_nothing_and_refuses_a_file(tmp_path):
    assert check_out_dir(str(tmp_path / "new")) == tmp_path / "new"
    assert not (tmp_path / "new").exists()  # checking writes nothing
    assert check_out_dir(tmp_path) == tmp_path
    (tmp_path / "file").write_text("x")
    with pytest.raises(UnifocalError, match=r"file: --out exists and is not a folder"):
        check_out_dir(tmp_path / "file")


def test_write_outputs_writes_every_file_and_prints_the_markdown(tmp_path, capsys, caplog):
    out = tmp_path / "results" / "kits19"
    with caplog.at_level(logging.INFO, logger="pipeline.evaluation.outputs"):
        write_outputs(out, OUTPUTS)
    assert sorted(path.name for path in out.iterdir()) == sorted(OUTPUTS)  # no temporaries left
    assert (out / "table.csv").read_text() == "a\n1\n" and (out / "figure.png").read_bytes() == b"\x89PNG"
    assert capsys.readouterr().out == "| a |\n\n| b |\n\n"  # every .md, in order
    assert f"wrote 4 files to {out}" in caplog.text


def test_write_outputs_prints_only_the_named_files(tmp_path, capsys):
    write_outputs(tmp_path, OUTPUTS, printed=["second.md"])
    assert capsys.readouterr().out == "| b |\n\n"
    (tmp_path / "table.md").write_text("old")
    write_outputs(tmp_path, {"table.md": "new"}, printed=[])
    assert (tmp_path / "table.md").read_text() == "new" and capsys.readouterr().out == ""


@pytest.mark.parametrize("module", [compare, sweep_report, rank_losses])
def test_the_three_commands_share_the_tail(module):
    assert module.check_out_dir is check_out_dir and module.write_outputs is write_outputs
