"""The ``rxresponses`` command line: in-process with capsys, a few real subprocess runs, and a
real local HTTP server on 127.0.0.1 for ``record`` and ``demo --upstream``."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rxresponses import cli
from rxresponses.cli import detect_kind, main
from rxresponses.data import demo_bytes
from rxresponses.scripted import ScriptedTurn, chat_chunks, chat_sse, turn_for_request
from rxresponses.sse import SSEDecoder
from rxresponses.types import to_json
from rxresponses.types.events import parse_event

ROOT = Path(__file__).resolve().parents[1]


# -- helpers ------------------------------------------------------------------------------------


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rxresponses: error: "), err
    assert "Traceback" not in err
    return lines[0]


def sse_payloads(data: bytes) -> list[str]:
    decoder = SSEDecoder()
    return [m.data for m in decoder.feed(data) + decoder.flush()]


@pytest.fixture
def demo_file(tmp_path: Path) -> Path:
    path = tmp_path / "demo.sse"
    path.write_bytes(demo_bytes())
    return path


@pytest.fixture
def responses_file(tmp_path: Path, demo_file: Path) -> Path:
    path = tmp_path / "responses.sse"
    assert main(["convert", str(demo_file), "--stable-ids", "-o", str(path)]) == 0
    return path


# -- a real local Chat Completions server --------------------------------------------------------


class ChatServer:
    """A threaded http.server answering POST .../chat/completions with the scripted model."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, Any], dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((body, dict(self.headers)))
                if not self.path.endswith("/chat/completions"):
                    self.send_error(404)
                    return
                if body["model"] == "fail-500":
                    payload = b'{"error": {"message": "the model\\nis overloaded", "code": 500}}'
                    self.send_response(500)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for frame in outer.frames(body):
                    self.wfile.write(frame)
                    self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @staticmethod
    def frames(body: dict[str, Any]) -> list[bytes]:
        frames = list(chat_sse(chat_chunks(turn_for_request(body), model=body["model"])))
        if body["model"] == "cut":
            return frames[:5]  # no finish_reason, no [DONE]
        return frames


@pytest.fixture
def server() -> Iterator[ChatServer]:
    srv = ChatServer()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()


@pytest.fixture
def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# -- help and usage -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["demo"], ["replay"], ["convert"], ["record"]])
def test_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: rxresponses")
    assert "exit status" in out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == cli.EXIT_USAGE
    assert "demo" in capsys.readouterr().err


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["record", "--url", "http://x"])  # --model and --prompt missing
    assert exc.value.code == 2


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("rxresponses 0.")


# -- demo ---------------------------------------------------------------------------------------


def test_demo_renders_everything(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--no-delay"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "\x1b[" not in out  # not a TTY: no colours
    assert "▸ reasoning" in out
    assert "The user wants the weather in Paris and in Tokyo" in out
    assert "Let me check the current weather in both cities for you." in out
    assert out.count("▸ tool call get_weather") == 2
    assert '{"city": "Paris", "unit": "celsius"}' in out
    assert '{"city": "Tokyo", "unit": "celsius"}' in out
    assert "completed" in out
    assert "42 in · 108 out (58 reasoning) · 150 total" in out


def test_demo_colours_dim_the_reasoning(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--no-delay", "--color", "always"]) == 0
    out = capsys.readouterr().out
    dim = "\x1b[2m"
    reasoning_at = out.index("The user wants")
    assert out.rfind(dim, 0, reasoning_at) > out.rfind("\x1b[0m", 0, reasoning_at)
    message_at = out.index("Let me check")
    assert out.rfind("\x1b[0m", 0, message_at) > out.rfind(dim, 0, message_at)


def test_demo_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--no-delay", "--no-summary", "--no-reasoning"]) == 0
    out = capsys.readouterr().out
    assert "▸ reasoning" in out
    assert "The user wants" not in out
    assert "usage" not in out


def test_demo_default_timing_is_a_few_seconds() -> None:
    frames = demo_bytes().count(b"data: ") - 1  # [DONE] ends the stream, it is not paced
    seconds = (frames - 1 + 8) * cli._DEFAULT_DELAY_MS / 1000
    assert 3.0 <= seconds <= 6.0


def test_demo_paced_takes_time(capsys: pytest.CaptureFixture[str]) -> None:
    import time

    start = time.perf_counter()
    assert main(["demo", "--delay-ms", "4", "--speed", "2", "--no-summary"]) == 0
    elapsed = time.perf_counter() - start
    assert elapsed >= 113 * 0.002 * 0.5  # jitter is +-50%


def test_demo_rejects_bad_timing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--speed", "0"]) == cli.EXIT_USAGE
    one_error_line(capsys.readouterr().err)


# -- replay -------------------------------------------------------------------------------------


def test_replay_chat_recording(demo_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(demo_file)]) == 0
    out = capsys.readouterr().out
    assert "Let me check the current weather" in out
    assert "completed" in out


def test_replay_responses_recording(
    responses_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(responses_file)]) == 0
    out = capsys.readouterr().out
    assert "response resp_000001" in out
    assert out.count("▸ tool call get_weather") == 2


def test_replay_jsonl_recording(
    tmp_path: Path, demo_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "events.jsonl"
    assert main(["convert", str(demo_file), "-o", str(out_file)]) == 0
    capsys.readouterr()
    assert main(["replay", str(out_file)]) == 0
    assert "Let me check the current weather" in capsys.readouterr().out


def test_replay_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    stdin = types.SimpleNamespace(buffer=io.BytesIO(demo_bytes()))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["replay", "-"]) == 0
    assert "get_weather" in capsys.readouterr().out


def test_replay_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "nope.sse")]) == cli.EXIT_INPUT
    out, err = capsys.readouterr()
    assert "no such file" in one_error_line(err)
    assert out == ""


