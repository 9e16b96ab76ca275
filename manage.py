#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chimney.settings")
    # Management commands on a developer's machine run in development mode. Servers never
    # default (wsgi, asgi, Celery): production sets DEBUG=0 and its secrets, and so must a
    # production `manage.py migrate`.
    os.environ.setdefault("DEBUG", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
