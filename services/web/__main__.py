"""`python -m services.web`: run the web pages."""

from kernel.runtime import serve
from services.web.app import build
from services.web.settings import WebSettings

if __name__ == "__main__":
    settings = WebSettings()
    app = build(settings)
    serve(app, settings)
