"""``python -m agent.cli``: the ``closedloop`` command line."""

from agent.cli.commands import main

main()