def test_replay_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path)]) == cli.EXIT_INPUT
    one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "no events"),
        (b"hello world\n", "no events"),
        (b"data: not json\n\n", "not JSON"),
        (b'data: {"hello": 1}\n\n', "neither"),
        (b"data: [1, 2]\n\n", "not a JSON object"),
    ],
)
def test_replay_unrecognised(
    tmp_path: Path, content: bytes, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.sse"
    path.write_bytes(content)
    assert main(["replay", str(path)]) == cli.EXIT_INPUT
    assert expected in one_error_line(capsys.readouterr().err)


def test_replay_undecodable_in_the_middle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = list(chat_sse(chat_chunks(ScriptedTurn(text="Hello there"))))
    path = tmp_path / "bad.sse"
    path.write_bytes(b"".join(frames[:3]) + b"data: {not json\n\n" + b"".join(frames[3:]))
    assert main(["replay", str(path)]) == cli.EXIT_FAILED
    out, err = capsys.readouterr()
    assert "undecodable chunk" in one_error_line(err)
    assert "stream failed" in err
    assert "error: server_error: undecodable chunk" in out  # rendered first
    assert "failed" in out


def test_replay_failed_responses_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = [
        {"type": "response.created", "sequence_number": 0,
         "response": {"id": "resp_1", "created_at": 1, "model": "m", "status": "in_progress"}},
        {"type": "error", "sequence_number": 1, "code": "server_error", "message": "boom"},
        {"type": "response.failed", "sequence_number": 2,
         "response": {"id": "resp_1", "created_at": 1, "model": "m", "status": "failed",
                      "error": {"code": "server_error", "message": "boom"}}},
    ]  # fmt: skip
    path = tmp_path / "failed.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    assert main(["replay", str(path)]) == cli.EXIT_FAILED
    out, err = capsys.readouterr()
    assert one_error_line(err) == "rxresponses: error: the stream failed: server_error: boom"
    assert "✖ error: server_error: boom" in out


def test_replay_cut_responses_stream(
    tmp_path: Path, responses_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = responses_file.read_bytes()
    cut = tmp_path / "cut.sse"
    cut.write_bytes(data[: data.index(b"event: response.output_text.delta")])
    assert main(["replay", str(cut)]) == cli.EXIT_FAILED
    out, err = capsys.readouterr()
    assert "terminal event" in one_error_line(err)
    assert "the stream ended before a terminal event" in out


# -- convert ------------------------------------------------------------------------------------


def test_convert_sse_to_stdout(demo_file: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["convert", str(demo_file)]) == 0
    out = capsysbinary.readouterr().out
    assert out.startswith(b"event: response.created\ndata: {")
    events = [parse_event(p) for p in sse_payloads(out)]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"
    assert b"[DONE]" not in out
    for frame in out.split(b"\n\n")[:-1]:  # event: line matches the payload's type
        kind, data = frame.split(b"\n")
        assert json.loads(data.removeprefix(b"data: "))["type"] == kind.decode().split(": ")[1]


def test_convert_jsonl_is_the_sse_data(
    demo_file: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    def clockless(line: str) -> str:  # the one wall-clock field: two runs may straddle a second
        return re.sub(r'"completed_at":\d+', '"completed_at":0', line)

    assert main(["convert", str(demo_file), "--stable-ids"]) == 0
    sse = capsysbinary.readouterr().out
    assert main(["convert", str(demo_file), "--stable-ids", "--format", "jsonl"]) == 0
    jsonl = capsysbinary.readouterr().out
    assert [clockless(x) for x in jsonl.decode().splitlines()] == [
        clockless(x) for x in sse_payloads(sse)
    ]
    assert all(to_json(parse_event(line)) == line for line in jsonl.decode().splitlines())


def test_convert_stable_ids_are_reproducible(
    demo_file: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    def normalized(out: bytes) -> bytes:  # the one wall-clock field
        return re.sub(rb'"completed_at":\d+', b'"completed_at":0', out)

    assert main(["convert", str(demo_file), "--stable-ids"]) == 0
    first = capsysbinary.readouterr().out
    assert main(["convert", str(demo_file), "--stable-ids"]) == 0
    assert normalized(capsysbinary.readouterr().out) == normalized(first)
    assert b'"id":"resp_000001"' in first


def test_convert_to_file_picks_format_by_extension(tmp_path: Path, demo_file: Path) -> None:
    jsonl, sse = tmp_path / "out.jsonl", tmp_path / "out.sse"
    assert main(["convert", str(demo_file), "-o", str(jsonl), "--stable-ids"]) == 0
    assert main(["convert", str(demo_file), "-o", str(sse), "--stable-ids"]) == 0

    def without_clock(payloads: list[str]) -> list[dict]:
        # completed_at is the wall clock at the end of each run: the two runs may straddle a second
        events = [json.loads(p) for p in payloads]
        for event in events:
            event.get("response", {}).pop("completed_at", None)
        return events

    assert without_clock(jsonl.read_text().splitlines()) == without_clock(
        sse_payloads(sse.read_bytes())
    )


def test_convert_responses_input_is_reencoded(
    responses_file: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["convert", str(responses_file)]) == 0
    assert capsysbinary.readouterr().out == responses_file.read_bytes()


def test_convert_failed_stream_writes_then_exits_1(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    frames = list(chat_sse(chat_chunks(ScriptedTurn(text="Hello there"))))
    path = tmp_path / "bad.sse"
    path.write_bytes(b"".join(frames[:3]) + b"data: {not json\n\n")
    assert main(["convert", str(path)]) == cli.EXIT_FAILED
    captured = capsysbinary.readouterr()
    types_ = [parse_event(p).type for p in sse_payloads(captured.out)]
    assert types_[-2:] == ["error", "response.failed"]
    one_error_line(captured.err.decode())


def test_convert_unwritable_output(
    tmp_path: Path, demo_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "no" / "such" / "dir" / "out.sse"
    assert main(["convert", str(demo_file), "-o", str(target)]) == cli.EXIT_INPUT
    assert "cannot write" in one_error_line(capsys.readouterr().err)


def test_detect_kind() -> None:
    assert detect_kind('{"object": "chat.completion.chunk", "choices": []}') == "chat"
    assert detect_kind('{"choices": [{"delta": {}}]}') == "chat"
    assert detect_kind('{"error": {"message": "quota"}}') == "chat"
    assert detect_kind('{"type": "response.created", "response": {}}') == "responses"
    assert detect_kind('{"type": "error", "code": "x"}') == "responses"
    with pytest.raises(ValueError, match="not JSON"):
        detect_kind("{nope")
    with pytest.raises(ValueError, match="neither"):
        detect_kind('{"type": "message"}')


# -- record and demo --upstream against a real local server ---------------------------------------


def test_record_is_byte_for_byte(
    server: ChatServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MY_KEY", "sk-test")
    out = tmp_path / "rec.sse"
    argv = ["record", "--url", server.url, "--model", "m1", "--prompt", "Hi there"]
    assert main([*argv, "--api-key-env", "MY_KEY", "-o", str(out)]) == 0
    body, headers = server.requests[-1]
    assert out.read_bytes() == b"".join(server.frames(body))
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": "Hi there"}]
    assert headers["Authorization"] == "Bearer sk-test"
    assert "recorded" in capsys.readouterr().err
    # and the recording replays
    assert main(["replay", str(out)]) == 0
    assert "You said: Hi there" in capsys.readouterr().out


def test_record_to_stdout(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    argv = ["record", "--url", server.url + "/chat/completions", "--model", "m", "--prompt", "x"]
    assert main(argv) == 0
    body, headers = server.requests[-1]
    assert capsysbinary.readouterr().out == b"".join(server.frames(body))
    assert "Authorization" not in headers


def test_record_http_500(server: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "rec.sse"
    argv = ["record", "--url", server.url, "--model", "fail-500", "--prompt", "x", "-o", str(out)]
    assert main(argv) == cli.EXIT_UPSTREAM
    line = one_error_line(capsys.readouterr().err)
    assert "HTTP 500" in line
    assert "the model is overloaded" in line
    assert not out.exists()


def test_record_refused(refused_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["record", "--url", refused_url, "--model", "m", "--prompt", "x"]
    assert main(argv) == cli.EXIT_UPSTREAM
    assert "connection failed" in one_error_line(capsys.readouterr().err)


def test_record_missing_key_env(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NOPE_KEY", raising=False)
    argv = ["record", "--url", "http://127.0.0.1:1", "--model", "m", "--prompt", "x"]
    assert main([*argv, "--api-key-env", "NOPE_KEY"]) == cli.EXIT_USAGE
    assert "NOPE_KEY" in one_error_line(capsys.readouterr().err)


def test_record_bad_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", "--url", "ftp://x", "--model", "m", "--prompt", "x"]) == 2
    one_error_line(capsys.readouterr().err)


def test_demo_upstream(server: ChatServer, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["demo", "--upstream", server.url, "--model", "m2", "--prompt", "Ping?"]
    assert main([*argv, "--max-tokens", "500"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "You said: Ping?" in out
    assert "m2" in out
    body, _ = server.requests[-1]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 500


def test_demo_upstream_500(server: ChatServer, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["demo", "--upstream", server.url, "--model", "fail-500"]
    assert main(argv) == cli.EXIT_UPSTREAM
    out, err = capsys.readouterr()
    assert "HTTP 500" in one_error_line(err)
    assert "failed" in out  # the failed response is still rendered


def test_demo_upstream_refused(refused_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--upstream", refused_url, "--model", "m"]) == cli.EXIT_UPSTREAM
    assert "connection failed" in one_error_line(capsys.readouterr().err)


def test_demo_upstream_cut(server: ChatServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--upstream", server.url, "--model", "cut"]) == cli.EXIT_FAILED
    assert "stream failed" in one_error_line(capsys.readouterr().err)


def test_demo_upstream_needs_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--upstream", "http://127.0.0.1:1"]) == cli.EXIT_USAGE
    assert "--model" in one_error_line(capsys.readouterr().err)


# -- serve --------------------------------------------------------------------------------------


def test_serve_without_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = cli.importlib.import_module

    def fake(name: str, *args: Any) -> Any:
        if name == "rxresponses.server":
            raise ModuleNotFoundError("No module named 'starlette'", name="starlette")
        return real(name, *args)

    monkeypatch.setattr(cli.importlib, "import_module", fake)
    assert main(["serve", "--port", "1"]) == cli.EXIT_USAGE
    line = one_error_line(capsys.readouterr().err)
    assert "pip install 'rxresponses[server]'" in line


def test_serve_delegates_to_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    fake = types.ModuleType("rxresponses.server")

    def add_arguments(parser: Any) -> None:
        parser.add_argument("--port", type=int, default=8000)

    def run(args: Any) -> int:
        seen.append(args)
        return 5

    fake.add_arguments = add_arguments
    fake.run = run
    monkeypatch.setitem(sys.modules, "rxresponses.server", fake)
    assert main(["serve", "--port", "9123"]) == 5
    assert seen[0].port == 9123
    assert main(["--debug", "serve"]) == 5


def test_serve_help_with_the_real_server(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        server = cli.importlib.import_module("rxresponses.server")
    except ImportError:
        pytest.skip("rxresponses.server is not importable here")
    if not hasattr(server, "add_arguments"):
        pytest.skip("rxresponses.server has no add_arguments yet")
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("usage: rxresponses serve")


# -- unexpected failures ------------------------------------------------------------------------


def test_internal_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(args: Any) -> int:
        raise RuntimeError("kaput")

    monkeypatch.setattr(cli, "_cmd_demo", boom)
    assert main(["demo"]) == cli.EXIT_INTERNAL
    assert "RuntimeError: kaput" in one_error_line(capsys.readouterr().err)
    with pytest.raises(RuntimeError):
        main(["--debug", "demo"])


def test_interrupt(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_demo", interrupted)
    assert main(["demo"]) == cli.EXIT_INTERRUPTED
    assert one_error_line(capsys.readouterr().err) == "rxresponses: error: interrupted"


def test_interrupted_demo_leaves_the_terminal_clean(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from reactivex import operators as ops

    import rxresponses.data

    def ctrl_c_after_50(delay: float, **options: Any) -> Any:
        count = 0

        def tick(_: Any) -> None:
            nonlocal count
            count += 1
            if count == 50:
                raise KeyboardInterrupt

        return ops.do_action(on_next=tick)

    monkeypatch.setattr(rxresponses.data, "paced", ctrl_c_after_50)
    assert main(["demo", "--color", "always"]) == cli.EXIT_INTERRUPTED
    out, err = capsys.readouterr()
    assert out.endswith("\x1b[0m\n") or out.endswith("\n")
    assert out.rfind("\x1b[0m") > out.rfind("\x1b[2m")  # the dim reasoning was switched off
    assert "usage" not in out
    assert one_error_line(err) == "rxresponses: error: interrupted"


# -- real processes -----------------------------------------------------------------------------


def run_module(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rxresponses", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        **kwargs,
    )


def test_subprocess_demo() -> None:
    result = run_module("demo", "--no-delay")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "get_weather" in result.stdout
    assert "completed" in result.stdout


def test_subprocess_missing_file(tmp_path: Path) -> None:
    result = run_module("replay", str(tmp_path / "missing.sse"))
    assert result.returncode == cli.EXIT_INPUT
    assert "no such file" in one_error_line(result.stderr)
    assert result.stdout == ""


def test_subprocess_closed_pipe_is_quiet(tmp_path: Path) -> None:
    big = tmp_path / "big.sse"
    big.write_bytes(b"".join(chat_sse(chat_chunks(ScriptedTurn(text="word " * 40_000)))))
    with subprocess.Popen(
        [sys.executable, "-m", "rxresponses", "convert", str(big)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.read(100).startswith(b"event: response.created")
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) != 0
    assert "Traceback" not in err
    assert "Exception ignored" not in err


# -- one flag for the upstream, warnings, progress, closed pipes (issue 16 point 6) --------------


def test_record_takes_upstream_like_the_other_commands(
    server: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rec.sse"
    argv = ["record", "--upstream", server.url, "--model", "m1", "--prompt", "Hi", "-o", str(out)]
    assert main(argv) == 0
    body, _ = server.requests[-1]
    assert out.read_bytes() == b"".join(server.frames(body))
    err = capsys.readouterr().err
    assert err == f"rxresponses: recorded {out.stat().st_size} bytes to {out}\n"  # no progress
    with pytest.raises(SystemExit):
        main(["record", "--help"])
    assert "--upstream URL, --url URL" in capsys.readouterr().out


def test_record_shows_progress_on_a_tty_stderr(
    server: ChatServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    out = tmp_path / "rec.sse"
    argv = ["record", "--upstream", server.url, "--model", "m1", "--prompt", "Hi", "-o", str(out)]
    assert main(argv) == 0
    body, _ = server.requests[-1]
    frames = server.frames(body)
    size = sum(len(f) for f in frames)
    err = capsys.readouterr().err
    # one line redrawn in place, ending with the final figures, then the summary line
    assert err.startswith("\rrxresponses: recording: ")
    final = f"\rrxresponses: recording: {size:,} bytes, "
    assert final in err
    assert err.endswith(f"\nrxresponses: recorded {size} bytes to {out}\n")


def test_demo_model_without_upstream_warns(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--no-delay", "--model", "gpt-x"]) == 0
    out, err = capsys.readouterr()
    assert err == (
        "rxresponses: warning: --model gpt-x is ignored without --upstream "
        "(the embedded demo plays)\n"
    )
    assert "rxresponses-demo" in out


def test_demo_without_model_does_not_warn(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--no-delay"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "command",
    [["demo"], ["demo", "--no-delay"], ["replay", "{file}"], ["convert", "{file}"]],
    ids=["demo-paced", "demo", "replay", "convert"],
)
def test_head_closing_the_pipe_exits_quietly(command: list[str], tmp_path: Path) -> None:
    big = tmp_path / "big.sse"
    big.write_bytes(b"".join(chat_sse(chat_chunks(ScriptedTurn(text="word\n" * 40_000)))))
    argv = [a.format(file=big) for a in command]
    shell = f"{sys.executable} -m rxresponses {' '.join(argv)} | head -1; exit ${{PIPESTATUS[0]}}"
    result = subprocess.run(
        ["bash", "-c", shell], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.stderr == ""
    if command[0] == "demo":
        # The embedded demo's output is small: it may all fit in the pipe's buffer before
        # `head` exits (then 0), or meet the closed pipe (then 141); never 1 or a traceback.
        assert result.returncode in (0, cli.EXIT_BROKEN_PIPE)
    else:  # 40,000 lines cannot fit in a pipe's buffer: the write meets the closed pipe
        assert result.returncode == cli.EXIT_BROKEN_PIPE
    assert len(result.stdout.splitlines()) == 1
