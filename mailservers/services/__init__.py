"""Mail server services: import from the submodule (outgoing, incoming, oauth)."""
