"""`manage.py test` runs pytest, so both commands are the same suite."""

from __future__ import annotations

import sys


class PytestRunner:
    def __init__(self, verbosity: int = 1, failfast: bool = False, keepdb: bool = False, **kw):
        self.verbosity = verbosity
        self.failfast = failfast
        self.keepdb = keepdb

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--keepdb", action="store_true", help="Preserve the test database.")
        parser.add_argument("-k", dest="keyword", help="Only tests matching this expression.")
        parser.add_argument("-m", dest="marker", help="Only tests matching this marker expression.")
        parser.add_argument(
            "--parallel",
            metavar="N",
            help="pytest-xdist workers (a number or auto); serial by default.",
        )

    def run_tests(self, test_labels: list[str], **kwargs) -> int:
        import pytest

        argv: list[str] = []
        if self.verbosity == 0:
            argv.append("-q")
        elif self.verbosity > 1:
            argv.append("-v")
        if self.failfast:
            argv.append("--exitfirst")
        if self.keepdb:
            argv.append("--reuse-db")
        if kwargs.get("keyword"):
            argv += ["-k", kwargs["keyword"]]
        if kwargs.get("marker"):
            argv += ["-m", kwargs["marker"]]
        if kwargs.get("parallel"):
            argv += ["-n", str(kwargs["parallel"])]
        argv += list(test_labels)
        return int(pytest.main(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(PytestRunner().run_tests(sys.argv[1:]))
