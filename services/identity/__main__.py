"""`python -m services.identity`: run the identity service."""

from kernel.runtime import serve
from services.identity.app import build
from services.identity.settings import IdentitySettings

if __name__ == "__main__":
    settings = IdentitySettings()
    app, _ = build(settings)
    serve(app, settings)
