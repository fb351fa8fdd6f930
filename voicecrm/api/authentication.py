"""How API requests authenticate (REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]); signing in is auth.py.

Named in settings, which DRF resolves while rest_framework.views is being imported, so this
module must not import views, generics or viewsets (nor drf-spectacular, which does).
"""

from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import authentication as jwt_authentication
from rest_framework_simplejwt import exceptions as jwt_exceptions


class JWTAuthentication(jwt_authentication.JWTAuthentication):
    """`Authorization: Bearer <access token>`, answered in the API's one error format.

    simplejwt's own refusals carry its token internals (`messages`, `token_class`); here a bad,
    expired or forged token, an unknown or inactive user, or a password changed since the token
    was issued is a plain 401 `{"detail": …}`.
    """

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except jwt_exceptions.InvalidToken:
            raise AuthenticationFailed("The access token is invalid or expired.") from None
        except jwt_exceptions.AuthenticationFailed as error:
            detail = error.detail
            raise AuthenticationFailed(str(detail.get("detail", "")) if isinstance(detail, dict) else str(detail)) from None
