"""Run a command (by default the test suite) against PostgreSQL and Redis.

``DATABASE_URL`` and ``REDIS_URL`` are used when set. Otherwise throwaway servers are started from the machine's
own binaries in a temporary folder, on free loopback ports, and removed afterwards.

    python -m tests.servers [pytest arguments...]
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


class MissingBinary(SystemExit):
    pass


def _find(binary: str, hint: str) -> str:
    found = shutil.which(binary) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{binary}"), reverse=True)), None
    )
    if not found:
        raise MissingBinary(f"make test: {binary} not found; install it ({hint}) or set DATABASE_URL and REDIS_URL")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"make test: the throwaway {what} exited at start (code {process.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise SystemExit(f"make test: the throwaway {what} did not start within {seconds:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    initdb = _find("initdb", "Debian: apt-get install postgresql")
    postgres = _find("postgres", "Debian: apt-get install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="isn-test-pg-"))
    # PostgreSQL refuses to run as root; as root, run it as the postgres system user.
    run_as: list[str] = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise MissingBinary(
                "make test: running as root needs a 'postgres' system user (apt-get install postgresql)"
            ) from None
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    port = _free_port()
    subprocess.run(
        [*run_as, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--no-locale"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    server = subprocess.Popen(
        [
            *run_as,
            postgres,
            "-D",
            str(data),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-k",
            str(folder),
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, server, "PostgreSQL")
        time.sleep(0.3)  # the port opens just before the server accepts logins
        yield f"postgres://postgres@127.0.0.1:{port}/isn"
    finally:
        _stop(server)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def throwaway_redis() -> Iterator[str]:
    redis_server = _find("redis-server", "Debian: apt-get install redis-server")
    port = _free_port()
    server = subprocess.Popen(
        [redis_server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, server, "Redis")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(server)


def main(argv: list[str]) -> int:
    env = os.environ.copy()
    env.pop("ISN_ENV", None)
    with contextlib.ExitStack() as stack:
        if not env.get("DATABASE_URL"):
            env["DATABASE_URL"] = stack.enter_context(throwaway_postgres())
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = stack.enter_context(throwaway_redis())
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="isn-test-data-"))
        env.setdefault("ISN_DATA_DIR", data_dir)
        command = argv or ["-m", "pytest"]
        return subprocess.call([sys.executable, *command], env=env)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
