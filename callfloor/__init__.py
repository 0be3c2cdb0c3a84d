"""callfloor: a real-time call-floor monitoring stream processor.

ACD call events and agent-state events in; service level, abandons, ASA, AHT,
waiting calls, agents by state, occupancy, Erlang C staffing and idle-time
violations out (Prometheus, HTTP, wallboards).
"""

__version__ = "0.1.0"
