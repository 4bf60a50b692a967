"""``rxresponses.server.add_arguments`` / ``run``, the configuration, and running under workers."""

from __future__ import annotations

import argparse
import subprocess
import sys

import httpx
import pytest

from rxresponses.server import ConfigError, ServerConfig, add_arguments, run
from rxresponses.server import config_from_args as from_args
from rxresponses.server.app import create_app_from_env

from .fuzz.attack_upstream import start_serve


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rxresponses serve")
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults():
    args = parse()
    assert (args.upstream, args.host, args.port, args.workers) == (None, "127.0.0.1", 8000, 1)
    # serve stores responses in a SQLite file without any flag; the library default stores nothing
    assert from_args(args) == ServerConfig(store="sqlite:///rxresponses.sqlite3")


def test_upstream_client_option():
    assert from_args(parse()).upstream_client == "lean"
    config = from_args(parse("--upstream-client", "httpx"))
    assert config.upstream_client == "httpx"
    assert config.to_env()["RXRESPONSES_UPSTREAM_CLIENT"] == "httpx"
    assert ServerConfig.from_env(config.to_env()) == config  # what each worker reads back
    with pytest.raises(ConfigError):
        ServerConfig.from_env({"RXRESPONSES_UPSTREAM_CLIENT": "aiohttp"})
    with pytest.raises(SystemExit):
        parse("--upstream-client", "aiohttp")


def test_store_options():
    assert from_args(parse("--store", "none")).store is None
    config = from_args(
        parse(
            "--store",
            "postgresql://u@127.0.0.1:5432/db",
            "--bus",
            "redis://127.0.0.1:6379/0",
            "--store-retention-days",
            "7",
            "--store-max-bytes",
            "1000",
        )
    )
    assert (config.store, config.bus) == (
        "postgresql://u@127.0.0.1:5432/db",
        "redis://127.0.0.1:6379/0",
    )
    assert (config.store_retention_days, config.store_max_bytes) == (7.0, 1000)
    assert ServerConfig.from_env(config.to_env()) == config
    assert ServerConfig.from_env(ServerConfig().to_env()).store is None
    for bad in (("--store", "mysql://x"), ("--bus", "http://x"), ("--store-max-bytes", "-1")):
        with pytest.raises(ConfigError):
            from_args(parse(*bad))


def test_options_make_a_config():
    args = parse(
        "--upstream",
        "http://127.0.0.1:8080/v1",
        "--api-key-env",
        "MY_KEY",
        "--max-body-bytes",
        "1024",
        "--scripted-delay-ms",
        "0",
        "--system-role",
        "developer",
        "--max-tokens-field",
        "max_completion_tokens",
        "--upstream-timeout",
        "30",
    )
    assert from_args(args) == ServerConfig(
        upstream="http://127.0.0.1:8080/v1",
        api_key_env="MY_KEY",
        max_body_bytes=1024,
        scripted_delay=0,
        system_role="developer",
        max_tokens_field="max_completion_tokens",
        upstream_timeout=30,
        store="sqlite:///rxresponses.sqlite3",
    )


def test_config_round_trips_through_the_environment():
    config = ServerConfig(
        upstream="https://api.example.com/v1",
        api_key_env="K",
        max_body_bytes=99,
        scripted_delay=0.25,
        system_role="developer",
        max_tokens_field="max_completion_tokens",
        upstream_timeout=12.5,
        max_connections=7,
    )
    assert ServerConfig.from_env(config.to_env()) == config
    assert ServerConfig.from_env({}) == ServerConfig()


def test_app_factory_reads_the_environment(monkeypatch):
    monkeypatch.setenv("RXRESPONSES_SCRIPTED_DELAY_MS", "0")
    monkeypatch.setenv("RXRESPONSES_MAX_BODY_BYTES", "123")
    app = create_app_from_env()
    assert app.state.rxresponses.config == ServerConfig(scripted_delay=0, max_body_bytes=123)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"upstream": "127.0.0.1:8080"}, r"http\(s\) base URL"),
        ({"upstream": "ftp://host/v1"}, r"http\(s\) base URL"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"system_role": "user"}, "system_role"),
    ],
)
def test_bad_configs(config, message):
    with pytest.raises(ConfigError, match=message):
        ServerConfig(**config)


def test_credentials_in_the_upstream_url_are_masked_in_labels():
    config = ServerConfig(upstream="https://user:pa55word@host.example/v1")
    assert "pa55word" not in config.upstream_label
    assert "pa55word" not in repr(config.resolve_api_key())


def test_api_key_is_read_from_the_named_variable_and_hidden(monkeypatch):
    monkeypatch.setenv("RXR_KEY", "sk-very-secret-value")
    key = ServerConfig(api_key_env="RXR_KEY").resolve_api_key()
    assert key is not None
    assert key.reveal() == "sk-very-secret-value"
    assert "secret" not in repr(key) + str(key)


@pytest.mark.parametrize(
    "argv",
    [
        ("--api-key-env", "RXR_TEST_MISSING_VARIABLE"),
        ("--upstream", "not a url"),
        ("--workers", "0"),
    ],
)
def test_run_refuses_bad_configuration(argv, capsys, monkeypatch):
    monkeypatch.delenv("RXR_TEST_MISSING_VARIABLE", raising=False)
    assert run(parse(*argv)) == 2
    assert "rxresponses serve:" in capsys.readouterr().err


def test_importing_the_package_does_not_import_the_server_extra():
    code = (
        "import sys, rxresponses, rxresponses.server; "
        "assert 'starlette' not in sys.modules and 'uvicorn' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_run_with_two_workers(tmp_path):
    """``rxresponses serve --workers 2``: ``run`` under uvicorn with two worker processes
    (config via the environment), started with the fuzz harness's launcher."""
    server = start_serve(
        tmp_path, "workers", "--workers", "2", "--scripted-delay-ms", "0", "--no-access-log"
    )
    try:
        for _ in range(4):
            response = httpx.post(
                server.url + "/v1/responses", json={"model": "m", "input": "workers"}, timeout=10
            )
            assert response.json()["status"] == "completed"
    finally:
        output = server.stop()  # SIGINT, as Ctrl-C
    assert server.proc.returncode == 0, output
    assert "2 workers" in output


def test_the_launcher_starts_serve_again_when_its_free_port_was_taken(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tests' launcher finds a free port by binding port 0 and closing it; when another
    process takes the port first, serve exits ("address already in use") and is started again on
    another port, instead of failing the test that needed it."""
    import socket

    from .fuzz import attack_upstream

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = [taken.getsockname()[1]]
    real = attack_upstream._free_port
    monkeypatch.setattr(attack_upstream, "_free_port", lambda: ports.pop() if ports else real())
    try:
        server = attack_upstream.start_serve(tmp_path, "serve", "--store", "none")
        try:
            assert server.port != taken.getsockname()[1]
            assert httpx.get(server.url + "/health", timeout=5).status_code == 200
        finally:
            server.stop()
    finally:
        taken.close()
