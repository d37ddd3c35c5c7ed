"""`python -m eventstore`: the same command line as the `eventstore` script."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="eventstore")
