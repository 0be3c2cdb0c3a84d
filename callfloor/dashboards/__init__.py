"""Dashboards: generated Grafana wall boards and the built-in wallboard.

Not implemented yet; tracked by its own issue. See docs/decisions.md.
"""
