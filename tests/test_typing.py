"""The public API is typed end to end: ``mypy --strict`` checks what a user's code sees.

``tests/typing/check_types.py`` holds ``assert_type`` lines (the pipelines yield the
``ResponseStreamEvent`` union, which narrows on ``event.type``); the snippets below are mistakes
a type checker must catch (a misspelled attribute, a misspelled option).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ROOT / "tests" / "typing" / "check_types.py"

MISTAKES = {
    "misspelled_attribute.py": (
        "from rxresponses import chat_sse_to_responses, from_bytes, iterate\n"
        "for event in iterate(from_bytes([b'']).pipe(chat_sse_to_responses())):\n"
        "    if event.type == 'response.output_text.delta':\n"
        "        print(event.dleta)\n",
        '"ResponseTextDeltaEvent" has no attribute "dleta"',
    ),
    "misspelled_attribute_unnarrowed.py": (
        "from rxresponses import chat_sse_to_responses, from_bytes, iterate\n"
        "for event in iterate(from_bytes([b'']).pipe(chat_sse_to_responses())):\n"
        "    print(event.dleta)\n",
        'has no attribute "dleta"',
    ),
    "misspelled_option.py": (
        "from rxresponses import chat_sse_to_responses\n"
        "chat_sse_to_responses(respons_id='resp_1')\n",
        'Unexpected keyword argument "respons_id"',
    ),
    "misspelled_operator_option.py": (
        "from rxresponses import operators as rxo\nrxo.assemble(respons_id='resp_1')\n",
        'Unexpected keyword argument "respons_id"',
    ),
}


@pytest.mark.timeout(300)
def test_mypy_strict_sees_typed_streams_and_catches_mistakes(tmp_path: Path) -> None:
    for name, (code, _) in MISTAKES.items():
        (tmp_path / name).write_text(code)
    files = [str(CHECKED), *(str(tmp_path / name) for name in MISTAKES)]
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    lines = run.stdout.splitlines()
    assert not [line for line in lines if "check_types.py" in line], run.stdout
    for name, (_, expected) in MISTAKES.items():
        errors = [line for line in lines if name in line and "error:" in line]
        assert any(expected in line for line in errors), (name, run.stdout)
