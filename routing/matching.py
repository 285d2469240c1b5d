"""Reads of the routing pipeline: which record, alias and author a message belongs to.

Every lookup here is a constant number of indexed queries whatever the number of
stored messages (Message.message_id and Record.reply_token are unique indexes), so
routing speed does not degrade as the feed grows.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.db.models.functions import Upper

from feed.models import Follower, Message, MessageRecipient
from knowlix import params
from knowlix.models import Contact, Record
from knowlix.records import RECORD_MODELS
from mailservers.models import OutgoingMail
from routing.models import Alias
from routing.parsing import ParsedMessage

REPLY_PREFIX = "reply+"
TRUSTED_AUTHSERV_IDS = "mail.gateway.authserv_ids"  # comma-separated


@dataclass
class Target:
    """A record the message replies to, and how it was found."""

    record: Record
    parent: Message | None
    found_by: str  # "token", "headers", "subject tag"


@dataclass
class Author:
    user: User | None = None
    contact: Contact | None = None

    @property
    def is_known(self) -> bool:
        return self.user is not None or self.contact is not None


def split_address(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    return local, domain.lower()


def our_domain() -> str:
    return params.catchall_domain()


def addressed_to_us(parsed: ParsedMessage) -> bool:
    """True if any recipient is at the catch-all domain (or a subdomain of it)."""
    domain = our_domain()
    return any(
        d == domain or d.endswith("." + domain)
        for _, d in map(split_address, parsed.recipients)
    )


def is_to_bounce_alias(parsed: ParsedMessage) -> bool:
    alias = (params.get_param(params.BOUNCE_ALIAS) or "bounce").lower()
    domain = our_domain()
    for local, d in map(split_address, parsed.recipients):
        if d == domain and (local == alias or local.startswith(alias + "+")):
            return True
    return False


def verp_tokens(parsed: ParsedMessage) -> list[str]:
    """The tokens of ``bounce+<token>@<catch-all>`` recipients (VERP: the envelope
    sender of each recipient's transaction, where its bounce comes back)."""
    alias = (params.get_param(params.BOUNCE_ALIAS) or "bounce").lower()
    domain = our_domain()
    prefix = alias + "+"
    tokens: list[str] = []
    for local, d in map(split_address, parsed.recipients):
        if d == domain and local.startswith(prefix) and local[len(prefix) :]:
            tokens.append(local[len(prefix) :])
    return list(dict.fromkeys(tokens))


def is_system_address(address: str, *, alias_names: set[str] | None = None) -> bool:
    """One of Knowlix's own addresses: default From, bounce, reply+token, an alias.

    Colleagues' addresses at the same domain are not system addresses.
    ``alias_names``: every alias name (active or not) that ``address`` could have,
    when the caller read them already (see :func:`alias_names`).
    """
    if address.lower() == params.default_from_address().lower():
        return True  # also when mail.default.from is a full address elsewhere
    local, domain = split_address(address)
    if domain != our_domain():
        return False
    system = {
        (params.get_param(params.DEFAULT_FROM) or "").lower(),
        (params.get_param(params.BOUNCE_ALIAS) or "").lower(),
    }
    if local in system or local.startswith(REPLY_PREFIX):
        return True
    if alias_names is not None:
        return local in alias_names
    return Alias.objects.filter(name=local).exists()


def find_token_target(parsed: ParsedMessage) -> Target | None:
    """``reply+<token>@<catch-all>`` in the recipients (tokens are case-sensitive)."""
    domain = our_domain()
    tokens = [
        local[len(REPLY_PREFIX) :]
        for local, d in map(split_address, parsed.recipients_cased)
        if d == domain and local.lower().startswith(REPLY_PREFIX)
    ]
    tokens = [t for t in tokens if t]
    if not tokens:
        return None
    for model in RECORD_MODELS:
        record = model._default_manager.filter(reply_token__in=tokens).first()
        if record is not None:
            return Target(record=record, parent=None, found_by="token")
    # Some MTAs lower-case the address they deliver to (Delivered-To): compared
    # upper-cased, through each record table's index on UPPER(reply_token).
    wanted = [token.upper() for token in tokens]
    for model in RECORD_MODELS:
        records = model._default_manager.alias(token_ci=Upper("reply_token"))
        found = records.filter(token_ci__in=wanted).order_by()[:1]  # the index alone
        record = next(iter(found), None)
        if record is not None:
            return Target(record=record, parent=None, found_by="token")
    return None


def find_thread(parsed: ParsedMessage) -> Target | None:
    """The record and message the mail answers: In-Reply-To, then References.

    Matched against feed messages (sent or received) and against the Message-IDs of
    outgoing mail (one feed message may go out as several mails, each with its id).
    Only business records: a system notice's message hangs off something else (a
    sending domain, a server), which has no feed to post a reply on.
    """
    ids = parsed.thread_ids
    if not ids:
        return None
    found: dict[str, tuple[Message | None, ContentType | None, int | None]] = {
        m.message_id: (m, m.content_type, m.object_id)
        for m in Message.objects.filter(message_id__in=ids).select_related(
            "content_type"
        )
    }
    if ids[0] not in found:
        for mail in OutgoingMail.objects.filter(
            message_id__in=ids, content_type__isnull=False
        ).select_related("content_type", "feed_message"):
            found.setdefault(
                mail.message_id, (mail.feed_message, mail.content_type, mail.object_id)
            )
    for mid in ids:
        if mid in found:
            message, content_type, object_id = found[mid]
            model = content_type.model_class() if content_type is not None else None
            if model is None or not issubclass(model, Record):
                continue
            record = model._default_manager.filter(pk=object_id).first()
            if record is not None:
                return Target(record=record, parent=message, found_by="headers")
    return None


def find_tag_target(parsed: ParsedMessage, *, verified: bool) -> Target | None:
    """A ``[TCK-42]`` subject tag, only if the sender follows or took part in it."""
    if not parsed.subject_tags or not parsed.from_address or not verified:
        return None
    by_tag = {model.TAG: model for model in RECORD_MODELS}
    for tag, pk in parsed.subject_tags:
        model = by_tag.get(tag)
        record = model._default_manager.filter(pk=pk).first() if model else None
        if record is not None and took_part(record, parsed.from_address):
            return Target(record=record, parent=None, found_by="subject tag")
    return None


def took_part(record: Record, address: str) -> bool:
    """The address follows the record, wrote on it, or received mail from it."""
    ct = ContentType.objects.get_for_model(record)
    on_record = {"content_type": ct, "object_id": record.pk}
    if (
        Follower.objects.filter(**on_record)
        .filter(Q(contact__email_normalized=address) | Q(user__email__iexact=address))
        .exists()
    ):
        return True
    if (
        Message.objects.filter(**on_record)
        .filter(
            Q(author_contact__email_normalized=address)
            | Q(author_user__email__iexact=address)
        )
        .exists()
    ):
        return True
    return MessageRecipient.objects.filter(
        message__content_type=ct, message__object_id=record.pk, address__iexact=address
    ).exists()


def alias_names(
    parsed: ParsedMessage, *, only: list[tuple[str, str]] | None = None
) -> list[str]:
    """The names an alias among the recipients could have, in recipient order.
    ``only``: these recipients (e.g. ``parsed.to``) instead of all of them."""
    domain = our_domain()
    locals_: list[str] = []
    addresses = parsed.recipients if only is None else [a.lower() for _n, a in only]
    for local, d in map(split_address, addresses):
        if d != domain or local.startswith(REPLY_PREFIX):
            continue
        for name in (local, local.split("+")[0]):
            if name not in locals_:
                locals_.append(name)
    return locals_


def find_aliases(
    parsed: ParsedMessage, *, known: dict[str, Alias] | None = None
) -> list[Alias]:
    """Active aliases among the recipients, in recipient order (one query).
    ``known``: the aliases (active or not) by name, when the caller read them
    for every name of :func:`alias_names`."""
    locals_ = alias_names(parsed)
    if not locals_:
        return []
    if known is None:
        known = {
            a.name: a
            for a in Alias.objects.filter(name__in=locals_).select_related(
                "content_type"
            )
        }
    seen: list[Alias] = []
    for name in locals_:
        alias = known.get(name)
        if alias is not None and alias.is_active and alias not in seen:
            seen.append(alias)
    return seen


class _NotRead:
    """``find_author(contact=...)`` default: the contact is looked up."""


NOT_READ = _NotRead()


def find_author(
    address: str,
    *,
    record: Record | None,
    verified: bool,
    contact: Contact | None | _NotRead = NOT_READ,
) -> tuple[Author, bool]:
    """Match an address: followers of the record, then users, then contacts.

    Returns (author, is_follower). An unverified sender is never taken for a user:
    it may only match a contact, and the message is marked *unverified sender*.
    ``contact``: the address's oldest contact (or None), when the caller already
    read it.
    """
    if not address:
        return Author(), False
    if record is not None:
        ct = ContentType.objects.get_for_model(record)
        matches = Q(contact__email_normalized=address)
        if verified:
            matches |= Q(user__email__iexact=address, user__is_active=True)
        follower = (
            Follower.objects.filter(content_type=ct, object_id=record.pk)
            .filter(matches)
            .select_related("user", "contact")
            .order_by("user_id")  # NULLs order differently per database: decide below
        )
        rows = list(follower[:2])
        rows.sort(key=lambda f: f.user_id is None)  # users first
        if rows:
            return Author(user=rows[0].user, contact=rows[0].contact), True
    if verified:
        user = (
            get_user_model()
            .objects.filter(email__iexact=address, is_active=True)
            .order_by("pk")
            .first()
        )
        if user is not None:
            return Author(user=user), False
    if isinstance(contact, _NotRead):
        contact = (
            Contact.objects.filter(email_normalized=address).order_by("pk").first()
        )
    return Author(contact=contact), False


def trusted_authserv_ids() -> set[str]:
    value = params.get_param(TRUSTED_AUTHSERV_IDS) or ""
    return {v.strip().lower() for v in value.split(",") if v.strip()}
