"""The ``smartgroups`` command: one module per sub-command."""
