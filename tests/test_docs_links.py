"""The README stays a short entry point: the two commands, the docs commands, a link to every page.

(Every relative link of the README and the pages is checked by ``tests/test_docs.py``.)
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_stays_short_and_links_every_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert "## Two commands" in readme and "make demo" in readme and "make test" in readme
    assert "make docs " in readme and "make docs-serve" in readme
    pages = {page.name for page in (ROOT / "docs").glob("*.md")}
    assert not {name for name in pages if f"docs/{name}" not in readme}


def test_the_readme_keeps_the_exit_code_table():
    """Slurm scripts and users look the codes up in the README (issue 21); the page has each fault's paragraph."""
    readme = (ROOT / "README.md").read_text()
    for code in ("| 0 |", "| 2 |", "| 65 |", "| 71 |", "| 73 |", "| 74 |", "| 75 |", "| 130 |"):
        assert code in readme
    assert "docs/gpu-slurm-faults.md#exit-codes-and-faults" in readme
