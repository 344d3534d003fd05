-- The `status` subscription no longer reads review.events: review's outcome reaches the status
-- view as enrollment's own copies (ApplicationUnderReview, ApplicationApproved,
-- ApplicationRejected), recorded by the service layer. The originals stored before are
-- duplicates of those copies and go (services/enrollment/status.py folds without them).
DELETE FROM status_facts WHERE event_type IN ('ReviewCaseOpened', 'ReviewDecided');
