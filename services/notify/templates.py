"""SMS templates from a TOML file: Chinese texts with ${name} placeholders (Aliyun's syntax)."""

import string
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

# The receipt of a settlement (issue 8, "Downstream"); placeholders period, amount, channel.
RECEIPT_TEMPLATE = "payment_receipt"
# The reminder of an overdue bill; placeholders period, amount, due.
OVERDUE_TEMPLATE = "bill_overdue"
# A failed bank withholding collection; placeholders period, amount, bank, reason.
COLLECTION_FAILED_TEMPLATE = "withholding_failed"
REQUIRED = ("review_approved", "review_rejected", RECEIPT_TEMPLATE, OVERDUE_TEMPLATE, COLLECTION_FAILED_TEMPLATE)
# Trailing punctuation of one reason, dropped so that joined reasons read as one sentence.
_REASON_END = "。．.；;，,、 \t\n"


class TemplateError(ValueError):
    """The templates file is unusable: the service refuses to start rather than send garbage."""


@dataclass(frozen=True)
class Template:
    name: str
    text: str
    aliyun_code: str | None

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(string.Template(self.text).get_identifiers())

    def render(self, params: Mapping[str, str]) -> str:
        try:
            return string.Template(self.text).substitute(params)
        except KeyError as exc:
            raise TemplateError(f"template {self.name} needs parameter {exc.args[0]}") from exc


@dataclass(frozen=True)
class Templates:
    sign_name: str
    by_name: Mapping[str, Template]

    def get(self, name: str) -> Template:
        try:
            return self.by_name[name]
        except KeyError as exc:
            raise TemplateError(f"no SMS template named {name}") from exc

    def render(self, name: str, params: Mapping[str, str]) -> str:
        """The full text as the phone shows it: the provider puts the sign in front."""
        return f"【{self.sign_name}】{self.get(name).render(params)}"


def join_reasons(texts: Sequence[str]) -> str:
    """Reviewers write each reason as a sentence; the SMS lists them separated by "；"."""
    parts = [t.strip().rstrip(_REASON_END) for t in texts]
    return "；".join(p for p in parts if p)


def load_templates(path: Path | None, sign_name: str, aliyun_codes: Mapping[str, str] | None = None) -> Templates:
    raw = path.read_text(encoding="utf-8") if path else _packaged()
    try:
        tables = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"templates file is not valid TOML: {exc}") from exc
    by_name = {name: _template(name, table, (aliyun_codes or {}).get(name)) for name, table in tables.items()}
    missing = [name for name in REQUIRED if name not in by_name]
    if missing:
        raise TemplateError(f"templates file lacks {', '.join(missing)}")
    return Templates(sign_name=sign_name, by_name=by_name)


def _packaged() -> str:
    return resources.files("services.notify").joinpath("templates.toml").read_text(encoding="utf-8")


def _template(name: str, table: object, code_override: str | None) -> Template:
    if not isinstance(table, dict) or not isinstance(table.get("text"), str) or not table["text"].strip():
        raise TemplateError(f"template {name} needs a non-empty text")
    if not string.Template(table["text"]).is_valid():
        raise TemplateError(f"template {name} has a malformed ${{placeholder}}")
    code = code_override or table.get("aliyun_template_code")
    return Template(name=name, text=table["text"].strip(), aliyun_code=str(code) if code else None)
