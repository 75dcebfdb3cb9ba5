"""Every interactive prompt of the CLI, answered with Ctrl-D on a real terminal (issue 30 item 5).

Ctrl-D on an empty line ends the input: the prompt reads end-of-file.  That is an
answer ("no", "nothing given"): one clear line on stderr, a non-zero exit and
nothing changed, never an ``EOFError`` traceback.  The command runs as a real
process on a pseudo-terminal (its controlling terminal, so ``getpass`` reads
from it as at a shell).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from bot.db import current_revision, dispose_engines, head_revision, upgrade
from bot.settings import load_settings
from tests.daemon.helpers import clean_env


def _ctrl_d_at_prompt(argv: list[str], prompt: str, env: dict[str, str], cwd: Path) -> str:
    """Run ``find-bot ARGV`` on a pseudo-terminal, press Ctrl-D once ``prompt`` shows;
    return everything it wrote, then its exit status after a ``|``."""
    master, slave = pty.openpty()

    def controlling_terminal() -> None:  # runs in the child, after setsid
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *argv],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    output = b""
    sent = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal (it exited)
                    break
                if not chunk:
                    break
                output += chunk
            if not sent and prompt.encode() in output:
                time.sleep(0.2)  # let it reach the read (the prompt is written first)
                os.write(master, b"\x04")  # Ctrl-D on an empty line: end of input
                sent = True
            if proc.poll() is not None and not ready:
                break
        assert sent, f"no {prompt!r} prompt: {output.decode(errors='replace')}"
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return f"{output.decode(errors='replace')}|{code}"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return clean_env(FIND_DATA_DIR=str(tmp_path / "data"), FIND_LOG_LEVEL="WARNING")


def test_ctrl_d_at_the_downgrade_prompt_is_no(env: dict[str, str], tmp_path: Path) -> None:
    settings = load_settings(environ={"FIND_DATA_DIR": env["FIND_DATA_DIR"]})
    upgrade(settings)
    dispose_engines()
    output, code = _ctrl_d_at_prompt(
        ["db", "downgrade", "base"], "Type 'yes' to downgrade", env, tmp_path
    ).rsplit("|", 1)
    assert "Traceback" not in output and "EOFError" not in output, output
    assert int(code) == 2
    [error] = [line for line in output.splitlines() if "error" in line]
    assert error.strip() == "find-bot: error: downgrade cancelled: nothing changed"
    assert current_revision(settings) == head_revision()  # nothing was dropped
    dispose_engines()


def test_ctrl_d_at_the_password_prompt_adds_nobody(env: dict[str, str], tmp_path: Path) -> None:
    output, code = _ctrl_d_at_prompt(
        ["reviewers", "add", "alice"], "password for alice:", env, tmp_path
    ).rsplit("|", 1)
    assert "Traceback" not in output and "EOFError" not in output, output
    assert int(code) == 2
    [error] = [line for line in output.splitlines() if "error" in line]
    assert error.strip() == (
        "find-bot: error: no password given (input ended); nothing was changed"
    )
    assert not (tmp_path / "data" / "find.db").exists()  # asked before the database opened
