"""The documentation: it is cited instead of any outside spec, and its links and citations resolve.

- No file under src/, tests/, bench/, docs/ or README.md cites the old outside specification
  (the project documents itself in docs/).
- Citations of the form ``docs/<page>.md, '<section>'`` (code, tests, README) and
  ``[Page](page.md), "<section>"`` (docs pages) name a heading that exists on that page.
- Relative links in README.md and docs/ point to files that exist.

The site itself is built by `mkdocs build --strict` (the docs line of .ci/run), which also checks
anchors inside docs/; these tests need no MkDocs and cover the README and the code too.
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


# built from parts so that this file does not match itself
FORBIDDEN = ("SPEC" + " \u00a7", "SPEC" + ".md", "LATER" + "_LOSSES")
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".hypothesis"}
_CITE = re.compile(r"docs/([\w/]+\.md)((?:,? (?:and )?'[^'\n]+')+)")
_MD_CITE = re.compile(r"\]\(([^)#\s]+\.md)\), \"([^\"\n]+)\"")


def project_files() -> list[Path]:
    """Every file of src/, tests/, bench/, docs/ and README.md (no caches, no build metadata)."""
    out = [ROOT / "README.md"]
    for top in ("src", "tests", "bench", "docs"):
        for path in sorted((ROOT / top).rglob("*")):
            parts = set(path.relative_to(ROOT).parts)
            if path.is_file() and not parts & _SKIP_DIRS and not any(p.endswith(".egg-info") for p in parts):
                out.append(path)
    return out


def headings(page: Path) -> set[str]:
    """The headings of a Markdown page, without the leading #'s and without backticks."""
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    return {line.lstrip("#").strip().replace("`", "") for line in text.splitlines() if line.startswith("#")}


def test_no_file_cites_the_outside_spec():
    found = []
    for path in project_files():
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary (figures)
            continue
        text = data.decode("utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), 1):
            if any(f in line for f in FORBIDDEN):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, "cite the docs/ pages instead:\n" + "\n".join(found)


def test_citations_name_existing_sections():
    bad, seen = [], 0
    for path in project_files():
        if path.suffix not in (".py", ".md"):
            continue
        text = path.read_text(encoding="utf-8")
        cites = [(DOCS.parent / "docs" / page, sec) for page, secs in _CITE.findall(text)
                 for sec in re.findall(r"'([^'\n]+)'", secs)]
        if path.suffix == ".md" and DOCS in path.parents:
            cites += [(path.parent / page, sec) for page, sec in _MD_CITE.findall(text)]
        for page, section in cites:
            seen += 1
            if not page.is_file() or section.replace("`", "") not in headings(page):
                bad.append(f"{path.relative_to(ROOT)}: {page.name}, {section!r}")
    assert seen > 20  # the parser does see the citations
    assert not bad, "citations of missing pages or sections:\n" + "\n".join(bad)


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
