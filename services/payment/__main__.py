"""`python -m services.payment`: run the payment service."""

from kernel.runtime import serve
from services.payment.app import build
from services.payment.settings import PaymentSettings

if __name__ == "__main__":
    settings = PaymentSettings()
    app, _ = build(settings)
    serve(app, settings)
