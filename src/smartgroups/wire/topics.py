"""The contract's topic names (contract section 2): their one owner.

These are the *logical* names; a deployment's ``SMARTGROUPS_TOPIC_PREFIX`` is put in front of
each (``Settings.topic``). The worker's topology, the decoders, the CLI and the docs test all
read them from here.
"""

from __future__ import annotations

from typing import Final

MEMBER_CHANGES: Final = "member-changes"
PROPERTY_CHANGES: Final = "property-changes"
FORM_ANSWERS: Final = "form-answers"
GROUP_CHANGES: Final = "group-changes"
MEMBERSHIP_CHANGES: Final = "membership-changes"
MEMBERSHIP_STATE: Final = "membership-state"
GROUP_CHANGE_RESULTS: Final = "group-change-results"
DEAD_LETTERS: Final = "dead-letters"
SEGMENT_CHANGES: Final = "segment-changes"
SEGMENT_STATE: Final = "segment-state"

MEMBER_INPUTS: Final = (MEMBER_CHANGES, PROPERTY_CHANGES, FORM_ANSWERS)
"""Input topics keyed ``{space}:{member_id}``."""

INPUTS: Final = (*MEMBER_INPUTS, GROUP_CHANGES)
"""Every input topic."""

OUTPUTS: Final = (
    MEMBERSHIP_CHANGES,
    MEMBERSHIP_STATE,
    GROUP_CHANGE_RESULTS,
    DEAD_LETTERS,
    SEGMENT_CHANGES,
    SEGMENT_STATE,
)
"""Every output topic the worker writes today."""
