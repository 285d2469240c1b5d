"""Mail server models, split by concept: outgoing, incoming and OAuth grants."""

from mailservers.models.incoming import *  # noqa: F403
from mailservers.models.oauth import *  # noqa: F403
from mailservers.models.outgoing import *  # noqa: F403
