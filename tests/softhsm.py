"""SoftHSM2, a real PKCS#11 module, for the master key's tests: a token initialised in a folder of the test's own.

SoftHSM reads its configuration (``SOFTHSM2_CONF``) when the module is first initialised in a process, so the
in-process tests share one token made for the session (``softhsm`` below), each test under key labels of its own;
tests that start ISN in a subprocess make their own token. Without SoftHSM2 these tests fail: they are not skipped
(``.ci/run`` installs Debian's ``softhsm2``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULE_PATHS = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
PIN = "4711-isn-user"
SO_PIN = "4711-isn-officer"


@dataclass(frozen=True)
class Token:
    module: str
    label: str
    pin: str
    conf: Path


def softhsm_module() -> str:
    util = shutil.which("softhsm2-util")
    module = next((path for path in MODULE_PATHS if Path(path).is_file()), None)
    if util is None or module is None:
        pytest.fail(
            "SoftHSM2 is not installed (softhsm2-util and libsofthsm2.so): `apt-get install softhsm2`; "
            ".ci/run installs it. The master key's PKCS#11 tests need a real module and are never skipped."
        )
    return module


def softhsm_token(folder: Path, label: str = "isn-test") -> Token:
    """A fresh SoftHSM token labelled ``label`` whose store and configuration live in ``folder``."""
    module = softhsm_module()
    tokens = folder / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        check=True,
        capture_output=True,
        timeout=60,
    )
    return Token(module=module, label=label, pin=PIN, conf=conf)


_process_token: list[Token] = []


@pytest.fixture
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Token:
    """This process's token, made once (its PKCS#11 library is initialised with that configuration only)."""
    if not _process_token:
        token = softhsm_token(tmp_path_factory.mktemp("softhsm"))
        os.environ["SOFTHSM2_CONF"] = str(token.conf)
        _process_token.append(token)
    return _process_token[0]
