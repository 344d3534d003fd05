"""Base of every event model, public or not, and the registry that maps names to classes."""

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

_REGISTRY: dict[tuple[str, int], type["Event"]] = {}


class Event(BaseModel):
    """The `data` of an envelope. Subclasses name themselves and their schema version.

    `public` events are contracts: their JSON Schema is committed under contracts/schemas and a
    test refuses changes that would break a consumer.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    public: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "event_type" not in cls.__dict__:
            cls.event_type = cls.__name__
        key = (cls.event_type, cls.schema_version)
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise TypeError(f"event {key} is defined twice")
        _REGISTRY[key] = cls

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def event_class(event_type: str, schema_version: int) -> type[Event]:
    return _REGISTRY[(event_type, schema_version)]


def registered_events() -> list[type[Event]]:
    return sorted(_REGISTRY.values(), key=lambda c: (c.event_type, c.schema_version))
