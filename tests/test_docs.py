"""The documentation: relative links in README.md and docs/ point to files that exist.

The site itself is built by `mkdocs build --strict` (the docs line of .ci/run), which also checks
anchors inside docs/; this test needs no MkDocs and covers the README too.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, ...


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def relative_links(path: Path) -> list[str]:
    """Link targets of ``path`` outside code, without external URLs and pure anchors."""
    text = _CODE.sub("", _FENCE.sub("", path.read_text(encoding="utf-8")))
    out = []
    for target in _LINK.findall(text):
        if _EXTERNAL.match(target) or target.startswith("#"):
            continue
        out.append(target.split("#", 1)[0])
    return out


def test_the_docs_pages_exist():
    for page in ("index", "losses", "theory", "noise", "datasets", "protocols", "ARCHITECTURE"):
        assert (DOCS / f"{page}.md").is_file(), page
    assert (ROOT / "mkdocs.yml").is_file()


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(path):
    missing = [t for t in relative_links(path) if not (path.parent / t).exists()]
    assert not missing, f"{path.relative_to(ROOT)} links to missing files: {missing}"


def test_link_parser_sees_links_and_skips_code(tmp_path):
    md = tmp_path / "x.md"
    md.write_text(
        "[a](docs/a.md#sec) ![img](img/b.png) [web](https://example.org) [anchor](#here)\n"
        "`[not](a link)`\n```\n[nor](this)\n```\n",
        encoding="utf-8",
    )
    assert relative_links(md) == ["docs/a.md", "img/b.png"]


def test_readme_test_command_is_the_one_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    marker = next(i for i, line in enumerate(ci) if line.startswith("# README test command"))
    command = ci[marker + 1].strip()
    assert command.startswith("pip install") and "pytest" in command
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert command in (line.strip() for line in readme), command
