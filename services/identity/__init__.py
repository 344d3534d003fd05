"""identity: accounts and real-name verification (guide Q4: 个人账户注册和实名认证)."""
