-- kernel.effects records every outbound effect in the same standard columns; the provider's id
-- of an accepted message is `provider_ref` there (the HTTP log still calls it provider_message_id,
-- as SmsSent does).
ALTER TABLE sms_messages RENAME COLUMN provider_message_id TO provider_ref;
