"""The shipped systemd unit: ``systemd-analyze verify`` and the properties the issue requires."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / "find-bot.service"
WEBSUB_UNIT = DEPLOY / "find-bot-websub.service"
WEB_UNIT = DEPLOY / "find-bot-web.service"


def _unit(path: Path = UNIT) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


def test_unit_has_notify_reload_restart_user_and_hardening() -> None:
    service = _unit()["Service"]
    assert service["Type"] == "notify"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["Restart"] == "on-failure"
    assert service["User"] == "find-bot"
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    assert service["PrivateTmp"] == "yes"
    assert "/var/lib/find-bot" in service["ReadWritePaths"]
    assert "--env-file /etc/find-bot/find-bot.env run" in service["ExecStart"]
    assert "EnvironmentFile" not in service, "SIGHUP could not re-read an EnvironmentFile"
    assert int(service["TimeoutStopSec"]) > 30, "must exceed the default FIND_SHUTDOWN_GRACE"
    assert "WatchdogSec" in service


@pytest.mark.parametrize(("source", "command"), [(WEBSUB_UNIT, "websub"), (WEB_UNIT, "web")])
def test_websub_unit_runs_the_receiver_with_the_same_user_settings_and_hardening(
    source: Path, command: str
) -> None:
    service, daemon = _unit(source)["Service"], _unit()["Service"]
    assert service["Type"] == "exec", "the receiver does not send sd_notify READY"
    assert "WatchdogSec" not in service and "ExecReload" not in service
    assert service["ExecStart"].endswith(f"--env-file /etc/find-bot/find-bot.env {command}")
    assert service["Restart"] == "on-failure"
    hardening = [key for key in daemon if key.startswith(("Protect", "Private", "Restrict"))]
    hardening += ["User", "NoNewPrivileges", "ReadWritePaths", "CapabilityBoundingSet", "UMask"]
    assert {k: service.get(k) for k in hardening} == {k: daemon[k] for k in hardening}


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (Debian/Ubuntu: apt-get install systemd)",
)
@pytest.mark.parametrize("source", [UNIT, WEBSUB_UNIT, WEB_UNIT], ids=lambda p: p.name)
def test_systemd_analyze_verify(tmp_path: Path, source: Path) -> None:
    """verify checks every key and that ExecStart exists: point it at this venv's find-bot."""
    find_bot = Path(sys.executable).parent / "find-bot"
    if not find_bot.exists():
        pytest.skip(f"{find_bot} not installed (pip install -e .)")
    unit = tmp_path / source.name
    unit.write_text(source.read_text().replace("/opt/find-bot/.venv/bin/find-bot", str(find_bot)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    problems = [line for line in output.splitlines() if str(unit) in line]
    assert problems == [], output
