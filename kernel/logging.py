"""JSON logs through structlog, with personal data masked wherever it appears (docs/downstream.md: "The envelope")."""

import logging
import re
import sys
import time
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog

from contracts.events.base import mask_id_number, mask_phone

# An 18-character resident ID number (GB 11643) or a 15-digit old one; a mainland mobile
# number, with or without +86. Masked in every string a log line carries, keys included.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_OLD_ID_NUMBER = re.compile(r"(?<!\d)\d{15}(?!\d)")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86)?1[3-9]\d{9}(?!\d)")


def mask_text(text: str) -> str:
    """Every ID or mobile number in `text`, in the masked forms events use (contracts.events.base)."""
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m[0]), text)
    text = _OLD_ID_NUMBER.sub(lambda m: mask_id_number(m[0]), text)
    return _MOBILE.sub(lambda m: mask_phone(m[0]), text)


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_mask(v) for v in value]
    return value


def mask_personal_data(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the last line of defence, whatever a caller put in the log."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _mask(value)
    return event_dict


def configure_logging(service: str, level: str = "INFO", json: bool = True, stream: TextIO | None = None) -> None:
    """`stream`: where lines go (default stdout; a command whose stdout is its answer logs to stderr)."""
    out = stream or sys.stdout
    renderer: Any = structlog.processors.JSONRenderer(ensure_ascii=False) if json else structlog.dev.ConsoleRenderer()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        mask_personal_data,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries (uvicorn, aiokafka) log through stdlib logging: route them through the same
    # masking and rendering so one process writes one format.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                mask_personal_data,
                renderer,
            ],
        )
    )
    # A broker outage makes aiokafka repeat "Unable connect to node …" thousands of times a minute:
    # one line per kind of message per REPEAT_WINDOW_SECONDS, with how many were left out.
    handler.addFilter(RepeatFilter(REPEAT_WINDOW_SECONDS, prefixes=("aiokafka",)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").setLevel(level.upper())


REPEAT_WINDOW_SECONDS = 30.0


class RepeatFilter(logging.Filter):
    """Lets the first record of a kind (logger, level, message template) through per `window`
    seconds and drops its repeats; the next one let through says how many were dropped
    (`repeats_dropped`). Only for loggers under `prefixes`: our own lines are never dropped."""

    def __init__(self, window: float, prefixes: tuple[str, ...], clock: Any = time.monotonic) -> None:
        super().__init__()
        self.window, self.prefixes, self.clock = window, prefixes, clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        first, dropped = self._seen.get(kind, (None, 0))
        if first is not None and now - first < self.window:
            self._seen[kind] = (first, dropped + 1)
            return False
        if len(self._seen) > 1000:  # kinds come from a few templates; never grow without bound
            self._seen.clear()
        self._seen[kind] = (now, 0)
        if dropped:
            record.msg = f"{record.msg} (and {dropped} more like it in the last {self.window:g} s)"
        return True


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
