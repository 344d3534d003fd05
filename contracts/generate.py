"""Write the committed contract files that downstream teams read.

    python -m contracts.generate            # (re)write schemas/*.json and asyncapi.json
    python -m contracts.generate --check    # exit 1 if a committed file is stale or missing
    python -m contracts.generate --force    # overwrite even an incompatible schema (unpublished)

Files, relative to the contracts package:

* `schemas/<EventType>.v<N>.json`: JSON Schema (2020-12) of the `data` of every public event.
  Files of older versions stay: they document events still stored in the topics.
* `schemas/envelope.json`: the envelope all messages share.
* `asyncapi.json`: AsyncAPI 3.0.0, one channel per event topic, one message per event.

An existing schema file of the same version is only overwritten when the change is compatible
(contracts.compat); otherwise nothing is written and the developer is told to bump
`schema_version` and add an upcaster.
"""

import argparse
import copy
import json
import os
import re
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contracts import topics
from contracts.compat import breaking_changes
from contracts.envelope import Envelope
from contracts.events import EVENTS_BY_TOPIC, PUBLIC_EVENTS, Event, topic_of
from contracts.upcasting import has_upcaster

CONTRACTS_DIR = Path(__file__).resolve().parent
SCHEMAS = "schemas"
ENVELOPE_FILE = f"{SCHEMAS}/envelope.json"
ASYNCAPI_FILE = "asyncapi.json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
CONTRACT_VERSION = "1.0.0"
"""info.version of the AsyncAPI document; each message also carries its own schema_version."""

_SCHEMA_FILE = re.compile(r"^(?P<type>[A-Za-z0-9_]+)\.v(?P<version>[0-9]+)\.json$")
_EXAMPLE_NAMESPACE = uuid.UUID("5a0f7c1e-8d43-4c8b-9d3e-6f1f2b7a9c40")

_CONSUMER_RULES = """\
Every message value is one JSON envelope; its `data` follows the schema of
(`event_type`, `schema_version`). The key is the envelope's `stream_id` (the aggregate id),
so the events of one aggregate arrive in order. Topics keep their data forever.

Rules for consumers (the compatibility promise assumes them):
- deduplicate on `event_id`: delivery is at least once;
- ignore fields you do not know: new optional fields appear without a version change;
- treat an enum value you do not know as "other": enums grow without a version change;
- expect older `schema_version`s in the history; the Python package upcasts them
  (`contracts.upcasting.decode`).
A breaking change always gets a new `schema_version`.
Personal data: phone numbers, names and birth dates travel only sealed, in `personal` objects
(AES-256-GCM under the person's own key, docs/personal-data.md); they are opaque to downstream
readers. Older versions (v1) carried them in clear: never log those unmasked, and on
`PersonErased` delete what you keep about that person."""


def schema_path(cls: type[Event]) -> str:
    return f"{SCHEMAS}/{cls.event_type}.v{cls.schema_version}.json"


def render(document: Any) -> str:
    """The committed form: pretty, sorted keys, UTF-8 text, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def event_schema(cls: type[Event]) -> dict[str, Any]:
    schema = cls.model_json_schema()
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["x-event-type"] = cls.event_type
    schema["x-schema-version"] = cls.schema_version
    schema["x-topic"] = topic_of(cls)
    return schema


def envelope_schema() -> dict[str, Any]:
    schema = Envelope.model_json_schema()
    schema["$schema"] = JSON_SCHEMA_DIALECT
    return schema


def _component_key(cls: type[Event]) -> str:
    return f"{cls.event_type}.v{cls.schema_version}"


def _channel_key(topic: str) -> str:
    service = topic.removesuffix(".events")
    return f"{service}Events"


def _hoist_defs(schema: dict[str, Any], prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Move `$defs` out of a schema into AsyncAPI components, rewriting the `$ref`s."""
    schema = copy.deepcopy(schema)
    defs: dict[str, Any] = schema.pop("$defs", {})
    schema.pop("$schema", None)

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {key: rewrite(value) for key, value in node.items()}
            ref = out.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                out["$ref"] = f"#/components/schemas/{prefix}.{ref.removeprefix('#/$defs/')}"
            return out
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    hoisted = {f"{prefix}.{name}": rewrite(value) for name, value in defs.items()}
    return rewrite(schema), hoisted


