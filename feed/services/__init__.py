"""Writes to feeds, split by concern; this package re-exports the public services.

- :mod:`.posting`: ``post_message`` / ``post_messages``, the one way to post.
- :mod:`.followers`: ``follow``, ``unfollow``, default followers of new records.
- :mod:`.notices`: record-created and tracking notices, ``notify_users``.
- :mod:`.activities`: schedule, mark done, cancel.
- :mod:`.inbox`: marking notifications read.
- :mod:`.images`: the senders whose remote images a user always shows.
- :mod:`.records`: creating and updating business records with their feed events.
- :mod:`.assignments`: telling people a record or an activity is theirs.
"""

from feed.attachments import AttachmentInput
from feed.defaults import ensure_default_data
from feed.services.activities import (
    cancel_activity,
    default_due_date,
    mark_activity_done,
    schedule_activity,
)
from feed.services.assignments import notify_activity, notify_assignment
from feed.services.followers import follow, new_record_followers, unfollow
from feed.services.images import always_show_images, message_sender_address
from feed.services.inbox import mark_message_read, mark_notifications_read
from feed.services.notices import (
    notify_record_created,
    notify_records_created,
    notify_users,
    post_tracking,
)
from feed.services.posting import (
    NewPost,
    get_subtype,
    new_message_id,
    post_message,
    post_messages,
)
from feed.services.records import create_record, create_records, update_record

__all__ = [
    "AttachmentInput",
    "always_show_images",
    "message_sender_address",
    "NewPost",
    "cancel_activity",
    "create_record",
    "create_records",
    "default_due_date",
    "ensure_default_data",
    "follow",
    "get_subtype",
    "mark_activity_done",
    "mark_message_read",
    "mark_notifications_read",
    "new_message_id",
    "new_record_followers",
    "notify_activity",
    "notify_assignment",
    "notify_record_created",
    "notify_records_created",
    "notify_users",
    "post_message",
    "post_messages",
    "post_tracking",
    "schedule_activity",
    "unfollow",
    "update_record",
]
