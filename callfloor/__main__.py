"""``python -m callfloor`` runs the command-line interface."""

from callfloor.cli import main

raise SystemExit(main())
