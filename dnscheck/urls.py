"""URLs of the dnscheck app."""

app_name = "dnscheck"
urlpatterns: list = []
