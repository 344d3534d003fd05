"""web: the pages people use in a browser (issue 12): the applicant's pages (phone-sized), the
reviewer console, the operators' pages and the dashboard, server-rendered from the other services'
APIs with the caller's own token. It owns no data (README.md)."""
