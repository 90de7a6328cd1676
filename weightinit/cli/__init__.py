"""The ``weightinit`` command line (typer). The entry point is :func:`weightinit.cli.app.main`."""
