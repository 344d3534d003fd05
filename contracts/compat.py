"""Is a new JSON Schema of an event still compatible with the old one of the same version?

An event version is a promise to two parties, and a change may break either:

* consumers already deployed, reading new events with code written for the old schema;
* the stored history: event topics keep data forever and projections replay them from the
  beginning, so every event ever written under `(event_type, schema_version)` must still validate
  against the current class of that version.

`breaking_changes(old, new)` reports, as lines such as
``UserVerified.birth_date: type changed string/date -> integer``:

* a field removed (a rename is a removal plus an addition);
* a new *required* field (stored events lack it); a new optional field is fine;
* an optional field made required (stored events may lack it);
* a type changed: JSON type, string format (date, date-time, uuid …), or the set of types in a
  union, in either direction;
* null allowed where it was not (a consumer may not expect null), and — deliberately stricter
  than "consumers don't mind" — null no longer allowed where it was (events already stored with
  null would fail to validate on replay);
* enum / const values removed (stored events may carry them) or a free value restricted to an
  enum. *Adding* an enum value is **not** reported: enums here name open sets that grow with the
  domain (payment channels, document kinds, templates), and the contract asks consumers to be
  tolerant readers that treat an unknown value as "other" (the same way they ignore unknown
  fields). Flagging every addition would force a new version for each new channel and make the
  version number meaningless. Widening a numeric or length range is not reported for the same
  reason.
* a constraint tightened: minimum/maximum (and exclusive forms), min/max length, min/max items,
  a pattern added or changed (regular expressions cannot be compared, so any change counts),
  multipleOf or uniqueItems added or changed.

Not reported: a required field made optional (pydantic producers still write it, with its
default; a null default is caught by the null rule), changed titles, descriptions, defaults and
examples. Schemas are expected from pydantic's `model_json_schema()`: `$ref` into `$defs`, `anyOf`
for unions and `Optional`, `const`/`enum` for `Literal`.
"""

import json
from collections.abc import Mapping
from typing import Any

Schema = Mapping[str, Any]

_NULL = "null"
_REF_KEY = "__ref__"
_LOWER_BOUNDS = (("minLength", "length"), ("minItems", "item count"), ("minProperties", "size"))
_UPPER_BOUNDS = (("maxLength", "length"), ("maxItems", "item count"), ("maxProperties", "size"))


def breaking_changes(old_schema: Schema, new_schema: Schema) -> list[str]:
    """Human-readable lines, one per change of `new_schema` that breaks consumers or history."""
    name = str(new_schema.get("title") or old_schema.get("title") or "$")
    comparer = _Comparer(old_schema, new_schema)
    comparer.value(name, old_schema, new_schema)
    return comparer.breaks


