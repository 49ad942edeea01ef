"""The `faultsweep` command installed by the wheel: the Rust command line,
run inside this Python process after torch has loaded libtorch."""

import sys


def main() -> None:
    from . import _core  # imports torch first (see __init__)

    sys.stdout.flush()
    sys.exit(_core.main(["faultsweep", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
