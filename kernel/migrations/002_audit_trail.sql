-- The access audit trail (kernel.audit, docs/access-audit.md): who read a person's documents,
-- registration form or unmasked data, who decided a case, who changed a staff account; when,
-- what, and from which address. Append-only: rows are inserted and never changed or removed, by
-- anyone (the service's own role included: the triggers below refuse UPDATE, DELETE and TRUNCATE
-- whoever runs them). It holds ids, never names or numbers, so a person's erasure leaves it whole.
CREATE TABLE IF NOT EXISTS audit_trail (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_id    uuid,
    actor_role  text,
    action      text NOT NULL CHECK (action <> ''),
    person_id   uuid,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    client      text
);
CREATE INDEX IF NOT EXISTS audit_trail_person ON audit_trail (person_id, at DESC) WHERE person_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_trail_actor ON audit_trail (actor_id, at DESC) WHERE actor_id IS NOT NULL;

CREATE OR REPLACE FUNCTION audit_trail_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_trail is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

DROP TRIGGER IF EXISTS audit_trail_no_change ON audit_trail;
CREATE TRIGGER audit_trail_no_change BEFORE UPDATE OR DELETE ON audit_trail
    FOR EACH ROW EXECUTE FUNCTION audit_trail_refuse_change();
DROP TRIGGER IF EXISTS audit_trail_no_truncate ON audit_trail;
CREATE TRIGGER audit_trail_no_truncate BEFORE TRUNCATE ON audit_trail
    FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_trail FROM PUBLIC;
