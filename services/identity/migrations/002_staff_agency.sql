-- A reviewer may work at one accepting agency (受理机构, e.g. 320411): review then shows and lets
-- them decide only that agency's cases. NULL: a city-level reviewer, every operator and applicant.
-- Which codes exist is the reference directory's (contracts/reference/districts.toml), checked by
-- identity's domain before the insert; the table keeps only the shape.
ALTER TABLE credentials
    ADD COLUMN agency_code text
        CONSTRAINT credentials_agency_code_format CHECK (agency_code ~ '^[0-9]{6}$'),
    ADD CONSTRAINT credentials_agency_only_reviewers CHECK (agency_code IS NULL OR role = 'reviewer');
