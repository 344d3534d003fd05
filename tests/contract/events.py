"""Events for the contract cases: one published, one the service keeps to itself."""

from typing import ClassVar

from contracts.events.base import Event


class ContractPing(Event):
    public: ClassVar[bool] = True
    n: int


class ContractNote(Event):
    public: ClassVar[bool] = False
    n: int
