"""``python -m maru.cli``: the same as the ``maru`` command."""

from . import main

if __name__ == "__main__":
    main()
