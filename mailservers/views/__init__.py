"""Mail server pages (Settings > Technical > Email)."""
