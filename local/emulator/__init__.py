"""A local stand-in for Buildkite's Stacks API and the slice of the Agent API an agent needs.

Contract: docs/emulator-contract.md; behaviour and every choice: docs/emulator.md. It is
deliberately independent of `fargate_stack`, so it can judge the client it serves.
"""

from __future__ import annotations

from local.emulator.behaviour import Behaviour
from local.emulator.clock import VirtualClock
from local.emulator.server import Emulator, EmulatorConfig
from local.emulator.state import State

__all__ = ["Behaviour", "Emulator", "EmulatorConfig", "State", "VirtualClock"]
