"""Packaging: the declared license ships, the version is written once, docs cite real files."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rxresponses

ROOT = Path(__file__).resolve().parent.parent


def test_license_file_is_the_apache_2_text() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert 'license = "Apache-2.0"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_version_is_defined_once_and_installed_metadata_follows_it() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r"^version\s*=", pyproject, re.MULTILINE) is None
    assert 'dynamic = ["version"]' in pyproject
    assert importlib.metadata.version("rxresponses") == rxresponses.__version__
    out = subprocess.run(
        [sys.executable, "-m", "rxresponses", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().endswith(rxresponses.__version__)


def test_changelog_has_an_unreleased_section_and_the_current_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in text
    assert f"## [{rxresponses.__version__}]" in text


def test_project_urls_are_declared() -> None:
    urls = importlib.metadata.metadata("rxresponses").get_all("Project-URL") or []
    labels = {u.split(",", 1)[0] for u in urls}
    assert {"Homepage", "Repository", "Issues", "Changelog"} <= labels


def test_library_docstrings_and_pyproject_cite_no_missing_markdown_file() -> None:
    cited: set[str] = set()
    for path in [ROOT / "pyproject.toml", *sorted((ROOT / "rxresponses").rglob("*.py"))]:
        text = path.read_text(encoding="utf-8")
        cited.update(re.findall(r"\b([A-Z][A-Z_]+\.md)\b", text))
    # AGENTS.md appears as sample request text in the server's test data, not as a citation.
    cited.discard("AGENTS.md")
    missing = sorted(name for name in cited if not (ROOT / name).exists())
    assert missing == []


def test_the_repository_tracks_no_virtualenv_nor_symlink() -> None:
    """A clone must make its own ``.venv`` (the README's first command): a tracked ``.venv``, or
    any symlink (which points into the machine it was made on), breaks that on a fresh clone."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    symlinks = [line.split("\t", 1)[1] for line in listed if line.startswith("120000 ")]
    assert symlinks == []
    paths = [line.split("\t", 1)[1] for line in listed]
    assert not [p for p in paths if p.split("/")[0] in (".venv", ".ci-venv", ".ci-venv-lowest")]
