#!/usr/bin/env python
"""Django's command-line utility for Knowlix."""

import os
import sys

# Commands that make the secrets settings need: they run without loading the
# settings, which refuse to load without those secrets when DEBUG is off.
KEY_COMMANDS = {"generate_keys", "generate_encryption_key"}


def main() -> None:
    if len(sys.argv) == 2 and sys.argv[1] in KEY_COMMANDS:
        from knowlix import keys

        if sys.argv[1] == "generate_keys":
            sys.stdout.write(keys.env_lines())
        else:
            sys.stdout.write(keys.new_encryption_key() + "\n")
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "knowlix.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
