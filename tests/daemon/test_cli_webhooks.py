"""`ctgw webhooks` as an operator uses it: add (the secret printed once), list (never a
secret), internal hosts refused with the reason, deliveries listed, retried, replayed, deleted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.daemon.test_cli_users import ctgw
from tests.daemon.test_restart import free_port, write_config

pytestmark = pytest.mark.timeout(120)


def test_webhooks_are_added_listed_and_deleted(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())
    added = ctgw(
        config, "webhooks", "add", "demo", "http://93.184.215.14/hook", "--event", "call.started"
    )
    assert added.returncode == 0, added.stderr
    webhook_id, secret = added.stdout.split()
    assert webhook_id.startswith("wh_") and secret.startswith("whsec_")
    assert "shown only this once" in added.stderr
    listed = ctgw(config, "webhooks", "list")
    assert (
        listed.returncode == 0 and webhook_id in listed.stdout and "call.started" in listed.stdout
    )
    assert secret not in listed.stdout
    with sqlite3.connect(tmp_path / "ctgw.db") as db:
        db.execute(
            "INSERT INTO outbox (topic, payload, created_at, next_attempt_at, delivered_at)"
            " VALUES ('call.started', '{}', 'x', 'x', 'x')"
        )
        db.execute(
            "INSERT INTO webhook_deliveries (event_id, endpoint_id, order_key, state, attempts,"
            " due_at, since, last_error) VALUES (1, ?, 'c1', 'parked', 9, 'x', 'x', 'HTTP 500')",
            (webhook_id,),
        )
    parked = ctgw(config, "webhooks", "deliveries", "--state", "parked")
    assert parked.returncode == 0 and "HTTP 500" in parked.stdout
    assert ctgw(config, "webhooks", "retry", "1").returncode == 0
    assert "failed" in ctgw(config, "webhooks", "deliveries", "--state", "failed").stdout
    assert ctgw(config, "webhooks", "retry", "999").returncode == 2
    replay = ctgw(config, "webhooks", "replay", webhook_id)
    assert replay.returncode == 0 and "0 parked" in replay.stderr
    assert ctgw(config, "webhooks", "delete", webhook_id).returncode == 0
    assert webhook_id not in ctgw(config, "webhooks", "list").stdout


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/hook", "http://localhost/hook", "http://169.254.169.254/latest"]
)
def test_internal_hosts_are_refused_with_the_reason(tmp_path: Path, url: str) -> None:
    config = write_config(tmp_path, free_port())
    refused = ctgw(config, "webhooks", "add", "demo", url)
    assert refused.returncode == 2
    assert "refused" in refused.stderr and "allow_private_networks" in refused.stderr
    assert "Traceback" not in refused.stderr
