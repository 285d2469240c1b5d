"""URLs of the dnscheck app (mounted under /settings/domains/)."""

from django.urls import path

from dnscheck import views

app_name = "dnscheck"
urlpatterns = [
    path("", views.domain_list, name="domain-list"),
    path("new/", views.domain_create, name="domain-create"),
    path("<int:pk>/", views.domain_detail, name="domain-detail"),
    path("<int:pk>/check/", views.domain_check, name="domain-check"),
    path("<int:pk>/delete/", views.domain_delete, name="domain-delete"),
]