class _Comparer:
    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.breaks: list[str] = []
        self.seen: set[tuple[str, str]] = set()

    def report(self, path: str, message: str) -> None:
        self.breaks.append(f"{path}: {message}")

    # --- one value (a property, an array item, …), possibly a union or nullable ------------

    def value(self, path: str, old: Schema, new: Schema) -> None:
        old_nullable, old_variants = _variants(old, self.old_root)
        new_nullable, new_variants = _variants(new, self.new_root)
        if new_nullable and not old_nullable:
            self.report(path, "null is now allowed (consumers may not expect null)")
        if old_nullable and not new_nullable:
            self.report(path, "null is no longer allowed (events stored with null would fail to validate)")
        if len(old_variants) == 1 and len(new_variants) == 1:
            self.variant(path, old_variants[0], new_variants[0])
            return
        old_kinds = sorted({_kind(v) for v in old_variants})
        new_kinds = sorted({_kind(v) for v in new_variants})
        if old_kinds != new_kinds:
            self.report(path, f"type changed {_kinds(old_kinds)} -> {_kinds(new_kinds)}")
            return
        for kind in old_kinds:
            olds = [v for v in old_variants if _kind(v) == kind]
            news = [v for v in new_variants if _kind(v) == kind]
            if len(olds) == 1 and len(news) == 1:
                self.variant(path, olds[0], news[0])
                continue
            # several variants of one kind (a union of models): pair them by title
            new_by_title = {str(v.get("title")): v for v in news}
            for old_variant in olds:
                title = str(old_variant.get("title"))
                if title not in new_by_title:
                    self.report(path, f"union variant {title} removed")
                else:
                    self.variant(f"{path}<{title}>", old_variant, new_by_title[title])

    # --- one non-null alternative ----------------------------------------------------------

    def variant(self, path: str, old: Schema, new: Schema) -> None:
        old_ref, new_ref = old.get(_REF_KEY), new.get(_REF_KEY)
        if old_ref is not None and new_ref is not None:
            pair = (str(old_ref), str(new_ref))
            if pair in self.seen:  # compared already (and a recursive model must stop here)
                return
            self.seen.add(pair)
        old_kind, new_kind = _kind(old), _kind(new)
        if old_kind != new_kind:
            self.report(path, f"type changed {old_kind} -> {new_kind}")
            return
        self.enum(path, old, new)
        self.constraints(path, old, new)
        if old_kind == "object":
            self.object(path, old, new)
        elif old_kind == "array":
            self.array(path, old, new)

    def enum(self, path: str, old: Schema, new: Schema) -> None:
        old_values, new_values = _enum_values(old), _enum_values(new)
        if new_values is None:
            return  # unrestricted now, or still: widening is tolerated
        if old_values is None:
            self.report(path, f"values restricted to {_show(new_values)}")
            return
        removed = old_values - new_values
        if removed:
            self.report(path, f"enum value(s) removed: {_show(removed)}")

    def constraints(self, path: str, old: Schema, new: Schema) -> None:
        old_low, new_low = _lower(old), _lower(new)
        if new_low is not None and (old_low is None or new_low > old_low):
            self.report(path, f"minimum raised {_bound(old_low)} -> {_bound(new_low)}")
        old_high, new_high = _upper(old), _upper(new)
        if new_high is not None and (old_high is None or new_high < old_high):
            self.report(path, f"maximum lowered {_bound(old_high)} -> {_bound(new_high)}")
        for key, what in _LOWER_BOUNDS:
            if key in new and (key not in old or new[key] > old[key]):
                self.report(path, f"minimum {what} raised {old.get(key)} -> {new[key]}")
        for key, what in _UPPER_BOUNDS:
            if key in new and (key not in old or new[key] < old[key]):
                self.report(path, f"maximum {what} lowered {old.get(key)} -> {new[key]}")
        for key in ("pattern", "multipleOf"):
            if key in new and new[key] != old.get(key):
                self.report(path, f"{key} changed {old.get(key)!r} -> {new[key]!r}")
        if new.get("uniqueItems") and not old.get("uniqueItems"):
            self.report(path, "items must now be unique")

    def object(self, path: str, old: Schema, new: Schema) -> None:
        old_props: Schema = old.get("properties", {})
        new_props: Schema = new.get("properties", {})
        old_required = set(old.get("required", ()))
        new_required = set(new.get("required", ()))
        for name, old_prop in old_props.items():
            if name not in new_props:
                self.report(f"{path}.{name}", "field removed (or renamed)")
                continue
            if name in new_required and name not in old_required:
                self.report(f"{path}.{name}", "optional field made required")
            self.value(f"{path}.{name}", old_prop, new_props[name])
        for name in new_props:
            if name not in old_props and name in new_required:
                self.report(f"{path}.{name}", "new required field (stored events lack it)")
        old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
        if isinstance(old_extra, Mapping) or isinstance(new_extra, Mapping):
            if new_extra is False:
                self.report(path, "additional properties no longer allowed")
            else:
                self.value(
                    f"{path}{{}}",
                    old_extra if isinstance(old_extra, Mapping) else {},
                    new_extra if isinstance(new_extra, Mapping) else {},
                )
        elif new_extra is False and old_extra is not False:
            self.report(path, "additional properties no longer allowed")

    def array(self, path: str, old: Schema, new: Schema) -> None:
        old_prefix: list[Schema] = list(old.get("prefixItems", ()))
        new_prefix: list[Schema] = list(new.get("prefixItems", ()))
        for index, (old_item, new_item) in enumerate(zip(old_prefix, new_prefix, strict=False)):
            self.value(f"{path}[{index}]", old_item, new_item)
        if len(old_prefix) != len(new_prefix):
            self.report(path, f"tuple length changed {len(old_prefix)} -> {len(new_prefix)}")
        old_items, new_items = old.get("items", {}), new.get("items", {})
        if isinstance(old_items, Mapping) and isinstance(new_items, Mapping):
            self.value(f"{path}[]", old_items, new_items)
        elif new_items is False and old_items is not False:
            self.report(path, "extra items no longer allowed")


