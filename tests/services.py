"""Real PostgreSQL and Redis servers for tests, started on loopback in a temporary folder.

:class:`PostgresServer` runs ``initdb`` into a temp dir and starts ``postgres`` on 127.0.0.1 at a
free port (as the ``postgres`` user when the tests run as root, which PostgreSQL refuses);
:class:`RedisServer` starts ``redis-server`` without persistence. Both are stopped and their
folders removed by :meth:`stop`. :func:`unavailable` skips a test outside CI and fails it in CI
(``CI=true``), so a service that cannot start is never silently untested there.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NoReturn

import pytest

__all__ = [
    "PostgresServer",
    "RedisServer",
    "ServiceError",
    "free_port",
    "install_missing",
    "unavailable",
]


class ServiceError(RuntimeError):
    """A service could not be started."""


def unavailable(service: str, reason: str) -> NoReturn:
    """Skip (outside CI) or fail (in CI) a test whose real service could not start."""
    message = f"{service} unavailable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


_INSTALL_SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "services"
_install_tried = False


def install_missing() -> None:
    """Install missing services once per run with ``.ci/services`` (root with apt-get only).

    So the README's test command works on a fresh machine as it does in CI; elsewhere (no root, no
    apt-get) the caller's :func:`unavailable` skips or fails as usual.
    """
    global _install_tried
    if _install_tried:
        return
    _install_tried = True
    if os.geteuid() != 0 or shutil.which("apt-get") is None or not _INSTALL_SCRIPT.exists():
        return
    subprocess.run(
        ["bash", str(_INSTALL_SCRIPT)], check=False, stdin=subprocess.DEVNULL, timeout=600
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(proc: subprocess.Popen[bytes], ready: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{what} exited with {proc.returncode}")
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise ServiceError(f"{what} not ready after {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _pg_bindir() -> Path | None:
    env = os.environ.get("RXRESPONSES_PG_BINDIR")
    candidates = [env] if env else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust auth, user ``postgres``).

    Args:
        durable: Keep ``fsync`` on (benchmarks); tests turn it off for speed.
    """

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        self.port = 0
        self.dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._databases = 0

    @property
    def dsn(self) -> str:
        """The connection URL of the ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _user(self) -> dict[str, object]:
        """Popen options that drop root to the ``postgres`` user (the process is postgres itself,
        so signals reach it; ``runuser`` would stand in between)."""
        if os.geteuid() != 0:
            return {}
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceError("running as root and no 'postgres' user") from None
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def start(self) -> PostgresServer:
        """initdb (first time) and start the server; raises :class:`ServiceError`."""
        bindir = _pg_bindir()
        if bindir is None:
            install_missing()
            bindir = _pg_bindir()
        if bindir is None:
            raise ServiceError("PostgreSQL binaries (initdb) not found")
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="rxresponses-pg-"))
            os.chmod(self.dir, 0o755)
            if os.geteuid() == 0:
                try:
                    user = pwd.getpwnam("postgres")
                except KeyError:
                    raise ServiceError("running as root and no 'postgres' user") from None
                os.chown(self.dir, user.pw_uid, user.pw_gid)
            result = subprocess.run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.dir / "data"),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
                capture_output=True,
                timeout=120,
                check=False,
                cwd=self.dir,
                **self._user(),  # type: ignore[call-overload]
            )
            if result.returncode:
                raise ServiceError(f"initdb failed: {result.stderr.decode()[-500:]}")
        self.port = self.port or free_port()
        argv = [
            str(bindir / "postgres"),
            "-D",
            str(self.dir / "data"),
            "-c",
            "listen_addresses=127.0.0.1",
            "-p",
            str(self.port),
            "-c",
            f"unix_socket_directories={self.dir}",
            "-c",
            "max_connections=200",
        ]
        if not self.durable:
            argv += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.dir,
            **self._user(),  # type: ignore[call-overload]
        )
        log.close()
        _wait(self.proc, self._ready, "postgres")
        return self

    def _ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.dsn, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def new_database(self) -> str:
        """Create an empty database; returns its URL (one per test keeps tests apart)."""
        import psycopg

        self._databases += 1
        name = f"t{os.getpid()}_{self._databases}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def pause(self) -> None:
        """Stop the server (fast shutdown), keeping its data: the backend goes "down"."""
        _stop(self.proc, signal.SIGINT)

    def resume(self) -> None:
        """Start the stopped server again on the same port."""
        self.start()

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        _stop(self.proc, signal.SIGINT)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


class RedisServer:
    """A throwaway ``redis-server`` on 127.0.0.1, without persistence."""

    def __init__(self) -> None:
        self.port = 0
        self.dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server; raises :class:`ServiceError`."""
        binary = shutil.which("redis-server")
        if binary is None:
            install_missing()
            binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError("redis-server not found (apt-get install redis-server)")
        self.dir = Path(tempfile.mkdtemp(prefix="rxresponses-redis-"))
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        _wait(self.proc, self._ready, "redis-server")
        return self

    def _ready(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), 1) as s,
        ):
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        _stop(self.proc)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
