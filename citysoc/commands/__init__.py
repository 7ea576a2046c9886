"""One module per CLI subcommand; listed in ``citysoc.cli.COMMANDS``."""
