"""The [crm] config section: defaults, the file's values, overrides, and its mistakes refused."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config, parse_config
from numberpool.crm import DEFAULT_DISPOSITIONS, Disposition

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]


def test_the_defaults_and_the_example_file_agree() -> None:
    default = parse_config({}).crm.rules()
    assert default.contacted_talk_seconds == 30.0
    assert default.followup_delay == timedelta(minutes=60)
    assert default.dispositions == DEFAULT_DISPOSITIONS
    assert load_config(ROOT / "conf" / "gateway.toml", environ={}).crm.rules() == default


def test_the_section_is_read_and_overridden_from_the_environment() -> None:
    raw = {
        "crm": {
            "contacted_talk_seconds": 45,
            "dispositions": [{"name": "sold", "status": "customer", "closes_tasks": True}],
        }
    }
    rules = parse_config(raw, environ={"CTGW_CRM_FOLLOWUP_DELAY_MINUTES": "15"}).crm.rules()
    assert rules.contacted_talk_seconds == 45.0
    assert rules.followup_delay == timedelta(minutes=15)
    assert rules.dispositions == (Disposition("sold", "customer", closes_tasks=True),)


@pytest.mark.parametrize(
    ("crm", "message"),
    [
        ({"talk": 3}, "unknown key 'crm.talk'"),
        ({"contacted_talk_seconds": -1}, "must not be negative"),
        ({"followup_delay_minutes": "1h"}, "must be an integer"),
        ({"dispositions": [{"status": "lost"}]}, "'crm.dispositions[0].name' is required"),
        ({"dispositions": [{"name": "x", "colour": "red"}]}, "unknown key"),
        ({"dispositions": [{"name": "x", "status": "won"}]}, "'crm.dispositions[0].status'"),
        ({"dispositions": [{"name": "x"}, {"name": "x"}]}, "listed twice"),
        ({"dispositions": [{"name": ""}]}, "1-40 printable characters"),
        ({"dispositions": [{"name": "x", "spam": "yes"}]}, "must be true or false"),
    ],
)
def test_mistakes_are_refused_with_the_key(crm: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config({"crm": crm})
