"""The routing rules proper (steps 4 to 9 of issue #8) for one parsed message.

A ``Router`` collects routes (created/posted records with their feed message) and,
when nothing may be created, the reason for a refusal. It is the only place that
decides between replying in a thread, forwarding to an alias of another kind,
creating records, and refusing politely. Call inside ``transaction.atomic()``.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.utils.translation import gettext as _

from feed.models import Message
from feed.services import new_record_followers
from knowlix.models import Contact, Record, Team
from knowlix.records import RECORD_MODELS, record_label
from routing import loops, matching, posting, replies
from routing.authenticity import Verdict
from routing.errors import RoutingConfigError
from routing.matching import Author, Target
from routing.models import Alias, InboundMail, SenderRateCounter
from routing.parsing import ParsedMessage

Scope = SenderRateCounter.Scope


def model_for_action(action: str) -> type[Record] | None:
    """A server's default action ("ticket", "knowlix.ticket", "create_ticket")."""
    name = (action or "").strip().lower().removeprefix("create_").split(".")[-1]
    return next((m for m in RECORD_MODELS if m._meta.model_name == name), None)


def default_team(server: IncomingServerLike | None) -> Team | None:
    """The team of the records a server's default action creates, if any."""
    return getattr(server, "default_team", None)


class IncomingServerLike(Protocol):
    """What routing reads from an incoming server (mailservers.IncomingServer)."""

    default_action: str  # a model label, e.g. "knowlix.ticket"
    # default_team (a knowlix Team or None) is read with getattr: optional.


