"""Which outgoing server sends a mail, and whether its From is rewritten.

Rules, most specific first (ties: lowest ``priority``, then oldest):

1. an active server whose From Filter lists the From address (case-insensitive);
2. one whose filter lists the From's domain;
3. otherwise the From is rewritten to ``"Original Name" <mail.default.from@catch-all>``
   (the original sender goes to Reply-To) and a server matching *that* address, by
   address then domain, is used;
4. then a server with no filter (it sends for anyone: the From is kept);
5. then the deployment's default server (``KNOWLIX_SMTP_URL``), which only sends for
   the catch-all domain: any other From is rewritten.

Custom servers are considered only when the ``mail.use_custom_servers`` parameter is
on. :func:`choose_server` is pure (servers passed in); :func:`select_server` reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.translation import gettext as _

from knowlix import params
from mailservers.models import OutgoingServer


@dataclass(frozen=True)
class Selection:
    server: OutgoingServer | None  # None: the default server
    from_address: str  # the From actually sent
    original_from: str  # the From asked for, when rewritten; else ""
    reason: str

    @property
    def is_rewritten(self) -> bool:
        return bool(self.original_from)


def _by_filter(
    address: str, servers: Sequence[OutgoingServer]
) -> tuple[OutgoingServer, str] | None:
    for server in servers:
        if server.matches_address(address):
            return server, _("its From Filter lists %(value)s") % {"value": address}
    domain = address.rpartition("@")[2].lower()
    for server in servers:
        if server.matches_domain(address):
            return server, _("its From Filter lists %(value)s") % {"value": domain}
    return None


def choose_server(
    *, from_address: str, servers: Sequence[OutgoingServer], default_from: str
) -> Selection:
    """Apply the rules above to ``servers`` (any order; inactive ones are ignored)."""
    active = sorted(
        (s for s in servers if s.is_active), key=lambda s: (s.priority, s.pk or 0)
    )
    hit = _by_filter(from_address, active)
    if hit:
        return Selection(hit[0], from_address, "", hit[1])

    rewritten = default_from
    original = "" if rewritten.lower() == from_address.lower() else from_address
    hit = _by_filter(rewritten, active)
    if hit:
        reason = _("no server sends for %(sender)s; From rewritten, and %(why)s")
        return Selection(
            hit[0],
            rewritten,
            original,
            reason % {"sender": from_address, "why": hit[1]},
        )

    unfiltered = [s for s in active if not s.filter_entries]
    if unfiltered:
        return Selection(unfiltered[0], from_address, "", _("it has no From Filter"))

    default_domain = rewritten.rpartition("@")[2].lower()
    if from_address.rpartition("@")[2].lower() == default_domain:
        return Selection(None, from_address, "", _("the default server"))
    return Selection(
        None,
        rewritten,
        original,
        _("the default server, which sends only for %(domain)s: From rewritten")
        % {"domain": default_domain},
    )


def select_server(*, from_address: str) -> Selection:
    """Choose among the configured servers (reads the database and parameters)."""
    servers: Sequence[OutgoingServer] = []
    if params.get_bool_param(params.USE_CUSTOM_SERVERS):
        servers = list(OutgoingServer.objects.filter(is_active=True))
    return choose_server(
        from_address=from_address,
        servers=servers,
        default_from=params.default_from_address(),
    )
