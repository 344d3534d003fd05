-- An erased person's login row goes (docs/personal-data.md, "Erasure"), but the refusal of their
-- tokens must stay: every service keeps refusing them until they expire. So the revocation row no
-- longer hangs on the login row.
ALTER TABLE account_security DROP CONSTRAINT IF EXISTS account_security_user_id_fkey;
