"""A next schema version of an event, registered for one test and forgotten afterwards.

Replay must upcast every stored event (kernel.aggregate); the way to show that a domain does is to
register a v2 of one of its events with an upcaster whose effect is visible, replay a v1 history,
and look for the effect. The registries are module-level (contracts.events.base._REGISTRY,
contracts.upcasting._UPCASTERS), so the helper restores both on exit, whatever the test did.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from contracts.events import base
from contracts.upcasting import _UPCASTERS, Upcaster, register_upcaster

E = TypeVar("E", bound=base.Event)


@contextmanager
def registries_restored() -> Iterator[None]:
    """Whatever is registered inside (event classes, upcasters) is gone on exit."""
    events, upcasters = dict(base._REGISTRY), dict(_UPCASTERS)
    try:
        yield
    finally:
        base._REGISTRY.clear()
        base._REGISTRY.update(events)
        _UPCASTERS.clear()
        _UPCASTERS.update(upcasters)


@contextmanager
def next_version(event: type[E], upcast: Upcaster) -> Iterator[type[E]]:
    """A subclass of `event` one schema version newer, and `upcast` from the current version to it.

    The subclass keeps the fields (an upcaster may still change their values); `decode` then
    returns instances of it, which are instances of `event` too, so domain code runs unchanged.
    """
    with registries_restored():
        version = base.latest_version(event.event_type)
        newer = type(
            f"{event.__name__}V{version + 1}",
            (event,),
            {"event_type": event.event_type, "schema_version": version + 1, "__module__": __name__},
        )
        register_upcaster(event.event_type, version, upcast)
        yield newer
