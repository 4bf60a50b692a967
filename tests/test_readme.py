"""Every ```python block of README.md runs as written.

Each block runs in a fresh namespace, in a temporary working directory that holds what the
README's command-line section makes (``turn.sse``, recorded by ``rxresponses record``, and
``responses.sse``, converted by ``rxresponses convert``). The addresses a block names are served
on loopback: ``127.0.0.1:8080/v1`` by a Chat Completions server answering with the scripted
model, ``127.0.0.1:8000/v1`` by ``rxresponses serve``'s app with the embedded model; the test
substitutes their real (free) ports. A block that needs a real provider or a key is marked in the
README with ``<!-- readme-test: skip (the reason) -->`` on the line before it.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from rxresponses.cli import main as cli_main
from rxresponses.scripted import ScriptedTurn, chat_chunks, chat_sse, turn_for_request
from rxresponses.server import create_app
from rxresponses.server.testing import BackgroundServer

README = Path(__file__).resolve().parents[1] / "README.md"
SECRET = "sk-live-1234"
_SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")


@dataclass
class Block:
    line: int  # of the opening fence
    code: str
    skip: str | None  # the reason, when marked


def readme_blocks() -> list[Block]:
    lines = README.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    n = 0
    while n < len(lines):
        if lines[n].strip() == "```python":
            start = n
            body: list[str] = []
            n += 1
            while lines[n].strip() != "```":
                body.append(lines[n])
                n += 1
            previous = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
            marked = _SKIP.search(previous)
            blocks.append(Block(start + 1, "\n".join(body) + "\n", marked and marked["reason"]))
        n += 1
    return blocks


def chat_upstream() -> Starlette:
    """A Chat Completions server: the scripted model's answer to each request, streamed."""

    async def completions(request: Request) -> StreamingResponse:
        body = await request.json()

        async def frames() -> AsyncIterator[bytes]:
            for frame in chat_sse(chat_chunks(turn_for_request(body), model=body["model"])):
                yield frame
                await asyncio.sleep(0)

        return StreamingResponse(frames(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    with BackgroundServer(chat_upstream()) as chat, BackgroundServer(create_app()) as serve:
        yield {
            "http://127.0.0.1:8080/v1": chat.url + "/v1",
            "http://127.0.0.1:8000/v1": serve.url + "/v1",
        }


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    turn = ScriptedTurn(text=f"Your key is {SECRET}, and the code is 4242.")
    (tmp_path / "turn.sse").write_bytes(b"".join(chat_sse(chat_chunks(turn))))
    assert (
        cli_main(["convert", str(tmp_path / "turn.sse"), "-o", str(tmp_path / "responses.sse")])
        == 0
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


def test_the_readme_has_python_blocks_and_few_skips() -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 8
    skipped = [b for b in blocks if b.skip is not None]
    assert len(skipped) <= 2
    assert all(b.skip and b.skip.strip() for b in skipped)


@pytest.mark.parametrize("block", readme_blocks(), ids=lambda b: f"README.md:{b.line}")
def test_readme_block_runs(
    block: Block,
    servers: dict[str, str],
    workdir: Path,
) -> None:
    if block.skip is not None:
        pytest.skip(block.skip)
    import matplotlib

    matplotlib.use("Agg")
    code = block.code
    for named, real in servers.items():
        code = code.replace(named, real)
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    exec(compile(code, f"README.md:{block.line}", "exec"), namespace)
    assert os.getcwd() == str(workdir)


def test_the_redaction_block_prints_the_masked_text(
    servers: dict[str, str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (block,) = [b for b in readme_blocks() if "redact_text" in b.code]
    exec(compile(block.code, f"README.md:{block.line}", "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out == "Your key is [redacted], and the code is 4242.\n"


def test_the_stage_block_masks_digits(
    servers: dict[str, str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (block,) = [b for b in readme_blocks() if "MaskDigits" in b.code]
    exec(compile(block.code, f"README.md:{block.line}", "exec"), {"__name__": "__readme__"})
    assert (
        capsys.readouterr().out
        == f"Your key is {SECRET.replace('1234', '####')}, and the code is ####.\n"
    )


SCRIPTED_HI = (
    "Hello! I am the scripted model built into rxresponses, answering without any network. "
    "You said: Hi!"
)


def run_block(block: Block, servers: dict[str, str]) -> None:
    code = block.code
    for named, real in servers.items():
        code = code.replace(named, real)
    exec(compile(code, f"README.md:{block.line}", "exec"), {"__name__": "__readme__"})


def test_the_first_screen_streams_a_request_like_the_sdk(
    servers: dict[str, str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = readme_blocks()[0]
    assert first.line <= 40  # a user who knows the openai SDK sees it without scrolling
    assert "rxresponses.responses.stream(" in first.code
    run_block(first, servers)
    text, status = capsys.readouterr().out.split("\n", 1)[0].split("completed", 1)
    assert text == SCRIPTED_HI
    assert status.startswith(" input_tokens=")  # the usage that came with the stream


@pytest.mark.parametrize("needle", ["rxresponses.responses.astream(", "from_openai_chunks(chat)"])
def test_the_async_and_openai_sdk_blocks_print_the_answer(
    needle: str, servers: dict[str, str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (block,) = [b for b in readme_blocks() if needle in b.code]
    run_block(block, servers)
    assert capsys.readouterr().out.strip() == SCRIPTED_HI


def test_blocks_are_found_with_their_line_numbers() -> None:
    text = README.read_text(encoding="utf-8").splitlines()
    for block in readme_blocks():
        assert text[block.line - 1].strip() == "```python"
        assert block.code.strip()
