"""enrollment: applications for flexible-employment enrolment (参保登记) and their status."""
