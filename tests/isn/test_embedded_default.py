"""The development default needs no server: SQLite and a file-system broker, with a real Celery worker process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_real_worker_runs_a_task_on_sqlite_and_file_broker(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISN_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env["ISN_DATA_DIR"] = str(tmp_path)
    run = {"cwd": ROOT, "env": env, "capture_output": True, "text": True, "timeout": 120}
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], **run)
    assert migrate.returncode == 0, migrate.stderr

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "isn",
            "worker",
            "--pool",
            "solo",
            "--queues",
            "urgent,default",
            "--hostname",
            "smoke@isn",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        send = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from isn.tasks import worker_heartbeat; worker_heartbeat.delay()",
            ],
            **run,
        )
        assert send.returncode == 0, send.stderr
        # Not asserted that the message still waits in the file broker: the worker, already polling, may have taken
        # it by now (it did under load). The heartbeat below can only come through that broker.
        database = tmp_path / "isn.sqlite3"

        deadline = time.monotonic() + 60
        rows: list[tuple[str]] = []
        while time.monotonic() < deadline and not rows:
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else "worker exited"
            with sqlite3.connect(database) as connection:
                rows = connection.execute("SELECT hostname FROM isn_workerheartbeat").fetchall()
            time.sleep(0.25)
        assert rows == [("smoke@isn",)], "the worker process should have run the task and written its heartbeat"
    finally:
        worker.terminate()
        worker.wait(timeout=30)
