"""Paying bills end to end: our own channel keys (a WeChat Pay platform key and certificate, an
Alipay key pair), the payment service's settings that trust them, and `flexctl payment
issue-bills`; the in-process payment service of the integration tests (`Payment`), and notifications
made and signed by `wechat`, `alipay` and `bank_counter`, exactly as the channels make them."""

import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID, uuid4

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from fastapi import FastAPI

from contracts.envelope import Envelope
from contracts.events.base import Event
from contracts.events.enrollment import ApplicationApproved, EnrollmentSubmitted
from kernel.auth import Principal
from kernel.clock import SHANGHAI
from kernel.personal import new_data_key, seal
from kernel.runtime import ServiceRuntime
from services.payment import domain
from services.payment.app import build
from services.payment.channels import sign
from services.payment.domain import Month
from services.payment.people import PeopleDirectory
from services.payment.service import PaymentService
from services.payment.settings import PaymentSettings
from services.payment.tariff import TariffBook
from tests.support.identity import RunningIdentity, running_identity
from tests.support.infra import DATABASE_URL, KAFKA_BOOTSTRAP, group_prefix, provision_schema
from tests.support.processes import ROOT, ServiceProcess
from tests.support.tokens import PRODUCTION_PUBLIC_KEYS, bearer

APIV3_KEY = "k7Vq2mXz9LpR4tYw8NcB1dFgH3jS6uEa"
COUNTER_SECRET = "a-test-secret-of-more-than-32-bytes-for-bank-counter"
WITHHOLDING_SECRET = "a-test-secret-of-more-than-32-bytes-for-withholding"


@dataclass(frozen=True)
class Keys:
    wechat: rsa.RSAPrivateKey
    serial: str
    certificate_pem: str
    alipay: rsa.RSAPrivateKey


REAL: dict[str, Any] = {
    "environment": "production",
    "db_password": "a-real-db-password",
    "kafka_password": "a-real-kafka-password",
    "token_public_keys": PRODUCTION_PUBLIC_KEYS,
    "payment_wechat_apiv3_key": "Zq8wE3rT6yU1iO4pA7sD0fG2hJ5kL9xC",
    "payment_unionpay_pos_secret": "a-real-unionpay-pos-secret-of-32-bytes",
    "payment_bank_counter_secret": "a-real-bank-counter-secret-of-32-bytes",
    "payment_bank_withholding_secret": "a-real-bank-withholding-secret-32-bytes",
    # payment's token for identity's match question (services/payment/README.md, "Paying for another person").
    "payment_identity_match_token": "a-real-identity-match-token",
    # Withholding's collection requests go to the banks' gateway over HTTPS, signed with our own secret.
    "payment_bank_gateway": "http",
    "payment_bank_gateway_url": "https://bank-gateway.example.cn",
    "payment_bank_gateway_secret": "a-real-bank-gateway-secret-of-32-bytes",
}
SECRET_FIELDS = [
    "payment_wechat_apiv3_key",
    "payment_unionpay_pos_secret",
    "payment_bank_counter_secret",
    "payment_bank_withholding_secret",
]
BOOK = TariffBook.from_folder(Path(__file__).resolve().parents[2] / "services" / "payment" / "tariffs")


@dataclass
class Payment:
    runtime: ServiceRuntime
    http: httpx.AsyncClient
    schema: str
    service: PaymentService

    def operator(self) -> dict[str, str]:
        return bearer(Principal(uuid4(), "operator"), 600)

    def person(self, user_id: UUID) -> dict[str, str]:
        return bearer(Principal(user_id, "applicant"), 600)

    async def count(self, sql: str, *args: Any) -> int:
        value = await self.runtime.pool.fetchval(sql.replace("{s}", f'"{self.schema}"'), *args)
        return int(value)

    async def events(self, event_type: str, **data: str) -> list[dict[str, Any]]:
        where = "".join(f" AND data->>'{k}' = '{v}'" for k, v in data.items())
        rows = await self.runtime.pool.fetch(
            f'SELECT stream_id, data FROM "{self.schema}".events WHERE event_type = $1{where} ORDER BY position',
            event_type,
        )
        return [{"stream_id": r["stream_id"], **r["data"]} for r in rows]


def make_keys() -> Keys:
    """A WeChat Pay platform key with its self-signed certificate, and a key pair standing for Alipay's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test WeChat Pay platform")])
    serial = x509.random_serial_number()
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(serial).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    alipay = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Keys(key, f"{serial:X}", certificate.public_bytes(Encoding.PEM).decode(), alipay)


def channel_env(keys: Keys) -> dict[str, str]:
    """The payment service's environment trusting `keys` (services/payment/channels/config.py)."""
    public = keys.alipay.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    return {
        "PAYMENT_WECHAT_APIV3_KEY": APIV3_KEY,
        "PAYMENT_WECHAT_PLATFORM_CERTIFICATES": json.dumps({keys.serial: keys.certificate_pem}),
        "PAYMENT_ALIPAY_PUBLIC_KEY": public,
        "PAYMENT_BANK_WITHHOLDING_SECRET": WITHHOLDING_SECRET,
    }


