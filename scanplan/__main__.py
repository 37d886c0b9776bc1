"""``python -m scanplan`` is the ``scanplan`` command."""

from scanplan.cli.main import main

main()
