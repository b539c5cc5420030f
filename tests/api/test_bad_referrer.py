"""A session whose stored referrer Python cannot split still has its calls routed and recorded."""

from __future__ import annotations

from gateway.appkeys import AGI, DB
from tests.api.conftest import open_session
from tests.api.test_call_routing import call_env, routed
from tests.unit.test_agi import fake_asterisk


async def test_a_call_on_a_number_whose_session_has_a_broken_referrer_is_routed(
    client, admin_key
) -> None:
    """A stored referrer like http://[bad gives the call a route, a record and a source."""
    session = await (await open_session(client)).json()
    db = client.app[DB]
    # As stored before the edge refused such referrers (and by any other writer of the row).
    db._writer.execute(
        "UPDATE sessions SET referrer = 'http://[bad' WHERE session_id = ?",
        (session["session_id"],),
    )
    number = session["numbers"][0]["number"]
    variables = routed(await fake_asterisk(client.app[AGI], call_env(number)))
    assert variables["CTGW_ROUTE"] == "PJSIP/agent1"
    call = await (
        await client.get(
            f"/v1/calls/{variables['CTGW_CALL_ID']}",
            headers={"Authorization": f"Bearer {admin_key}"},
        )
    ).json()
    attribution = call["attribution"]
    assert attribution["session_id"] == session["session_id"]
    assert attribution["referrer"] == "http://[bad"
    assert attribution["source"] == "bad" and attribution["medium"] == "referral"