def issue_bills(payment: ServiceProcess, month: str | None = None) -> str:
    """`flexctl payment issue-bills [--month YYYY-MM]` with the payment service's settings."""
    return flexctl_payment(payment, "issue-bills", *(["--month", month] if month else []))


def floats_in(value: Any, path: str = "$") -> list[str]:
    """Where a JSON document holds a float (money is integer fen everywhere)."""
    if isinstance(value, float):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in floats_in(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in floats_in(v, f"{path}[{i}]")]
    return []


async def approve_and_bill(service: PaymentService, person: UUID, months_back: int) -> None:
    """`person` approved `months_back` months ago (their submission and approval as enrollment
    publishes them), with bills up to this month."""
    application = uuid4()
    now = datetime.now(UTC)

    def wrap(event: Event, version: int) -> Envelope:
        return Envelope.wrap(event, stream_id=f"application-{application}", stream_version=version,
                             producer="enrollment", correlation_id=f"corr-{application}")  # fmt: skip

    example = EnrollmentSubmitted.model_json_schema()["examples"][0]
    personal = seal(new_data_key(), person, {"name": "张三", "birth_date": "1990-03-07", "phone": "+8613800138000"})
    submitted = EnrollmentSubmitted.model_validate(
        {**example, "application_id": str(application), "applicant_id": str(person), "attempt": 1,
         "pension_tier": 3, "medical_tier": 5, "personal": personal.model_dump(mode="json")}
    )  # fmt: skip
    approved = ApplicationApproved(application_id=application, applicant_id=person, attempt=1, case_id=uuid4(),
                                   decided_at=now - timedelta(days=31 * months_back))  # fmt: skip
    await service.note_submission(submitted, wrap(submitted, 1))
    assert await service.open_account(approved, wrap(approved, 2)) is not None
    await service.bill_account(domain.account_id_for(person), Month.at(now))


async def billed_person(payment: Payment, months_back: int = 0) -> tuple[UUID, list[dict[str, Any]]]:
    """An approved person with bills from `months_back` months ago to this month, oldest first."""
    person = uuid4()
    await approve_and_bill(payment.service, person, months_back)
    answer = await payment.http.get(f"/v1/insured/{person}/bills", headers=payment.person(person))
    assert answer.status_code == 200, answer.text
    bills: list[dict[str, Any]] = answer.json()["bills"]
    assert len(bills) >= months_back + 1
    return person, bills


# --- notifications, as each channel makes them -------------------------------------------------


def wechat(keys: Keys, bill_id: str, amount_fen: int, transaction_id: str) -> tuple[dict[str, str], bytes]:
    transaction = {
        "mchid": "1230000109", "appid": "wxd678efh567hg6787", "out_trade_no": UUID(bill_id).hex,
        "transaction_id": transaction_id, "trade_type": "JSAPI", "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功", "bank_type": "OTHERS", "attach": "",
        "success_time": datetime.now(SHANGHAI).replace(microsecond=0).isoformat(),
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": amount_fen, "payer_total": amount_fen, "currency": "CNY", "payer_currency": "CNY"},
    }  # fmt: skip
    nonce = "fdasflkja484"
    sealed = AESGCM(APIV3_KEY.encode()).encrypt(nonce.encode(), json.dumps(transaction).encode(), b"transaction")
    body = json.dumps(
        {"id": f"EV-{transaction_id}", "create_time": transaction["success_time"], "resource_type": "encrypt-resource",
         "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
         "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                      "ciphertext": base64.b64encode(sealed).decode(), "associated_data": "transaction",
                      "nonce": nonce}},
        ensure_ascii=False,
    ).encode()  # fmt: skip
    timestamp, signing_nonce = str(int(datetime.now(UTC).timestamp())), uuid4().hex
    message = f"{timestamp}\n{signing_nonce}\n".encode() + body + b"\n"
    signature = keys.wechat.sign(message, padding.PKCS1v15(), hashes.SHA256())
    headers = {
        "Content-Type": "application/json",
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": signing_nonce,
        "Wechatpay-Signature": base64.b64encode(signature).decode(),
        "Wechatpay-Serial": keys.serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }
    return headers, body


