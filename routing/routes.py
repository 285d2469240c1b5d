"""The routing rules, in one place: what one parsed message becomes (issue #8, #12).

``Router.decide`` reads (through ``GroupReads``, shared by the messages routed
together) and returns a ``Plan``: the routes to write (records to create, records to
post on), the refusal and its polite answer, or why the message is ignored or a
bounce. It writes nothing: ``routing.writes`` writes the plans of a whole group in
bulk. The order of the rules: loop-bounce reply, bounce, our own mail, reply token,
thread headers, subject tag, aliases (a forward when the To names an alias of
another record kind; also a reply when the record's reply address, or an alias of
its kind in To, is named too),
server default, refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from django.utils.translation import gettext as _

from feed.models import Message
from knowlix.models import Contact, Record, Team
from knowlix.records import RECORD_MODELS, record_label
from routing import loops, matching, replies
from routing.authenticity import Verdict
from routing.errors import RoutingConfigError, RoutingError
from routing.matching import Author, Target
from routing.models import Alias, InboundMail, SenderRateCounter
from routing.parsing import ParsedMessage
from routing.reads import GroupReads

Scope = SenderRateCounter.Scope
Outcome = InboundMail.Outcome


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


@dataclass
class PlannedRoute:
    """A record to create (``record`` None) or an existing record to post on."""

    author: Author
    record: Record | None = None
    parent: Message | None = None
    model: type[Record] | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    team: Team | None = None  # of a record to create: its followers, its assignee


@dataclass
class Plan:
    """What routing one message writes (``routing.writes``)."""

    outcome: str = ""  # "" until written: routed, refused, or no route at all
    reason: str = ""
    routes: list[PlannedRoute] = field(default_factory=list)
    answer: str = ""  # the polite bounce to send, if any
    loop_tag: str = ""  # the answer is a loop warning with this tag
    is_bounce: bool = False  # a delivery report: ``bounces.handle_bounce``
    alias_names: set[str] = field(default_factory=set)


class SegmentConflict(Exception):
    """The message posts on a record that an earlier message of its segment posts
    on too: it must see that post (a new follower, a count) before it is decided."""


class Router:
    """Decide what one message becomes. ``inbound``: its stored row (an earlier
    answer, ``replied_at``, is not sent again when it is reprocessed)."""

    def __init__(
        self,
        *,
        inbound: InboundMail,
        parsed: ParsedMessage,
        server: IncomingServerLike | None,
        verdict: Verdict,
        reads: GroupReads,
    ) -> None:
        self.inbound = inbound
        self.parsed = parsed
        self.server = server
        self.reads = reads
        self.address = parsed.from_address
        self.verdict = verdict
        self.verified = not verdict.is_unverified
        self.plan = Plan(alias_names=reads.alias_names(parsed))
        self.sender_contact: Contact | None = None
        self._answered = bool(inbound.replied_at)
        self.touched: set[str] = set()  # the existing records it posts on

    def decide(self) -> Plan:
        """The plan; raises ``RoutingError`` when a human must decide."""
        parsed, plan = self.parsed, self.plan
        if parsed.loop_tags:
            plan.outcome = Outcome.IGNORED
            plan.reason = _("A reply to one of our loop-protection bounces.")
        elif parsed.bounce.detected or matching.is_to_bounce_alias(parsed):
            plan.outcome, plan.is_bounce = Outcome.BOUNCE, True
        elif self.reads.is_from_ourselves(parsed):
            plan.outcome = Outcome.IGNORED
            plan.reason = _("Sent from our own address %(address)s: a mail loop.") % {
                "address": parsed.from_address
            }
        else:
            self.sender_contact = self.reads.sender_contact(self.address)
            self.route()
            if not plan.routes and not plan.reason:
                raise RoutingError(
                    _(
                        "No route: not addressed to an alias, a reply address or a "
                        "known thread."
                    )
                )
        return plan

    def route(self) -> None:
        target = self.find_target()
        aliases = self.reads.find_aliases(self.parsed)
        if target is not None:
            forwards = self.forwards(aliases, thread_record=target.record)
            if not forwards or self.writes_to_thread(aliases, target):
                self.post(target.record, parent=target.parent)
            for alias in forwards:
                self.apply_alias(alias)
        elif aliases:
            for alias in aliases:
                self.apply_alias(alias)
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

    def forwards(self, aliases: list[Alias], *, thread_record: Record) -> list[Alias]:
        """The aliases a reply is forwarded to: those in its To of another record
        kind than its thread's. In Cc only, or of the thread's kind, they leave it a
        reply (the sender keeps the alias informed, or wrote to the kind's
        address)."""
        in_to = matching.alias_names(self.parsed, only=self.parsed.to)
        return [
            alias
            for alias in aliases
            if alias.name in in_to
            and alias.model is not None
            and not isinstance(thread_record, alias.model)
        ]

    def writes_to_thread(self, aliases: list[Alias], target: Target) -> bool:
        """The sender named the thread's record too (its reply address, or in To an
        alias of its kind): a forward is then also a reply there."""
        if target.found_by == "token":
            return True
        in_to = matching.alias_names(self.parsed, only=self.parsed.to)
        return any(
            alias.name in in_to
            and alias.model is not None
            and isinstance(target.record, alias.model)
            for alias in aliases
        )

    def default_model(self) -> type[Record] | None:
        return model_for_action(getattr(self.server, "default_action", "") or "")

    def apply_alias(self, alias: Alias) -> None:
        """Post on the alias's fixed record, or create one of its kind."""
        problem = self.reads.alias_problem(alias)
        model = alias.model
        if problem or model is None:
            raise RoutingConfigError(
                _("The alias %(name)s is invalid: %(reason)s")
                % {"name": alias.name, "reason": problem},
                alias=alias,
            )
        fixed = alias.fixed_record()
        refusal = self.policy_refusal(alias)
        if refusal:
            self.refuse(alias.bounce_message.strip() or refusal)
        elif fixed is not None:
            self.post(fixed, parent=None)
        else:
            self.create(model, alias.defaults or {}, team=alias.team)

    def policy_refusal(self, alias: Alias) -> str:
        """Why the alias's contact policy refuses the sender ("" if it accepts)."""
        policy = alias.contact_policy
        if policy == Alias.ContactPolicy.EVERYONE:
            return ""
        address = f"{alias.name}@{matching.our_domain()}"
        if policy == Alias.ContactPolicy.KNOWN:
            text = _(
                "The address %(alias)s only accepts messages from known contacts "
                "and users, sent from a verified address."
            ) % {"alias": address}
            user = self.reads.user(self.address) if self.verified else None
            if self.verified and (user or self.sender_contact) is not None:
                return ""
            return text
        record = alias.parent_record()
        assert record is not None  # else the alias is invalid (alias_problem)
        text = _(
            "The address %(alias)s only accepts messages from followers of "
            "%(record)s, sent from a verified address."
        ) % {"alias": address, "record": record.display_name}
        if not self.verified or not self.address:
            return text
        _author, is_follower = matching.find_author(
            self.address, record=record, verified=True, contact=self.sender_contact
        )
        return "" if is_follower else text

    # --- routes ---------------------------------------------------------------------

    def author_for(self, record: Record | None) -> Author:
        """The sender as the author on ``record``: a follower, a user (verified
        only), a contact; an unknown sender's contact is created with the writes."""
        if record is None:
            user = self.reads.user(self.address) if self.verified else None
            author = Author(user=user) if user else Author(contact=self.sender_contact)
        else:
            author, _follower = matching.find_author(
                self.address,
                record=record,
                verified=self.verified,
                contact=self.sender_contact,
            )
        if not author.is_known and self.address:
            author.contact = self.reads.new_contact(self.address, self.parsed.from_name)
            self.sender_contact = author.contact
        return author

    def is_limited(self, author: Author, scope: str, record: str = "") -> bool:
        if author.user is not None:
            return False  # our own users are never loop-limited
        return self.reads.is_over_limit(self.address, scope, record)

    def post(self, record: Record, *, parent: Message | None) -> None:
        label = record_label(record)
        if label in self.reads.touched - self.touched:
            raise SegmentConflict(label)
        self.touched.add(label)
        self.reads.mark_touched(label)
        author = self.author_for(record)
        if self.is_limited(author, Scope.POST, label):
            self.refuse_loop()
            return
        self.reads.count(self.address, Scope.POST, label)
        self.plan.routes.append(
            PlannedRoute(author=author, record=record, parent=parent)
        )

    def create(
        self, model: type[Record], defaults: dict[str, Any], *, team: Team | None
    ) -> None:
        author = self.author_for(None)
        if self.is_limited(author, Scope.CREATE):
            self.refuse_loop()
            return
        self.reads.count(self.address, Scope.CREATE)
        self.plan.routes.append(
            PlannedRoute(author=author, model=model, defaults=dict(defaults), team=team)
        )

    # --- refusals -------------------------------------------------------------------

    def refuse(self, reason: str) -> None:
        self.plan.reason = self.plan.reason or reason
        self.answer(reason)

    def refuse_loop(self) -> None:
        self.plan.reason = self.plan.reason or _(
            "Too many messages from %(sender)s in a short time (mail loop protection)."
        ) % {"sender": self.address}
        if self._answered or self.reads.recently_warned(self.address):
            return
        if self.answer(str(replies.LOOP_REFUSAL), loop_tag=loops.new_loop_tag()):
            self.reads.mark_warned(self.address)

    def answer(self, text: str, *, loop_tag: str = "") -> bool:
        """Plan one polite bounce per message; a sender who must not be answered
        (a machine, a list, a failed authentication) is told in the reason."""
        if self._answered:
            return False
        why_not = replies.why_not_answer(self.parsed, self.verdict)
        if why_not:
            self.plan.reason += " " + _("(Not answered: %(why)s.)") % {"why": why_not}
            return False
        self._answered = True
        self.plan.answer, self.plan.loop_tag = text, loop_tag
        return True
