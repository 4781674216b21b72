"""``python -m smartgroups`` is the ``smartgroups`` command."""

from smartgroups.cli.main import main

raise SystemExit(main())