def alipay(keys: Keys, bill_id: str, yuan: str, trade_no: str, buyer_id: str) -> tuple[dict[str, str], bytes]:
    local = datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    fields = {
        "gmt_create": local, "charset": "utf-8", "subject": "灵活就业人员社会保险费", "buyer_id": buyer_id,
        "notify_id": uuid4().hex, "notify_type": "trade_status_sync", "trade_status": "TRADE_SUCCESS",
        "app_id": "2021000000000000", "seller_id": "2088101117955611", "gmt_payment": local, "notify_time": local,
        "version": "1.0", "out_trade_no": bill_id, "total_amount": yuan, "trade_no": trade_no,
        "buyer_logon_id": "159****5620",
    }  # fmt: skip
    content = "&".join(f"{name}={value}" for name, value in sorted(fields.items()))
    signature = keys.alipay.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    signed = {**fields, "sign_type": "RSA2", "sign": base64.b64encode(signature).decode()}
    return {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, urlencode(signed).encode("ascii")


def bank_counter(bill_id: str, amount_fen: int, transaction_id: str) -> tuple[dict[str, str], bytes]:
    body = json.dumps(
        {"transaction_id": transaction_id, "out_trade_no": bill_id, "amount_fen": amount_fen,
         "paid_at": datetime.now(UTC).replace(microsecond=0).isoformat(), "bank_code": "ICBC"}
    ).encode()  # fmt: skip
    timestamp = str(int(datetime.now(UTC).timestamp()))
    headers = {"Content-Type": "application/json", "X-Flexenroll-Timestamp": timestamp,
               "X-Flexenroll-Signature": sign(COUNTER_SECRET, timestamp, body)}  # fmt: skip
    return headers, body


async def post(payment: Payment, channel: str, notification: tuple[dict[str, str], bytes]) -> httpx.Response:
    headers, body = notification
    return await payment.http.post(f"/v1/channels/{channel}/notifications", headers=headers, content=body)


# --- bank withholding, as a bank sends it (services/payment/channels/README.md) ------------------


def signed_by_bank(fields: dict[str, Any], secret: str = WITHHOLDING_SECRET) -> tuple[dict[str, str], bytes]:
    body = json.dumps(fields, ensure_ascii=False).encode("utf-8")
    timestamp = str(int(datetime.now(UTC).timestamp()))
    headers = {"Content-Type": "application/json", "X-Flexenroll-Timestamp": timestamp,
               "X-Flexenroll-Signature": sign(secret, timestamp, body)}  # fmt: skip
    return headers, body


def agreement_notice(
    id_number: str, name: str, card_ref: str, agreement_no: str, status: str = "signed", bank_code: str = "ICBC"
) -> tuple[dict[str, str], bytes]:
    """A bank's notice that the person signed (or ended) a withholding agreement at its branch."""
    moment = "signed_at" if status == "signed" else "terminated_at"
    return signed_by_bank(
        {"status": status, "agreement_no": agreement_no, "bank_code": bank_code, "card_ref": card_ref,
         "card_last4": card_ref[-4:], "id_number": id_number, "name": name,
         moment: datetime.now(UTC).replace(microsecond=0).isoformat()}
    )  # fmt: skip


def collection_result(
    bill_id: UUID | str, request_id: UUID | str, amount_fen: int, reason: str | None = None, bank_code: str = "ICBC"
) -> tuple[dict[str, str], bytes]:
    """The bank's answer to one collection request: collected, or (with `reason`) failed."""
    fields: dict[str, Any] = {
        "transaction_id": f"W{uuid4().hex[:20]}", "out_trade_no": str(bill_id), "amount_fen": amount_fen,
        "completed_at": datetime.now(UTC).replace(microsecond=0).isoformat(), "bank_code": bank_code,
        "collection_request_id": str(request_id), "result": "failed" if reason else "success",
    }  # fmt: skip
    if reason:
        fields["failure_reason"] = reason
    return signed_by_bank(fields)


def flexctl_payment(payment: ServiceProcess, *args: str) -> str:
    """`flexctl payment …` with the payment service's settings; its output."""
    env = {**payment.env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "ops.flexctl", "payment", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@dataclass
class PaymentWithIdentity:
    """payment in-process, asking a real identity in-process (its match question), on the real
    database and broker."""

    identity: RunningIdentity
    app: FastAPI
    runtime: ServiceRuntime
    http: httpx.AsyncClient
    service: PaymentService
    settings: PaymentSettings


@asynccontextmanager
async def payment_with_identity(schema: str, label: str, **overrides: Any) -> AsyncIterator[PaymentWithIdentity]:
    async with running_identity() as identity:
        settings = PaymentSettings(
            schema_name=schema,
            consumer_group_prefix=group_prefix(label),
            database_url=DATABASE_URL,
            kafka_bootstrap=KAFKA_BOOTSTRAP,
            identity_url="http://identity.test",
            **overrides,
        )
        people = PeopleDirectory(settings, transport=httpx.ASGITransport(app=identity.app))
        await provision_schema("payment", schema)
        app, runtime = build(settings, people=people)
        await runtime.start()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://payment") as http:
                yield PaymentWithIdentity(identity, app, runtime, http, app.state.payment, settings)
        finally:
            await runtime.stop()
            await people.aclose()
