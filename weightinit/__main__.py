"""``python -m weightinit`` (and ``accelerate launch -m weightinit ...``) runs the CLI."""

from weightinit.cli.app import main

if __name__ == "__main__":
    main()
