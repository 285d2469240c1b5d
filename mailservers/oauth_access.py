"""Who may open an OAuth grant's page and (re)connect a server's account.

Admins: every grant and server. A grant's owner (who connected it): that grant's
page, and *Reconnect* on its servers (``oauth_connect.may_reconnect``); the servers'
settings stay admin-only. As in ``knowlix.access``: what a user may not see is a
404, what they may see but not change raises ``PermissionDenied``.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404

from knowlix.users import is_admin
from mailservers.models.oauth import OAuthGrant
from mailservers.services import oauth_connect
from mailservers.services.oauth_connect import MailServer


def get_grant_for_user(user: User, grant_id: int) -> OAuthGrant:
    """The grant, or 404 unless ``user`` may open it (an admin, its owner)."""
    grant = OAuthGrant.objects.select_related("owner").filter(pk=grant_id).first()
    if grant is None or not grant.can_be_opened_by(user):
        raise Http404("No such account")
    return grant


def get_server_for_user(
    user: User, kind: str, server_id: int, *, write: bool = False
) -> MailServer:
    """The server to connect, or 404 unless ``user`` is an admin or owns its grant.

    ``write``: the owner may reconnect only with the grant's provider, else 403.
    """
    if kind not in oauth_connect.SERVER_MODELS:
        raise Http404("No such server kind")
    try:
        server = oauth_connect.get_server(kind=kind, server_id=server_id)
    except ObjectDoesNotExist:
        raise Http404("No such server") from None
    if is_admin(user):
        return server
    grant = server.oauth_grant
    if grant is None or not grant.is_owned_by(user):
        raise Http404("No such server")
    if write and not oauth_connect.may_reconnect(user=user, grant=grant, server=server):
        raise PermissionDenied("Only an administrator may connect this server.")
    return server
