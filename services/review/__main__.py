"""`python -m services.review`: run the review service."""

from kernel.runtime import serve
from services.review.app import build
from services.review.settings import ReviewSettings

if __name__ == "__main__":
    settings = ReviewSettings()
    app, _ = build(settings)
    serve(app, settings)
