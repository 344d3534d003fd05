"""Throwaway events for kernel tests (registered like real ones, never published as contracts)."""

from typing import ClassVar

from contracts.events.base import Event


class KernelPing(Event):
    event_type: ClassVar[str] = "KernelPing"
    public: ClassVar[bool] = True
    n: int
