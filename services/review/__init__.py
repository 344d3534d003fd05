"""review: the accepting agency's review of each submission (guide PART-8: 受理机构审核)."""
