"""`python -m services.enrollment`: run the enrollment service."""

from kernel.runtime import serve
from services.enrollment.app import build
from services.enrollment.settings import EnrollmentSettings

if __name__ == "__main__":
    settings = EnrollmentSettings()
    app, _ = build(settings)
    serve(app, settings)
