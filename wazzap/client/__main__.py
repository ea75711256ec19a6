"""
C{python -m wazzap.client}: the same as the C{wazzap-client} command.
"""

from wazzap.client.cli import main

main()
