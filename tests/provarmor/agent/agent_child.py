"""Runs an Agent with a FakeSensor until killed (used by test_runner's crash test)."""

import sys
import threading
from pathlib import Path

from provarmor.agent.runner import Agent
from provarmor.agent.settings import AgentSettings
from provarmor.testing.sensors import FakeSensor

state, out, first = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
sensor = FakeSensor(rate=4000, first=first)
Agent(
    AgentSettings(state_dir=state, batch_events=500, status_interval_seconds=0.2),
    out=out,
    start=lambda context: sensor,
).run(threading.Event(), duration=float(sys.argv[4]))
