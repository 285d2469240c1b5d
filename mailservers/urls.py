"""URLs of mail server pages; each side declares its own ``urlpatterns``."""

from mailservers.views import flow, incoming, oauth, outgoing

app_name = "mailservers"
urlpatterns = (
    outgoing.urlpatterns + incoming.urlpatterns + oauth.urlpatterns + flow.urlpatterns
)
