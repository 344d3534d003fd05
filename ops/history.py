"""`flexctl history APPLICATION_ID`: one application's history across services, from the topics.

Two passes over the five event topics (from the beginning, no consumer group):
1. the events that name the application: they give its applicant, its review cases, its text
   messages, its contribution account and their own event ids;
2. the events that name one of those and no other application: the applicant's identity
   events, the cases' and messages' events, messages caused by one of the application's
   events (older SmsSent name only the person), the account's bills and payments.
Raw messages are searched for the ids before being parsed, so a pass keeps little in memory.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from uuid import UUID

from contracts.envelope import Envelope
from contracts.topics import EVENT_TOPICS
from kernel.kafka import KafkaAccess
from kernel.logging import mask_text
from ops.kafka_ops import replay

PERSON_KEYS = ("applicant_id", "user_id", "insured_person_id", "recipient_id")


@dataclass(frozen=True)
class Entry:
    topic: str
    envelope: Envelope

    def sort_key(self) -> tuple[Any, ...]:
        e = self.envelope
        return (e.occurred_at, e.stream_id, e.stream_version, str(e.event_id))


@dataclass
class Related:
    """What pass 1 learnt about the application."""

    application_id: str
    people: set[str]
    cases: set[str]
    sms: set[str]
    accounts: set[str]
    causes: set[str]  # event ids of the application's own events

    @classmethod
    def of(cls, application_id: UUID, entries: Iterable[Entry]) -> "Related":
        related = cls(str(application_id), set(), set(), set(), set(), set())
        for entry in entries:
            data = entry.envelope.data
            related.people.update(str(data[k]) for k in PERSON_KEYS if data.get(k))
            related.cases.update(str(data[k]) for k in ("case_id",) if data.get(k))
            related.sms.update(str(data[k]) for k in ("sms_id",) if data.get(k))
            related.accounts.update(str(data[k]) for k in ("account_id",) if data.get(k))
            related.causes.add(str(entry.envelope.event_id))
        return related

    def ids(self) -> set[str]:
        return {self.application_id, *self.people, *self.cases, *self.sms, *self.accounts, *self.causes}

    def includes(self, envelope: Envelope) -> bool:
        data = envelope.data
        named = data.get("application_id")
        if named:
            return str(named) == self.application_id
        return (
            str(data.get("case_id")) in self.cases
            or str(data.get("sms_id")) in self.sms
            or str(data.get("account_id")) in self.accounts
            or str(data.get("causation_event_id")) in self.causes
            or any(str(data.get(k)) in self.people for k in PERSON_KEYS)
        )


async def application_history(
    access: KafkaAccess,
    application_id: UUID,
    on_total: Callable[[int], None] = lambda _: None,
    on_progress: Callable[[int], None] = lambda _: None,
    topic_prefix: str = "",
) -> list[Entry]:
    """Every event of the application and of what it involves, once each, in time order."""
    wanted = str(application_id)
    topics = [topic_prefix + t for t in EVENT_TOPICS]
    own = await _scan(
        access, topics, {wanted}, lambda e: str(e.data.get("application_id")) == wanted, on_total, on_progress
    )
    if not own:
        return []
    related = Related.of(application_id, own)
    found = await _scan(access, topics, related.ids(), related.includes, on_total, on_progress)
    unique = {e.envelope.event_id: e for e in [*own, *found]}
    return sorted(unique.values(), key=Entry.sort_key)


async def _scan(
    access: KafkaAccess,
    topics: list[str],
    needles: set[str],
    keep: Callable[[Envelope], bool],
    on_total: Callable[[int], None],
    on_progress: Callable[[int], None],
) -> list[Entry]:
    pattern = re.compile(b"|".join(re.escape(n.encode()) for n in sorted(needles)))
    entries: list[Entry] = []
    async with replay(access, topics) as source:
        on_total(source.total)
        async for records in source.batches():
            for record in records:
                if record.value and pattern.search(record.value):
                    try:
                        envelope = Envelope.from_json(record.value)
                    except ValueError:
                        continue
                    if keep(envelope):
                        entries.append(Entry(record.topic, envelope))
            on_progress(len(records))
    return entries


# --- what an operator reads -------------------------------------------------------------------


def when(entry: Entry) -> str:
    return entry.envelope.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def summary(envelope: Envelope) -> str:
    """A short masked line: decision and reasons, tiers, template, document kind, ..."""
    d = envelope.data
    parts: list[str] = []
    if "attempt" in d:
        parts.append(f"attempt {d['attempt']}")
    if "decision" in d:
        parts.append(str(d["decision"]))
    if d.get("reasons"):
        parts.append("reasons " + ", ".join(str(r.get("code", r)) for r in d["reasons"]))
    if "pension_tier" in d or "medical_tier" in d:
        parts.append(f"tiers pension {_tier(d.get('pension_tier'))} medical {_tier(d.get('medical_tier'))}")
    simple = (
        ("role", "role"), ("phone", "phone"), ("id_number_masked", "id"), ("provider", "via"),
        ("notice_version", "notice"), ("kind", "document"), ("household_kind", "household"),
        ("agency_code", "agency"), ("due_on", "due"), ("template", "template"), ("phone_masked", "to"),
        ("error_code", "error"), ("period", "period"), ("channel", "channel"), ("amount_fen", "fen"),
    )  # fmt: skip
    parts.extend(f"{label} {d[key]}" for key, label in simple if d.get(key) is not None)
    if isinstance(d.get("documents"), list):
        parts.append(f"{len(d['documents'])} documents")
    return mask_text("; ".join(parts))


def _tier(value: object) -> str:
    return "-" if value is None else str(value)


def json_line(envelope: Envelope) -> str:
    return mask_text(envelope.model_dump_json())
