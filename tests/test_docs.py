"""The documentation: generated references current, every relative link resolving, the site building strictly."""

import importlib.util
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from pydantic import Field, create_model

from losses import catalog
from pipeline import config as config_module

ROOT = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
gen_docs = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(gen_docs)


# ------------------------------------------------------------------ generated references


@pytest.mark.parametrize("page", sorted(gen_docs.PAGES))
def test_generated_page_is_current(page):
    committed = (ROOT / page).read_text(encoding="utf-8")
    assert committed == gen_docs.PAGES[page](), f"{page} is stale: run {gen_docs.COMMAND} and commit the page"


def test_a_new_config_key_makes_the_configs_page_stale(tmp_path, monkeypatch):
    sampling = create_model(
        "SamplingSection",
        __base__=config_module.SamplingSection,
        prefetch=(int, Field(4, ge=1, description="batches built ahead")),
    )
    schema = create_model("ExperimentConfig", __base__=config_module.ExperimentConfig, sampling=(sampling, ...))
    page = "docs/reference/configs.md"
    (tmp_path / page).parent.mkdir(parents=True)
    (tmp_path / page).write_text((ROOT / page).read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(gen_docs, "PAGES", {page: gen_docs.config_reference})
    assert gen_docs.stale_pages(tmp_path) == []
    monkeypatch.setattr(gen_docs.config_module, "ExperimentConfig", schema)
    assert gen_docs.stale_pages(tmp_path) == [page]
    row = next(line for line in gen_docs.config_reference().splitlines() if "`sampling.prefetch`" in line)
    assert "| integer | `4` | >= 1 | batches built ahead |" in row


def test_a_config_key_without_a_description_is_refused(monkeypatch):
    sampling = create_model("SamplingSection", __base__=config_module.SamplingSection, prefetch=(int, 4))
    schema = create_model("ExperimentConfig", __base__=config_module.ExperimentConfig, sampling=(sampling, ...))
    monkeypatch.setattr(gen_docs.config_module, "ExperimentConfig", schema)
    with pytest.raises(ValueError, match=r"sampling\.prefetch has no description"):
        gen_docs.config_reference()


def test_a_new_loss_parameter_makes_the_losses_page_stale(monkeypatch):
    tversky = catalog.entry("tversky")
    extra = catalog.Parameter("margin", 0.25, "a new parameter", high=1.0)
    monkeypatch.setitem(
        catalog.CATALOG, "tversky", catalog.Loss(**{**vars(tversky), "parameters": (*tversky.parameters, extra)})
    )
    page = gen_docs.loss_reference()
    assert page != (ROOT / "docs/reference/losses.md").read_text(encoding="utf-8")
    assert "| `margin` | `0.25` | [0, 1] | a new parameter |" in page


def test_every_config_key_has_a_row():
    """Each dotted key of the schema, walked independently of the generator, has its anchored row."""
    page = (ROOT / "docs/reference/configs.md").read_text(encoding="utf-8")

    def keys(model, prefix):
        for name, field in model.model_fields.items():
            key = f"{prefix}{field.alias or name}"
            nested = gen_docs._model_of(field.annotation)
            yield from keys(nested, key + ".") if nested else [key]

    expected = list(keys(config_module.ExperimentConfig, ""))
    assert len(expected) > 60
    assert sorted(re.findall(r'<a id="([\w.]+)"></a>', page)) == sorted(expected)


def test_every_loss_and_parameter_is_documented():
    page = (ROOT / "docs/reference/losses.md").read_text(encoding="utf-8")
    sections = re.split(r"^### ", page, flags=re.M)[1:]
    assert sorted(section.split("`")[1] for section in sections) == catalog.names()
    for section in sections:
        loss = catalog.entry(section.split("`")[1])
        assert loss.reference in section
        for parameter in loss.parameters:
            assert f"| `{parameter.name}` | `" in section, (loss.name, parameter.name)


# ------------------------------------------------------------------ links


def markdown_files():
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def without_code(text):
    """The Markdown without fenced blocks and inline code, where a bracket is not a link."""
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def links(text):
    body = without_code(text)
    inline = re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", body)
    reference = re.findall(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", body, flags=re.M)
    html = re.findall(r"<(?:img|a)\s[^>]*(?:src|href)=\"([^\"]+)\"", body)
    return inline + reference + html


def python_markdown_slug(text):
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def github_slug(text):
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path):
    """Heading slugs (MkDocs' and GitHub's, with their duplicate suffixes) and explicit ids of a Markdown file."""
    text = without_code(path.read_text(encoding="utf-8"))
    found = set(re.findall(r"\{[^}]*#([\w.:-]+)[^}]*\}", text))
    found |= set(re.findall(r"<[a-z]+\s[^>]*\bid=\"([^\"]+)\"", text))
    seen = {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", path.read_text(encoding="utf-8"), flags=re.M):
        plain = re.sub(r"\{[^}]*\}\s*$", "", heading)
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", plain).replace("`", "").replace("*", "")
        for slug in {python_markdown_slug(plain), github_slug(plain)}:
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found |= {slug, f"{slug}_{count}", f"{slug}-{count}"} if count else {slug}
    return found


def test_every_relative_link_resolves():
    broken = []
    for source in markdown_files():
        for target in links(source.read_text(encoding="utf-8")):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I) or target.startswith("//"):
                continue  # http:, https:, mailto:
            path_part, _, anchor = target.partition("#")
            resolved = (source.parent / path_part).resolve() if path_part else source
            where = f"{source.relative_to(ROOT)}: {target}"
            if not resolved.exists():
                broken.append(
                    f"{where} (no file {resolved.relative_to(ROOT) if ROOT in resolved.parents else resolved})"
                )
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{where} (no anchor #{anchor})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_link_check_finds_broken_links(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n\n## Second `part`\n\n[ok](page.md#second-part) [file](missing.md) [anchor](#nowhere)\n"
        "```\n[not a link](ignored.md)\n```\n"
    )
    found = links(page.read_text())
    assert found == ["page.md#second-part", "missing.md", "#nowhere"]
    assert {"a-page", "second-part"} <= anchors(page)
    assert "nowhere" not in anchors(page)


# ------------------------------------------------------------------ the site


def test_the_site_builds_strictly(tmp_path):
    """``mkdocs build --strict``: a missing page, a broken link or anchor, or a page left out of the nav fails."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    built = (tmp_path / "site" / "reference" / "configs" / "index.html").read_text(encoding="utf-8")
    assert 'id="sampling.workers"' in built
    assert (tmp_path / "site" / "reference" / "losses" / "index.html").is_file()
