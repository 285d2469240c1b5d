"""URLs of the routing app (technical pages)."""

from django.urls import path

from routing import views

app_name = "routing"
urlpatterns = [
    path("aliases/", views.alias_list, name="alias-list"),
    path("aliases/new/", views.alias_edit, name="alias-create"),
    path("aliases/<int:pk>/", views.alias_edit, name="alias-edit"),
    path("unprocessed/", views.unprocessed_list, name="unprocessed-list"),
    path("unprocessed/<int:pk>/", views.unprocessed_detail, name="unprocessed-detail"),
    path("unprocessed/<int:pk>/raw/", views.unprocessed_raw, name="unprocessed-raw"),
    path(
        "unprocessed/<int:pk>/reprocess/",
        views.unprocessed_reprocess,
        name="unprocessed-reprocess",
    ),
    path(
        "unprocessed/<int:pk>/discard/",
        views.unprocessed_discard,
        name="unprocessed-discard",
    ),
]
