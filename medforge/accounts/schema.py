"""OpenAPI descriptions of the two authentication schemes."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "medforge.accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "Personal API token (`mf_...`), created under /api/v2/me/tokens."}


class CookieScheme(OpenApiAuthenticationExtension):
    target_class = "medforge.accounts.authentication.CookieSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "mf_session"}
