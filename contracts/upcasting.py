"""Upcasters: turn the `data` of an old event version into the next version's `data`.

A breaking change to an event gets a new `schema_version` (see contracts.compat) and one
upcaster from the previous version, registered here next to the new class::

    @upcaster("UserVerified", from_version=1)
    def _user_verified_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "nationality": "CN"}

Consumers call `decode(envelope)`: whatever version was stored, they get an instance of the
newest registered class. Upcasters are pure functions of the data; they receive a copy.
"""

import copy
from collections.abc import Callable
from typing import Any

from contracts.envelope import Envelope
from contracts.events.base import Event, event_class, latest_version

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class UnknownEventError(LookupError):
    """No event class is registered for this event_type (or this schema_version)."""


class MissingUpcasterError(LookupError):
    """An old version cannot be brought up to date: an upcaster is missing."""


def register_upcaster(event_type: str, from_version: int, function: Upcaster) -> Upcaster:
    """Register `function` as the upcaster from `from_version` to `from_version + 1`."""
    key = (event_type, from_version)
    if key in _UPCASTERS and _UPCASTERS[key] is not function:
        raise ValueError(f"an upcaster for {event_type} v{from_version} is already registered")
    _UPCASTERS[key] = function
    return function


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Decorator form of `register_upcaster`."""

    def decorate(function: Upcaster) -> Upcaster:
        return register_upcaster(event_type, from_version, function)

    return decorate


def has_upcaster(event_type: str, from_version: int) -> bool:
    return (event_type, from_version) in _UPCASTERS


def upcast(envelope: Envelope) -> Envelope:
    """The same envelope with `data` and `schema_version` raised to the newest registered class.

    An envelope already at (or, from a newer producer, beyond) the newest known version is
    returned unchanged; `decode` then refuses a version it has no class for.
    """
    try:
        target = latest_version(envelope.event_type)
    except KeyError:
        raise UnknownEventError(f"unknown event type {envelope.event_type!r}") from None
    version = envelope.schema_version
    if version >= target:
        return envelope
    data = copy.deepcopy(envelope.data)
    while version < target:
        function = _UPCASTERS.get((envelope.event_type, version))
        if function is None:
            raise MissingUpcasterError(f"no upcaster for {envelope.event_type} from v{version} to v{version + 1}")
        data = function(data)
        version += 1
    return envelope.model_copy(update={"schema_version": version, "data": data})


def decode(envelope: Envelope) -> Event:
    """Upcast the envelope, then validate its data with the registered class of that version.

    Raises UnknownEventError, MissingUpcasterError or pydantic.ValidationError.
    """
    current = upcast(envelope)
    try:
        cls = event_class(current.event_type, current.schema_version)
    except KeyError:
        raise UnknownEventError(
            f"no class for {current.event_type} v{current.schema_version} (was it written by a newer producer?)"
        ) from None
    return cls.model_validate(current.data)
