"""A quick slice of ``tests/fuzz/attack_requests.py`` against a real ``rxresponses serve``.

The whole run (``python tests/fuzz/attack_requests.py``) sends every hostile body; here a few
of each kind, each abuse against a fresh server subprocess: no 5xx, no hang, no traceback in the
server's log, and only the statuses each abuse allows.
"""

from __future__ import annotations

import pytest

from .fuzz.attack_requests import ABUSES, Abuse, run_abuse

SLICE = ("deep_nesting", "surrogates", "wrong_types", "colliding_names", "random_bytes")


@pytest.mark.parametrize("abuse", [a for a in ABUSES if a.name in SLICE], ids=lambda a: a.name)
def test_hostile_bodies_get_4xx_or_an_answer(abuse: Abuse) -> None:
    result = run_abuse(abuse, quick=True)
    assert result.requests > 0
    assert result.server_errors == 0, result.line()
    assert result.hangs == 0, result.line()
    assert result.unexpected == 0, result.line()
