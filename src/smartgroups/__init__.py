"""smartgroups: exact, live smart-group memberships on Kafka.

The public interface is the wire contract (topics, events, rules, configuration, CLI) described in
the README; the Python package is the implementation. ``smartgroups.core`` is pure and may be used
as a library (conditions, catalog, membership decisions).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
