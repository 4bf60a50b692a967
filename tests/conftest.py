"""Shared test configuration.

Recorded streams are read from ``../shared/fixtures`` (beside the repository); tests that need them
use the ``fixtures_dir`` fixture or the ``chat_fixtures`` / ``responses_fixtures`` lists, and skip
cleanly when the folder is absent (a user's clone does not have it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"


def _list(kind: str) -> list[Path]:
    folder = FIXTURES / kind
    return sorted(folder.glob("*.sse")) if folder.is_dir() else []


#: Every recorded Chat Completions stream (empty when the fixtures are absent).
CHAT_FIXTURES = _list("chat")
#: Every recorded Responses stream (empty when the fixtures are absent).
RESPONSES_FIXTURES = _list("responses")


def fixture_params(paths: list[Path]) -> list[object]:
    """``pytest.mark.parametrize`` values for fixture files, or one skipped value when absent."""
    if not paths:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no fixtures in {FIXTURES}"))]
    return [pytest.param(p, id=p.name) for p in paths]


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded streams not found in {FIXTURES}")
    return FIXTURES


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
