"""URLs of the feed app (mounted at /feed/)."""

from django.urls import path

from feed import views

app_name = "feed"

record = "r/<int:ct_id>/<int:object_id>/"

urlpatterns = [
    path(record, views.panel, name="panel"),
    path(record + "older/", views.older_messages, name="messages-older"),
    path(record + "changes/", views.feed_changes, name="changes"),
    path(record + "post/", views.post_message_view, name="post"),
    path(record + "follow/", views.follow_view, name="follow"),
    path(record + "followers/add/", views.add_follower, name="follower-add"),
    path(record + "activities/new/", views.schedule_activity, name="activity-schedule"),
    path(
        "followers/<int:follower_id>/remove/",
        views.remove_follower,
        name="follower-remove",
    ),
    path(
        "followers/<int:follower_id>/subtypes/",
        views.edit_subscription,
        name="follower-subtypes",
    ),
    path("activities/", views.my_activities, name="my-activities"),
    path(
        "activities/<int:activity_id>/done/", views.activity_done, name="activity-done"
    ),
    path(
        "activities/<int:activity_id>/cancel/",
        views.activity_cancel,
        name="activity-cancel",
    ),
    path(
        "files/<int:attachment_id>/<path:filename>",
        views.attachment,
        name="attachment",
    ),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/unread-count/", views.unread_count, name="unread-count"),
    path("inbox/read-all/", views.inbox_read_all, name="inbox-read-all"),
    path(
        "inbox/<int:notification_id>/read/",
        views.notification_read,
        name="notification-read",
    ),
    path(
        "inbox/<int:notification_id>/open/",
        views.notification_open,
        name="notification-open",
    ),
    path("messages/", views.message_list, name="message-list"),
    path(
        "scheduled/<int:scheduled_id>/edit/",
        views.scheduled_edit,
        name="scheduled-edit",
    ),
    path(
        "scheduled/<int:scheduled_id>/cancel/",
        views.scheduled_cancel,
        name="scheduled-cancel",
    ),
    path(
        "recipients/<int:recipient_id>/resend/",
        views.resend_recipient,
        name="recipient-resend",
    ),
    path(
        "messages/<int:message_id>/images-always/",
        views.images_always,
        name="images-always",
    ),
    path("people/", views.people, name="people"),
]
