"""The docs stay true: the README is short and points only inside the repository, every relative
link of the site resolves, the generated reference matches the code, and the map names every module."""

from __future__ import annotations

import fnmatch
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PACKAGES = ("bot", "handlers", "cards", "storage", "appraisal", "sources")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The page without code blocks and code spans: a link shown as an example is not a link."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(page: Path):
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        resolved = (page.parent / target.split("#", 1)[0]).resolve()
        assert resolved.is_relative_to(ROOT), f"{target} points outside the repository"
        assert resolved.exists(), f"{target} does not exist"


def test_readme_links_nothing_outside_the_repository():
    text = (ROOT / "README.md").read_text()
    assert "../" not in text
    assert re.findall(r"\]\((https?://[^)]+)\)", text) == []


def _generator():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_reference_pages_are_current():
    for path, make in _generator().PAGES.items():
        assert path.read_text() == make(), f"{path.name} is stale: run python docs/gen_reference.py"


def _named_in_map() -> list[str]:
    block = (DOCS / "architecture.md").read_text().split("## Rooms", 1)[1].split("## ", 1)[0]
    return re.findall(r"[\w*]+\.py", block)


def test_the_map_names_every_module_and_every_named_module_exists():
    names = _named_in_map()
    modules = [
        p
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if p.name != "__init__.py" and "migrations" not in p.parts
    ]
    missing = [
        str(p.relative_to(ROOT)) for p in modules if not any(fnmatch.fnmatch(p.name, n) for n in names)
    ]
    assert missing == [], "docs/architecture.md does not name these modules"
    stale = [n for n in names if n != "*.py" and not any(fnmatch.fnmatch(p.name, n) for p in modules)]
    assert stale == [], "docs/architecture.md names modules that no longer exist"
