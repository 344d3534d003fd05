"""Rebuilding an aggregate's state from its stored events: the one fold every domain uses.

Stored events keep the schema version they were written with; a domain reasons only about the
newest classes. So replay upcasts each envelope (`contracts.upcasting.decode`) before the domain
sees it: the first v2 of an event then needs an upcaster, never a change to every replay.
Pure: no I/O, no clock.
"""

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from contracts.envelope import Envelope
from contracts.events.base import Event
from contracts.upcasting import decode

State = TypeVar("State")


def decoded(history: Iterable[Envelope]) -> Iterator[tuple[Envelope, Event]]:
    """Each stored envelope with its event, upcast to the newest registered class."""
    for envelope in history:
        yield envelope, decode(envelope)


def replay(
    history: Iterable[Envelope], evolve: Callable[[State | None, Event, Envelope], State | None]
) -> State | None:
    """Fold `evolve` over the stream's events, oldest first; None while no event created the state."""
    state: State | None = None
    for envelope, event in decoded(history):
        state = evolve(state, event, envelope)
    return state
