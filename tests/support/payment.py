"""Paying bills end to end: our own channel keys (a WeChat Pay platform key and certificate, an
Alipay key pair), the payment service's settings that trust them, and `flexctl payment
issue-bills`. Notifications are made and signed by tests/integration/test_payment_settlement.py's
`wechat` and `alipay`, exactly as the channels make them."""

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from tests.integration.test_payment_settlement import APIV3_KEY, Keys
from tests.support.processes import ROOT, ServiceProcess


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
    }


def issue_bills(payment: ServiceProcess, month: str | None = None) -> str:
    """`flexctl payment issue-bills [--month YYYY-MM]` with the payment service's settings."""
    env = {**payment.env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    where = ["--month", month] if month else []
    done = subprocess.run(
        [sys.executable, "-m", "ops.flexctl", "payment", "issue-bills", *where], cwd=ROOT, env=env,
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def floats_in(value: Any, path: str = "$") -> list[str]:
    """Where a JSON document holds a float (money is integer fen everywhere)."""
    if isinstance(value, float):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in floats_in(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in floats_in(v, f"{path}[{i}]")]
    return []