class Router:
    def __init__(
        self,
        *,
        inbound: InboundMail,
        parsed: ParsedMessage,
        server: IncomingServerLike | None,
        verdict: Verdict,
        sender_contact: Contact | None | matching._NotRead = matching.NOT_READ,
    ) -> None:
        self.inbound = inbound
        # The sender's oldest contact, once read (and once created, if unknown).
        self.sender_contact = sender_contact
        self.parsed = parsed
        self.server = server
        self.address = parsed.from_address
        self.verdict = verdict
        self.verified = not self.verdict.is_unverified
        self.routes: list[tuple[str, Record, Message]] = []
        self.refusal = ""
        self._content: posting.MailContent | None = None

    # --- the rules in order ---------------------------------------------------------

    def run(self) -> None:
        target = self.find_target()
        aliases = matching.find_aliases(self.parsed)
        if target is not None:
            self.post(target.record, parent=target.parent)
            for alias in aliases:
                self.apply_alias(alias, thread_record=target.record)
        elif aliases:
            for alias in aliases:
                self.apply_alias(alias, thread_record=None)
        elif (model := self.default_model()) is not None:
            self.create(model, {}, team=default_team(self.server))
        elif matching.addressed_to_us(self.parsed):
            self.refuse(_("No mailbox or alias of ours has this address."))

    def find_target(self) -> Target | None:
        """Reply token, then In-Reply-To/References, then a subject tag."""
        target = matching.find_token_target(self.parsed)
        thread = matching.find_thread(self.parsed)
        if target is None:
            target = thread
        elif thread is not None and thread.record == target.record:
            target.parent = thread.parent
        if target is None:
            target = matching.find_tag_target(self.parsed, verified=self.verified)
        return target

    def default_model(self) -> type[Record] | None:
        return model_for_action(getattr(self.server, "default_action", "") or "")

    def apply_alias(self, alias: Alias, *, thread_record: Record | None) -> None:
        """Post on the alias's fixed record, or create one unless it is a reply."""
        model = alias.model
        if model is None:
            raise RoutingConfigError(
                _("The alias %(name)s has no record kind.") % {"name": alias.name}
            )
        fixed = None
        if not alias.creates_records:
            fixed = model._default_manager.filter(pk=alias.object_id).first()
            if fixed is None:
                raise RoutingConfigError(
                    _("The fixed record of alias %(name)s no longer exists.")
                    % {"name": alias.name}
                )
            if fixed == thread_record:
                return
        elif thread_record is not None and isinstance(thread_record, model):
            return  # a reply that also went to the alias of its own kind
        if not self.policy_allows(alias, fixed or thread_record):
            text = alias.bounce_message.strip() or _(
                "The address %(alias)s only accepts messages from known senders."
            ) % {"alias": f"{alias.name}@{matching.our_domain()}"}
            self.refuse(text)
            return
        if fixed is not None:
            self.post(fixed, parent=None)
        else:
            self.create(model, alias.defaults or {}, team=alias.team)

    def policy_allows(self, alias: Alias, record: Record | None) -> bool:
        policy = alias.contact_policy
        if policy == Alias.ContactPolicy.EVERYONE:
            return True
        if not self.verified or not self.address:
            return False
        author, is_follower = matching.find_author(
            self.address, record=record, verified=True, contact=self.sender_contact
        )
        if policy == Alias.ContactPolicy.KNOWN:
            return author.is_known
        return record is not None and is_follower

    # --- writes ---------------------------------------------------------------------

    @property
    def content(self) -> posting.MailContent:
        if self._content is None:
            self._content = posting.build_content(self.parsed)
        return self._content

    def author_for(self, record: Record | None) -> Author:
        author, _follower = matching.find_author(
            self.address,
            record=record,
            verified=self.verified,
            contact=self.sender_contact,
        )
        if not author.is_known and self.address:
            author.contact = Contact.objects.create(
                name=(self.parsed.from_name or self.address)[:200], email=self.address
            )
            self.sender_contact = author.contact
        return author

    def is_limited(self, author: Author, scope: str, record: str = "") -> bool:
        if author.user is not None:
            return False  # our own users are never loop-limited
        return loops.is_over_limit(address=self.address, scope=scope, record=record)

    def post(self, record: Record, *, parent: Message | None) -> None:
        author = self.author_for(record)
        label = record_label(record)
        if self.is_limited(author, Scope.POST, label):
            self.refuse_loop()
            return
        message = posting.post_mail(
            posting.mail_post(
                record=record,
                parsed=self.parsed,
                content=self.content,
                author=author,
                verdict=self.verdict,
                parent=parent,
                first_route=not self.routes,
            )
        )
        loops.count_message(address=self.address, scope=Scope.POST, record=label)
        self.routes.append(("posted", record, message))

    def create(
        self, model: type[Record], defaults: dict[str, Any], *, team: Team | None
    ) -> None:
        author = self.author_for(None)
        if self.is_limited(author, Scope.CREATE):
            self.refuse_loop()
            return
        record = posting.create_record(
            model=model, defaults=defaults, parsed=self.parsed, author=author, team=team
        )
        message = posting.post_mail(
            posting.mail_post(
                record=record,
                parsed=self.parsed,
                content=self.content,
                author=author,
                verdict=self.verdict,
                parent=None,
                first_route=not self.routes,
                # Just created: its followers are the defaults, not read back.
                followers=new_record_followers(record=record, author=author.user),
            )
        )
        loops.count_messages(
            keys=[
                (self.address, Scope.CREATE, ""),
                (self.address, Scope.POST, record_label(record)),
            ]
        )
        self.routes.append(("created", record, message))

    # --- refusals -------------------------------------------------------------------

    def refuse(self, reason: str) -> None:
        self.refusal = self.refusal or reason
        if not self.inbound.replied_at:
            self.answer(reason)

    def refuse_loop(self) -> None:
        self.refusal = self.refusal or _(
            "Too many messages from %(sender)s in a short time (mail loop protection)."
        ) % {"sender": self.address}
        if self.inbound.replied_at or loops.recently_warned(self.address):
            return
        tag = loops.new_loop_tag()
        if self.answer(str(replies.LOOP_REFUSAL), loop_tag=tag):
            self.inbound.loop_tag = tag

    def answer(self, reason: str, *, loop_tag: str = "") -> bool:
        queued, why_not = replies.send_refusal(
            inbound=self.inbound,
            parsed=self.parsed,
            reason=reason,
            loop_tag=loop_tag,
            verdict=self.verdict,
        )
        if why_not:
            self.refusal += " " + _("(Not answered: %(why)s.)") % {"why": why_not}
        return queued
