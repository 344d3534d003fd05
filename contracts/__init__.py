"""The public language of flexenroll: topics, the event envelope and every public event.

Downstream teams depend on what is here; change it only compatibly (see README, "Contracts").
"""