# --- schema helpers -------------------------------------------------------------------------


def _resolve(node: Schema, root: Schema) -> dict[str, Any]:
    """Follow `$ref` (and a lone `allOf` wrapper) to the schema it names, keeping sibling keys."""
    result = dict(node)
    for _ in range(64):
        if "$ref" in result:
            ref = str(result.pop("$ref"))
            result = {**_lookup(ref, root), **result, _REF_KEY: ref}
        elif isinstance(result.get("allOf"), list) and len(result["allOf"]) == 1:
            inner = result.pop("allOf")[0]
            result = {**_resolve(inner, root), **result}
        else:
            return result
    raise ValueError("$ref chain too long")


def _lookup(ref: str, root: Schema) -> dict[str, Any]:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref are supported, got {ref!r}")
    target: Any = root
    for part in ref[1:].split("/"):
        if not part:
            continue
        target = target[part.replace("~1", "/").replace("~0", "~")]
    if not isinstance(target, Mapping):
        raise ValueError(f"$ref {ref!r} does not name a schema")
    return dict(target)


def _variants(node: Schema, root: Schema) -> tuple[bool, list[dict[str, Any]]]:
    """Split a schema into (may it be null?, its non-null alternatives)."""
    resolved = _resolve(node, root)
    for key in ("anyOf", "oneOf"):
        if key in resolved:
            nullable = False
            out: list[dict[str, Any]] = []
            for sub in resolved[key]:
                sub_nullable, sub_variants = _variants(sub, root)
                nullable = nullable or sub_nullable
                out.extend(sub_variants)
            return nullable, out
    kind = resolved.get("type")
    if isinstance(kind, list):
        others = [k for k in kind if k != _NULL]
        return _NULL in kind, [{**resolved, "type": k} for k in others]
    if kind == _NULL:
        return True, []
    values = resolved.get("enum")
    if isinstance(values, list) and None in values:
        rest = [v for v in values if v is not None]
        return True, [{**resolved, "enum": rest}] if rest else []
    if "const" in resolved and resolved["const"] is None:
        return True, []
    return False, [resolved]


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return _NULL


def _kind(schema: Schema) -> str:
    """`string/date`, `integer`, `object` …: what a consumer must be able to parse."""
    kind = schema.get("type")
    if kind is None:
        if "const" in schema:
            kind = _json_type(schema["const"])
        elif isinstance(schema.get("enum"), list) and schema["enum"]:
            kinds = sorted({_json_type(v) for v in schema["enum"]})
            kind = kinds[0] if len(kinds) == 1 else "|".join(kinds)
        elif "properties" in schema or "additionalProperties" in schema:
            kind = "object"
        elif "items" in schema or "prefixItems" in schema:
            kind = "array"
        else:
            return "any"
    if kind == "string" and "format" in schema:
        return f"string/{schema['format']}"
    return str(kind)


def _kinds(kinds: list[str]) -> str:
    return "|".join(kinds) if kinds else _NULL


def _enum_values(schema: Schema) -> frozenset[str] | None:
    if "const" in schema:
        return frozenset({json.dumps(schema["const"], sort_keys=True, ensure_ascii=False)})
    if isinstance(schema.get("enum"), list):
        return frozenset(json.dumps(v, sort_keys=True, ensure_ascii=False) for v in schema["enum"])
    return None


def _show(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))


# A numeric bound is (value, exclusive): for a lower bound a larger tuple is tighter (x > 5 is
# tighter than x >= 5); for an upper bound exclusivity is encoded negatively so `<` means tighter.
_Bound = tuple[float, int]


def _lower(schema: Schema) -> _Bound | None:
    bounds: list[_Bound] = []
    if isinstance(schema.get("minimum"), int | float):
        bounds.append((schema["minimum"], 0))
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        bounds.append((schema["exclusiveMinimum"], 1))
    return max(bounds) if bounds else None


def _upper(schema: Schema) -> _Bound | None:
    bounds: list[_Bound] = []
    if isinstance(schema.get("maximum"), int | float):
        bounds.append((schema["maximum"], 0))
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        bounds.append((schema["exclusiveMaximum"], -1))
    return min(bounds) if bounds else None


def _bound(bound: _Bound | None) -> str:
    if bound is None:
        return "none"
    value, exclusive = bound
    shown = int(value) if float(value).is_integer() else value
    return f"{shown} (exclusive)" if exclusive else str(shown)
