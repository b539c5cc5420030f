"""docs/asterisk.md states what Asterisk shows for the shipped dialplan."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def inbound_priorities() -> int:
    """Priorities of the [ctgw-inbound] extension: its `exten =>` line and each `same =>`."""
    count, inside = 0, False
    for line in (ROOT / "dialplans" / "ctgw.conf").read_text().splitlines():
        if line.startswith("["):
            inside = line.startswith("[ctgw-inbound]")
        elif inside and re.match(r"\s*(exten|same)\s*=>", line):
            count += 1
    return count


def test_install_check_names_the_priorities_asterisk_shows() -> None:
    """The install check's priority count is the shipped [ctgw-inbound]'s (23 when written)."""
    doc = (ROOT / "docs" / "asterisk.md").read_text()
    stated = re.search(r"dialplan show ctgw-inbound'\s+# \S+ with (\d+) priorities", doc)
    assert stated is not None
    assert int(stated.group(1)) == inbound_priorities()
