"""The banks whose counters take contributions in cash, by a stable code.

Guide, 二(五) 银行柜面缴费: "中国银行、农业银行、工商银行、建设银行、交通银行、江苏银行、江南银行、
邮储银行各网点均支持现金缴费功能。" Only these eight are accepted from `bank_counter`; the same list
names the banks of `bank_withholding` (二(一), the card's bank), so a settlement always carries
one of the names the guide uses. Codes are ours (services/payment/channels/README.md) and never
change; `name` is the guide's name, the one `PaymentSettled.bank` carries.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Bank:
    code: str
    name: str


BANKS: tuple[Bank, ...] = (
    Bank("BOC", "中国银行"),
    Bank("ABC", "农业银行"),
    Bank("ICBC", "工商银行"),
    Bank("CCB", "建设银行"),
    Bank("BOCOM", "交通银行"),
    Bank("JSB", "江苏银行"),
    Bank("JNRCB", "江南银行"),
    Bank("PSBC", "邮储银行"),
)
BANKS_BY_CODE: dict[str, Bank] = {bank.code: bank for bank in BANKS}


def bank_by_code(code: str) -> Bank | None:
    """The bank with this exact code (upper case, as listed), or None."""
    return BANKS_BY_CODE.get(code)
