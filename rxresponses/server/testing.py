"""Run an ASGI app on 127.0.0.1 in a background thread: for tests, benchmarks and notebooks.

>>> from rxresponses.server import create_app
>>> from rxresponses.server.testing import BackgroundServer
>>> with BackgroundServer(create_app()) as server:          # doctest: +SKIP
...     openai.OpenAI(base_url=server.url + "/v1", api_key="test")

The socket is bound before the thread starts (port 0 picks a free port, no race), the server runs
under uvicorn on its own event loop, and :meth:`BackgroundServer.stop` waits (bounded) for it to
finish, cancelling streams still open after ``graceful_timeout`` seconds.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

__all__ = ["BackgroundServer"]


class BackgroundServer:
    """uvicorn serving ``app`` on ``host:port`` in a daemon thread.

    Args:
        app: Any ASGI app.
        host: Interface to bind (default loopback).
        port: Port; 0 picks a free one (read it from :attr:`port` / :attr:`url`).
        graceful_timeout: Seconds open connections get at shutdown before they are cancelled.
        **uvicorn_options: More ``uvicorn.Config`` options (``log_level``...).
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        graceful_timeout: float = 1.0,
        **uvicorn_options: Any,
    ) -> None:
        import uvicorn

        options: dict[str, Any] = {
            "log_config": None,  # leave the process' logging alone
            "access_log": False,
            "lifespan": "on",
            "timeout_graceful_shutdown": graceful_timeout,
        }
        options.update(uvicorn_options)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, **options))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        """Start serving; return once the server accepts connections."""
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"uvicorn-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server thread exited during startup")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the server did not start within {timeout}s")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait (at most ``timeout`` seconds) for the thread to end."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
            self._thread = None
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def codex_like_request(*, model: str = "gpt-5-codex", stream: bool = True) -> dict[str, Any]:
    """A synthetic request shaped like the ones the Codex CLI (v0.169) sends, about 40 KB.

    Long base ``instructions``; an ``input`` of developer and user messages (permissions,
    ``AGENTS.md``, environment context) and an earlier turn with a reasoning item (summary and
    ``encrypted_content``), a ``shell`` call and its output; function tools, a ``namespace`` tool
    grouping MCP tools, a ``custom`` (free-form) ``apply_patch`` tool and the hosted ``web_search``;
    ``reasoning: {summary: auto}``, ``include: [reasoning.encrypted_content]``, ``store: false``,
    ``prompt_cache_key``, ``client_metadata`` and ``text.verbosity``. For tests and load tests.
    """
    filler = (
        "Keep changes minimal and focused. Prefer editing existing files. Run the tests before "
        "you finish, and report what you changed and why. "
    )
    shell_parameters = {
        "type": "object",
        "properties": {
            "command": {"type": "array", "items": {"type": "string"}},
            "workdir": {"type": "string"},
            "timeout_ms": {"type": "number"},
        },
        "required": ["command"],
        "additionalProperties": False,
    }
    return {
        "model": model,
        "instructions": "You are Codex, a coding agent running in a terminal. " + filler * 80,
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [
                    {
                        "type": "input_text",
                        "text": "<permissions instructions>Sandbox: workspace-write. Approval: "
                        "on-request. " + filler * 20 + "</permissions instructions>",
                    }
                ],
            },
            {
                "type": "message",
                "role": "user",
                "content": [
                    {
                        "type": "input_text",
                        "text": "# AGENTS.md instructions for /work/repo\n\n<INSTRUCTIONS>\n"
                        + filler * 130
                        + "\n</INSTRUCTIONS>",
                    }
                ],
            },
            {
                "type": "message",
                "role": "user",
                "content": [
                    {
                        "type": "input_text",
                        "text": "<environment_context>\n  <cwd>/work/repo</cwd>\n"
                        "  <shell>bash</shell>\n</environment_context>",
                    }
                ],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Why does the test suite fail?"}],
            },
            {
                "type": "reasoning",
                "id": "rs_0001",
                "summary": [{"type": "summary_text", "text": "**Running the tests first**"}],
                "content": None,
                "encrypted_content": "gAAAAB" + "x" * 2000,
            },
            {
                "type": "function_call",
                "id": "fc_0001",
                "name": "shell",
                "arguments": '{"command":["pytest","-q"],"workdir":"/work/repo"}',
                "call_id": "call_0001",
            },
            {
                "type": "function_call_output",
                "call_id": "call_0001",
                "output": "FAILED tests/test_x.py::test_y - AssertionError\n" + "." * 3000,
            },
            {
                "type": "message",
                "role": "assistant",
                "id": "msg_0001",
                "content": [
                    {
                        "type": "output_text",
                        "text": "One test fails: test_y expects a sorted list.",
                        "annotations": [],
                    }
                ],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Please fix it."}],
            },
        ],
        "tools": [
            {
                "type": "function",
                "name": "shell",
                "description": "Runs a shell command and returns its output. " + filler * 4,
                "strict": False,
                "parameters": shell_parameters,
            },
            {
                "type": "function",
                "name": "update_plan",
                "description": "Updates the task plan.",
                "strict": False,
                "parameters": {
                    "type": "object",
                    "properties": {"plan": {"type": "array", "items": {"type": "object"}}},
                    "required": ["plan"],
                },
            },
            {
                "type": "namespace",
                "name": "mcp__docs",
                "description": "Tools of the docs MCP server.",
                "tools": [
                    {
                        "type": "function",
                        "name": "search",
                        "description": "Search the documentation.",
                        "parameters": {
                            "type": "object",
                            "properties": {"query": {"type": "string"}},
                            "required": ["query"],
                        },
                    },
                    {
                        "type": "function",
                        "name": "fetch",
                        "description": "Fetch one page.",
                        "parameters": {
                            "type": "object",
                            "properties": {"url": {"type": "string"}},
                            "required": ["url"],
                        },
                    },
                ],
            },
            {
                "type": "custom",
                "name": "apply_patch",
                "description": "Apply a patch to files.",
                "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
            },
            {"type": "web_search", "external_web_access": False},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": stream,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "0199a5c6-8a4e-7b52-9d0e-3f1c2b7a9e10",
        "text": {"verbosity": "medium"},
        "client_metadata": {"originator": "codex_cli_rs", "version": "0.169.0"},
    }
