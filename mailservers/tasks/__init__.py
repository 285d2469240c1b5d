"""Celery tasks; Celery's autodiscovery imports this module, so it imports the parts."""

from mailservers.tasks.incoming import *  # noqa: F403
from mailservers.tasks.oauth import *  # noqa: F403
from mailservers.tasks.outgoing import *  # noqa: F403
