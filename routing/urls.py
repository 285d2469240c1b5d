"""URLs of the routing app."""

app_name = "routing"
urlpatterns: list = []