def _example_message(cls: type[Event]) -> dict[str, Any] | None:
    examples = cls.model_json_schema().get("examples")
    if not examples:
        return None
    data = examples[0]
    event = cls.model_validate(data)
    key = _component_key(cls)
    stream_id = str(data[next(iter(cls.model_fields))])
    envelope = Envelope.wrap(
        event,
        stream_id=stream_id,
        stream_version=1,
        producer=topic_of(cls).removesuffix(".events"),
        correlation_id=str(data.get("application_id", stream_id)),
        event_id=uuid.uuid5(_EXAMPLE_NAMESPACE, key),
        occurred_at=datetime(2025, 3, 3, 2, 0, tzinfo=UTC),
    )
    return {
        "name": f"{cls.event_type} example",
        "headers": {"event_type": cls.event_type, "correlation_id": envelope.correlation_id},
        "payload": json.loads(envelope.to_json()),
    }


def asyncapi_document() -> dict[str, Any]:
    envelope = envelope_schema()
    envelope.pop("$schema", None)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Envelope": envelope}
    for topic in topics.EVENT_TOPICS:
        channel_key = _channel_key(topic)
        service = topic.removesuffix(".events")
        channel_messages: dict[str, Any] = {}
        for cls in EVENTS_BY_TOPIC.get(topic, ()):
            if not cls.public:
                continue
            key = _component_key(cls)
            data_schema, hoisted = _hoist_defs(event_schema(cls), key)
            schemas[key] = data_schema
            schemas.update(hoisted)
            payload = copy.deepcopy(envelope)
            payload["title"] = f"{cls.event_type} envelope"
            payload["description"] = data_schema.get("description", "")
            properties = payload["properties"]
            properties["event_type"] = {**properties["event_type"], "const": cls.event_type}
            properties["schema_version"] = {
                **properties["schema_version"],
                "const": cls.schema_version,
            }
            properties["data"] = {"$ref": f"#/components/schemas/{key}"}
            message: dict[str, Any] = {
                "name": cls.event_type,
                "title": f"{cls.event_type} v{cls.schema_version}",
                "summary": (data_schema.get("description") or cls.event_type).split("\n")[0],
                "contentType": "application/json",
                "headers": {
                    "type": "object",
                    "properties": {
                        "event_type": {"type": "string", "const": cls.event_type},
                        "correlation_id": {
                            "type": "string",
                            "description": "Same as the envelope's correlation_id.",
                        },
                    },
                    "required": ["event_type", "correlation_id"],
                },
                "correlationId": {
                    "description": "Id shared by every event of one business flow.",
                    "location": "$message.header#/correlation_id",
                },
                "payload": payload,
                "bindings": {
                    "kafka": {
                        "key": {
                            "type": "string",
                            "description": "The envelope's stream_id (the aggregate id).",
                        },
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
            }
            example = _example_message(cls)
            if example is not None:
                message["examples"] = [example]
            messages[key] = message
            channel_messages[key] = {"$ref": f"#/components/messages/{key}"}
        channels[channel_key] = {
            "address": topic,
            "title": topic,
            "description": f"Events of the {service} service. Key: stream_id. Kept forever.",
            "messages": channel_messages,
            "bindings": {
                "kafka": {
                    "topic": topic,
                    "topicConfiguration": {"cleanup.policy": ["delete"], "retention.ms": -1},
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
        operations[f"publish{service.capitalize()}Events"] = {
            "action": "send",
            "title": f"{service} publishes its events",
            "channel": {"$ref": f"#/channels/{channel_key}"},
            "messages": [{"$ref": f"#/channels/{channel_key}/messages/{key}"} for key in channel_messages],
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:flexenroll:events",
        "info": {
            "title": "flexenroll events",
            "version": CONTRACT_VERSION,
            "description": _CONSUMER_RULES,
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "The development broker started by `make up`.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def expected_files() -> dict[str, str]:
    """Every generated file: path relative to the contracts package -> its text."""
    files = {schema_path(cls): render(event_schema(cls)) for cls in PUBLIC_EVENTS}
    files[ENVELOPE_FILE] = render(envelope_schema())
    files[ASYNCAPI_FILE] = render(asyncapi_document())
    return files


def _display(root: Path, relative: str) -> str:
    path = root / relative
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)


def history_problems(root: Path = CONTRACTS_DIR) -> list[str]:
    """Committed schemas of the past that the current code no longer honours.

    * an older version (v1 while the class is at v2) needs an upcaster chain to the current one;
    * a committed version newer than the class, or an event type without a class at all, means a
      public event was removed or downgraded: that breaks its consumers.
    """
    problems: list[str] = []
    current = {cls.event_type: cls.schema_version for cls in PUBLIC_EVENTS}
    directory = root / SCHEMAS
    if not directory.is_dir():
        return problems
    for path in sorted(directory.glob("*.json")):
        match = _SCHEMA_FILE.match(path.name)
        if match is None:
            continue
        name, committed = match["type"], int(match["version"])
        if name not in current or committed > current[name]:
            problems.append(
                f"removed: {_display(root, f'{SCHEMAS}/{path.name}')} has no event class any more "
                "(removing a public event breaks its consumers)"
            )
            continue
        for version in range(committed, current[name]):
            if not has_upcaster(name, version):
                problems.append(
                    f"no upcaster: {name} v{version} -> v{version + 1} "
                    "(stored events of the old version could not be decoded)"
                )
    return sorted(set(problems))


def check(root: Path = CONTRACTS_DIR) -> list[str]:
    """What `--check` reports: missing or stale generated files, and `history_problems`."""
    problems: list[str] = []
    for relative, text in expected_files().items():
        path = root / relative
        if not path.is_file():
            problems.append(f"missing: {_display(root, relative)}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"stale: {_display(root, relative)}")
    return problems + history_problems(root)


@dataclass
class Outcome:
    written: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    """Explanation of the breaking changes; when not empty nothing was written."""


def _refusal(root: Path, relative: str, old_text: str, new_text: str) -> list[str]:
    try:
        old = json.loads(old_text)
    except json.JSONDecodeError:
        return []  # a damaged file is simply replaced
    breaks = breaking_changes(old, json.loads(new_text))
    if not breaks:
        return []
    lines = [f"{_display(root, relative)} would change incompatibly:"]
    lines += [f"  - {line}" for line in breaks]
    match = _SCHEMA_FILE.match(Path(relative).name)
    if match is not None:
        version = int(match["version"])
        lines.append(
            f"  Bump `schema_version` of {match['type']} to {version + 1} and register an "
            f"upcaster from v{version} (contracts.upcasting.upcaster), or make the change "
            "compatible. Use --force only if this version was never published."
        )
    else:
        lines.append(
            "  Every event shares the envelope: make the change compatible. Use --force only if it was never published."
        )
    return lines


def generate(root: Path = CONTRACTS_DIR, *, force: bool = False) -> Outcome:
    """Write every generated file under `root`, refusing incompatible schema overwrites."""
    files = expected_files()
    outcome = Outcome()
    changed: dict[Path, str] = {}
    for relative, text in files.items():
        path = root / relative
        old_text = path.read_text(encoding="utf-8") if path.is_file() else None
        if old_text == text:
            continue
        if old_text is not None and relative.startswith(f"{SCHEMAS}/") and not force:
            outcome.refused += _refusal(root, relative, old_text, text)
        changed[path] = text
    if outcome.refused:
        return outcome
    for path, text in changed.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        outcome.written.append(_display(root, str(path.relative_to(root))))
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m contracts.generate",
        description="Write (or check) the JSON Schemas and the AsyncAPI document of the events.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if a file is stale or missing; write nothing")
    mode.add_argument("--force", action="store_true", help="overwrite schemas even when the change is breaking")
    parser.add_argument("--root", type=Path, default=CONTRACTS_DIR, help="the contracts directory to write into")
    args = parser.parse_args(argv)
    root: Path = args.root
    if args.check:
        problems = check(root)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run `python -m contracts.generate` and commit the result", file=sys.stderr)
            return 1
        print("contracts are up to date")
        return 0
    outcome = generate(root, force=args.force)
    if outcome.refused:
        print("\n".join(outcome.refused), file=sys.stderr)
        print("nothing was written", file=sys.stderr)
        return 1
    for written in outcome.written:
        print(f"wrote {written}")
    if not outcome.written:
        print("contracts are up to date")
    for problem in history_problems(root):
        print(problem, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
