"""Alerts in event time: rules, their lifecycle and how they are evaluated (pure, no I/O).

- :mod:`~callfloor.alerts.rules`: ``[alerts]`` and ``[[alerts.rules]]``, the default
  rules, validation naming file, key and problem;
- :mod:`~callfloor.alerts.engine`: the lifecycle of each alert (pending, firing,
  resolved), escalation, repeats, acknowledgements, silences, notifications;
- :mod:`~callfloor.alerts.driver`: evaluates the rules at every instant their inputs
  can change, observing a processor; late events re-derive the timeline;
- :mod:`~callfloor.alerts.notification`: what is handed to the delivery side
  (:mod:`callfloor.sinks.alerts`).

See docs/alerts.md.
"""
