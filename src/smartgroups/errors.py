"""The one exception tree of smartgroups.

::

    SmartGroupsError
     +-- ConfigError          bad flags or environment; the process refuses to start
     +-- TopologyError        an existing topic has the wrong partition count or cleanup policy
     +-- BrokerError          the local development broker could not be fetched, started or stopped
     +-- RuleError            a group-changes command is rejected; ``code`` is the contract's code
     +-- PreviewError         ``smartgroups preview`` cannot run (bad file, rejected definition)

Data problems on the stream (bad records) are *not* exceptions: the edge turns them into dead
letters or ``command.rejected`` results, and the stream goes on.
"""

from __future__ import annotations


class SmartGroupsError(Exception):
    """Base of every error raised by smartgroups."""


class ConfigError(SmartGroupsError):
    """A setting is missing or malformed. Fix the flag or variable named in the message."""


class TopologyError(SmartGroupsError):
    """An existing topic does not fit the configuration (partitions or compaction).

    The worker refuses to start rather than route keys to the wrong partitions. Recreate the topic
    or set ``SMARTGROUPS_PARTITIONS`` to the existing count.
    """


class BrokerError(SmartGroupsError):
    """The local development broker failed; the message carries the tail of its log."""


class RuleError(SmartGroupsError):
    """A definition command is rejected with one of the contract's codes (section 3)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class PreviewError(SmartGroupsError):
    """``smartgroups preview`` cannot complete; ``exit_status`` is what the command returns."""

    def __init__(self, message: str, exit_status: int = 2) -> None:
        super().__init__(message)
        self.exit_status = exit_status
