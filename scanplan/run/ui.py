"""What the guided run tells the crew and asks them: the :class:`RunUI` protocol (the CLI
implements it with rich output and prompts) and :class:`QuietUI` (unattended, ``--yes``)."""

from __future__ import annotations

from typing import Protocol

from hw_interfaces.clock import SYSTEM_CLOCK, Clock

from ..check.verdict import SettlePoll, Verdict
from ..records import Point


class RunUI(Protocol):
    """What the guided run tells the crew and asks them (CLI: rich output and prompts)."""

    def info(self, message: str) -> None: ...

    def confirm(self, prompt: str) -> bool: ...

    def show_point(self, point: Point, steps: list[dict[str, float]], writes: bool) -> None: ...

    def verdict(self, verdict: Verdict, attempt: int) -> None: ...

    def on_poll(self, poll: SettlePoll) -> None: ...

    def wait(self, seconds: float, message: str) -> None: ...


class QuietUI:
    """Non-interactive UI: confirms everything (``--yes``), logs messages to a list."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.messages: list[str] = []
        self.clock = clock

    def info(self, message: str) -> None:
        self.messages.append(message)

    def confirm(self, prompt: str) -> bool:
        self.messages.append(prompt + " [yes]")
        return True

    def show_point(self, point: Point, steps: list[dict[str, float]], writes: bool) -> None:
        self.messages.append(f"point {point.period}: {steps[-1]}")

    def verdict(self, verdict: Verdict, attempt: int) -> None:
        self.messages.append(f"point {verdict.period} check {attempt}: {verdict.level}")

    def on_poll(self, poll: SettlePoll) -> None:
        pass

    def wait(self, seconds: float, message: str) -> None:
        if seconds > 0:
            self.clock.sleep(seconds)
