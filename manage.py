#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "firezone.settings")
    if len(sys.argv) > 1 and sys.argv[1] == "test":
        # The suite always runs with test settings (eager Celery, insecure dev secret allowed).
        os.environ.setdefault("FIREZONE_TESTING", "true")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
