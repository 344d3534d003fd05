"""notify: text messages to people (guide PART-8: 受理机构会发送短信告知“审核通过”或“审核不通过”)."""
