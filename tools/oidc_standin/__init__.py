"""A local OpenID Connect provider for development and tests (see server.py): not for production."""

from tools.oidc_standin.server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, OidcStandin

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "OidcStandin"]
