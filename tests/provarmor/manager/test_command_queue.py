"""What becomes of a queued command in cluster mode, with a real nats-server: a command the
bus does not take (the bus is down) stays queued, audited "not sent on the bus" and
counted; the next sweep (any read of the actions, an agent's status) sends it once the bus
is back, and the agent's consumer gets it. Expiry and the result time-out are tested
through the API in routes/test_commands.py."""

import asyncio

import pytest

from provarmor.bus.command_channel import CommandInbox
from provarmor.manager.auth import Role
from provarmor.testing.nats import started

HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"


@pytest.fixture
def bus(tmp_path):
    server = started(tmp_path / "nats")
    yield server
    server.stop()


def waiting_for(url: str, agent: str) -> list[str]:
    async def run() -> list[str]:
        inbox = CommandInbox(url, agent)
        try:
            found = await inbox.fetch(wait_s=3.0)
            for message in found:
                await message.ack()
            return [message.headers["Provarmor-Command"] for message in found]
        finally:
            await inbox.close()

    return asyncio.run(run())


def test_a_command_the_bus_did_not_take_is_sent_when_it_is_back(make_manager, tmp_path, bus):
    manager = make_manager(tmp_path / "m", bus_url=bus.url)
    publisher = manager.client.app.state.context.bus_commands.publisher
    publisher.connect_timeout_s = publisher.timeout_s = 2.0  # each try on the stopped bus
    agent, _ = manager.enroll(host_id=HOST)
    analyst = manager.token(Role.ANALYST)
    headers = manager.headers(analyst)
    proposed = manager.client.post(
        "/api/v1/actions",
        json={"kind": "quarantine", "target": {"type": "file", "path": "/tmp/x"}, "host_id": HOST},
        headers=headers,
    ).json()
    bus.stop()
    answer = manager.client.post(
        f"/api/v1/actions/{proposed['id']}/execute", json={}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    view = manager.get(f"/actions/{proposed['id']}", analyst).json()
    assert view["state"] == "queued"
    failed = [entry for entry in view["audit"] if entry["step"] == "not sent on the bus"]
    assert failed and "sent again when the bus answers" in failed[0]["message"]
    assert (
        'provarmor_manager_commands_total{event="send_failed"}'
        in manager.client.get("/metrics").text
    )
    bus.start()
    view = manager.get(f"/actions/{proposed['id']}", analyst).json()  # a read sweeps
    steps = [entry["step"] for entry in view["audit"]]
    assert steps[-1] == "sent on the bus", steps
    assert waiting_for(bus.url, agent) == [proposed["id"]]
    again = manager.get(f"/actions/{proposed['id']}", analyst).json()
    assert [entry["step"] for entry in again["audit"]].count("sent on the bus") == 1
