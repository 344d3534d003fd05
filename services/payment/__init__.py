"""payment: contribution accounts, yearly tariffs and monthly bills of insured people (guide Q6, section 二)."""
