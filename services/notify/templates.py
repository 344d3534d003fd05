"""SMS templates from a TOML file: Chinese texts with ${name} placeholders (Aliyun's syntax)."""

import re
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
# A one-time code (identity, POST /v1/internal/one-time-codes); placeholders code, minutes, purpose.
ONE_TIME_CODE_TEMPLATE = "one_time_code"
# Instead of a code, to a phone that already has an account; no placeholder.
PHONE_REGISTERED_TEMPLATE = "phone_registered"
REQUIRED = (
    "review_approved",
    "review_rejected",
    RECEIPT_TEMPLATE,
    OVERDUE_TEMPLATE,
    COLLECTION_FAILED_TEMPLATE,
    ONE_TIME_CODE_TEMPLATE,
    PHONE_REGISTERED_TEMPLATE,
)
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


# Reviewers' free text goes into an SMS under the agency's sign: it must carry no link (a URL
# there would read as the agency's own) and stay short (issue 9). Bounds per reason and in total.
REASON_MAX_CHARS = 60
REASONS_MAX_CHARS = 200
# Full-width ASCII (Ａ-ｚ, ０-９, ．／：) and the ideographic full stop folded to ASCII, one character
# for one, so that "ｅｖｉｌ。ｃｏｍ" is found like "evil.com" and the spans still fit the original.
_FOLD = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3002: ord("."), 0xFF61: ord("."), 0x3000: ord(" ")}
_URL_LIKE = re.compile(
    r"""(?ix)
    [a-z][a-z0-9+.\-]*://[!-~]*                                   # scheme://…
    | (?:mailto|javascript|data|tel|sms|weixin|alipays?|vbscript):[!-~]*   # schemes without //
    | www\.[!-~]*                                                   # www.…
    | (?<![a-z0-9@])\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?[!-~]*          # an IPv4 address, port, path
    | [a-z0-9\-_@]+(?:\.[a-z0-9\-_]+)*\.(?:[a-z]{2,}|xn--[a-z0-9\-]+)(?![a-z0-9\-])(?:[:/?#][!-~]*)?  # host.tld
    """
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")


def strip_links(text: str) -> str:
    """`text` without anything a phone could show as a link (URLs, www., domain names, IP
    addresses, also in full-width letters) nor control or invisible characters; Chinese kept."""
    text = _CONTROL.sub("", text)
    folded = text.translate(_FOLD)
    kept, last = [], 0
    for match in _URL_LIKE.finditer(folded):
        kept.append(text[last : match.start()])
        last = match.end()
    kept.append(text[last:])
    return re.sub(r"\s+", " ", "".join(kept)).strip()


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def join_reasons(texts: Sequence[str]) -> str:
    """Reviewers write each reason as a sentence; the SMS lists them separated by "；", each
    stripped of links and cut at REASON_MAX_CHARS, all of them at REASONS_MAX_CHARS."""
    parts = [_bounded(strip_links(t).rstrip(_REASON_END), REASON_MAX_CHARS) for t in texts]
    return _bounded("；".join(p for p in parts if p), REASONS_MAX_CHARS)


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
