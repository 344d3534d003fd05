"""`python -m services.notify`: run the notify service."""

from kernel.runtime import serve
from services.notify.app import build
from services.notify.settings import NotifySettings

if __name__ == "__main__":
    settings = NotifySettings()
    app, _ = build(settings)
    serve(app, settings)
