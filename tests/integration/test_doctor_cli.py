"""`ctgw doctor` as operators run it, next to the real Asterisk: it logs in as the configured AMI
user and says what that user may do, in one line a finding, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.asterisk import C2C_AMI_USER, CTGW_AMI_SECRET, PROJECT, AsteriskLab

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(60)]


def doctor(tmp_path: Path, lab: AsteriskLab, user: str, secret: str, c2c: bool) -> str:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"""
[store]
url = "sqlite:///{tmp_path / "ctgw.db"}"
[ami]
enabled = true
port = {lab.ports.ami}
username = "{user}"
secret = "{secret}"
[asterisk]
config_dir = "{lab.outer / "etc"}"
[calls]
click_to_call = {"true" if c2c else "false"}
[[sites]]
key = "demo"
destination = "Local/sales@test-dest"
""",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "doctor", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=PROJECT,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_doctor_names_a_missing_originate_right_and_a_wrong_secret(
    tmp_path: Path, asterisk: AsteriskLab
) -> None:
    out = doctor(tmp_path, asterisk, "ctgw", CTGW_AMI_SECRET, c2c=True)
    assert "ami: ERROR ami_live_missing_right: AMI user 'ctgw'" in out
    assert "may not run Originate" in out
    out = doctor(tmp_path, asterisk, C2C_AMI_USER, CTGW_AMI_SECRET, c2c=False)
    assert f"ami: WARNING ami_live_unneeded_originate: AMI user '{C2C_AMI_USER}'" in out
    out = doctor(tmp_path, asterisk, "ctgw", "wrong-secret", c2c=False)
    assert "ami: ERROR ami_login_refused: AMI refused the login as 'ctgw'" in out
