"""The Codex CLI over WebSocket mode: ``codex exec`` runs a turn through a real ``rxresponses
serve`` (the embedded scripted model) with ``supports_websockets = true`` for its provider.

Skipped when the CLI is not installed: ``.ci/codex`` installs it (``npm install @openai/codex``
into ``.ci/codex-cli``), or point ``RXRESPONSES_CODEX`` at a ``codex`` binary. Codex runs offline
against 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_server_websocket import start_serve

ROOT = Path(__file__).resolve().parents[1]


def codex_binary() -> str | None:
    for candidate in (
        os.environ.get("RXRESPONSES_CODEX"),
        str(ROOT / ".ci" / "codex-cli" / "node_modules" / ".bin" / "codex"),
        shutil.which("codex"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


CODEX = codex_binary()

#: The provider entry the README documents, with the test server's address.
CONFIG = """\
model = "qwen3-coder"
model_provider = "rxresponses"
model_reasoning_summary = "auto"

[model_providers.rxresponses]
name = "rxresponses"
base_url = "{url}/v1"
wire_api = "responses"
supports_websockets = true
"""


def test_codex_exec_turn_over_websocket(tmp_path: Path) -> None:
    if CODEX is None:
        missing = "the Codex CLI is not installed (run .ci/codex, or set RXRESPONSES_CODEX)"
        if os.environ.get("CI", "").lower() == "true":  # .ci/run installs it: never skip there
            pytest.fail(missing)
        pytest.skip(missing)
    server = start_serve(tmp_path)
    try:
        home = tmp_path / "codex-home"
        work = tmp_path / "work"
        home.mkdir()
        work.mkdir()
        (home / "config.toml").write_text(CONFIG.format(url=server.url))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))},
            "CODEX_HOME": str(home),
        }
        done = subprocess.run(
            [CODEX, "exec", "--skip-git-repo-check", "Say hello"],
            cwd=work,
            env=env,
            capture_output=True,
            timeout=180,
            check=False,
        )
    finally:
        server.stop()
    out = done.stdout.decode("utf-8", "replace")
    log = server.output()
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")[-3000:]
    # The scripted model called Codex's first tool, and answered with its result.
    assert "The tool returned:" in out
    # Every turn went over one WebSocket: no fallback to HTTP.
    assert '"WebSocket /v1/responses" [accepted]' in log
    assert "POST /v1/responses" not in log
    turns = [line for line in log.splitlines() if "stream=True status=completed" in line]
    # the tool call and the answer quoting the tool result, after Codex's warm-up (generate:
    # false: 3 events, no model call) when its startup prewarm was in time
    assert len(turns) in (2, 3), log[-3000:]
    if len(turns) == 3:
        assert "events=3 " in turns[0]
