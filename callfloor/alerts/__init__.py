"""Alerts: rule evaluation and delivery to supervisors (Alertmanager, webhooks, MQTT).

Not implemented yet: replay documents carry an empty ``alerts`` list until the
alerting issue lands. See docs/decisions.md.
"""
