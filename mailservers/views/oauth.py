"""OAuth mail server pages."""

urlpatterns: list = []
# Mounted at the site root: /microsoft_outlook/confirm and /google_gmail/confirm.
root_urlpatterns: list = []
