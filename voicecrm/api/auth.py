"""Signing in to the API: tokens (django-rest-knox) and JWTs (djangorestframework-simplejwt), from one login.

`POST /auth/login/` answers both at once, so clients written for the token (`{"expiry", "token"}`)
keep working and JWT clients read `access` and `refresh` from the same answer:
- the token: `Authorization: Token …`, stored as a digest, expires after API_TOKEN_TTL_HOURS;
  `/auth/logout/` revokes the one sent;
- the JWT pair: `Authorization: Bearer <access>`, minutes long (API_JWT_ACCESS_MINUTES) and never
  stored; `<refresh>` (API_JWT_REFRESH_HOURS) gets a new pair at `/auth/refresh/`, which revokes it
  (rotation: a stolen refresh token works once, for whoever is first); `/auth/logout/` with
  `{"refresh": …}` revokes one. Only a refresh token's id and a digest of it are stored.
`/auth/logoutall/` revokes every token and refresh token of the user. JWTs are signed with
API_JWT_SIGNING_KEY, never SECRET_KEY itself (settings.py).
"""

import hashlib

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.utils import timezone
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from knox import views as knox_views
from knox.models import AuthToken
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import exceptions as jwt_exceptions
from rest_framework_simplejwt import tokens as jwt_tokens
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.utils import datetime_from_epoch, get_md5_hash_password

# --- JWTs ------------------------------------------------------------------------------------------------


class RefreshToken(jwt_tokens.RefreshToken):
    """simplejwt's refresh token, of which only a digest is stored.

    simplejwt keeps every refresh token it issues in OutstandingToken.token as text, so a copy of
    the database would hold working credentials; here that column holds a SHA-256 digest (the
    blacklist goes by the `jti` claim only).
    """

    @classmethod
    def for_user(cls, user) -> "RefreshToken":
        # Token.for_user makes the claims; BlacklistMixin.for_user would store the token's text.
        token = jwt_tokens.Token.for_user.__func__(cls, user)
        token.outstand(user=user)
        return token

    def outstand(self, user=None) -> tuple[OutstandingToken, bool]:
        if user is None:  # the token's user, unless deleted since
            user = get_user_model().objects.filter(**{jwt_settings.USER_ID_FIELD: self.get(jwt_settings.USER_ID_CLAIM)}).first()
        return OutstandingToken.objects.get_or_create(jti=self[jwt_settings.JTI_CLAIM], defaults={
            "user": user, "token": token_digest(str(self)),
            "created_at": self.current_time, "expires_at": datetime_from_epoch(self["exp"]),
        })

    def blacklist(self) -> tuple[BlacklistedToken, bool]:
        outstanding, _created = self.outstand()
        return BlacklistedToken.objects.get_or_create(token=outstanding)


def token_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class JWTScheme(SimpleJWTScheme):
    """drf-spectacular: the API's JWTAuthentication is simplejwt's Bearer scheme (`jwtAuth`) in the schema."""

    target_class = "voicecrm.api.authentication.JWTAuthentication"


def jwt_pair(*, user) -> dict[str, str]:
    refresh = RefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def _active_user_of(token: RefreshToken):
    user = get_user_model().objects.filter(**{jwt_settings.USER_ID_FIELD: token.get(jwt_settings.USER_ID_CLAIM)}).first()
    if user is None or not user.is_active:
        raise AuthenticationFailed("No active account for this token.")
    if jwt_settings.CHECK_REVOKE_TOKEN and token.get(jwt_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
        raise AuthenticationFailed("The password has changed since this token was issued: sign in again.")
    return user


@transaction.atomic
def jwt_refresh(*, raw: str) -> dict[str, str]:
    """A new access and refresh token for a valid refresh token, which is revoked (rotation).

    The token's row is locked, so two requests with the same refresh token get one new pair:
    the second waits, then finds it revoked (401). Raises AuthenticationFailed.
    """
    try:
        token = RefreshToken(raw)  # well formed, signed with our key, unexpired, not revoked
    except jwt_exceptions.TokenError:
        raise AuthenticationFailed("The refresh token is invalid, expired or revoked.") from None
    outstanding = OutstandingToken.objects.select_for_update().filter(jti=token[jwt_settings.JTI_CLAIM]).first()
    if outstanding is None or BlacklistedToken.objects.filter(token=outstanding).exists():
        raise AuthenticationFailed("The refresh token is invalid, expired or revoked.")
    user = _active_user_of(token)
    BlacklistedToken.objects.create(token=outstanding)
    return jwt_pair(user=user)


def jwt_revoke(*, raw: str) -> None:
    """Revoke a valid refresh token (sign-out). Raises ValidationError naming `refresh`."""
    try:
        token = RefreshToken(raw)
    except jwt_exceptions.TokenError:
        raise ValidationError({"refresh": ["The refresh token is invalid, expired or already revoked."]}) from None
    token.blacklist()


@transaction.atomic
def api_credentials_revoke_all(*, user) -> None:
    """Sign a user out everywhere: every token deleted, every unexpired refresh token revoked.
    Access tokens already issued run out within API_JWT_ACCESS_MINUTES."""
    AuthToken.objects.filter(user=user).delete()
    live = OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True)
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token=outstanding) for outstanding in live],
                                         ignore_conflicts=True)


# --- Views -------------------------------------------------------------------------------------------------

LOGIN_RESPONSE = inline_serializer("Login", {
    "expiry": drf_serializers.DateTimeField(help_text="When `token` expires."),
    "token": drf_serializers.CharField(help_text="Send as `Authorization: Token <token>`."),
    "access": drf_serializers.CharField(help_text="A JWT: send as `Authorization: Bearer <access>`; lasts minutes."),
    "refresh": drf_serializers.CharField(help_text="A JWT for POST /auth/refresh/, which answers a new pair."),
})
JWT_PAIR = inline_serializer("JWTPair", {
    "access": drf_serializers.CharField(help_text="Send as `Authorization: Bearer <access>`; lasts minutes."),
    "refresh": drf_serializers.CharField(help_text="The next refresh token: the one sent is now revoked."),
})


class RefreshSerializer(drf_serializers.Serializer):
    refresh = drf_serializers.CharField(max_length=4096, help_text="The refresh token from the login or the last refresh.")


class LogoutSerializer(drf_serializers.Serializer):
    refresh = drf_serializers.CharField(max_length=4096, required=False, help_text="A refresh token to revoke.")


@extend_schema(
    request=AuthTokenSerializer,
    responses={200: LOGIN_RESPONSE, 400: None, 429: None},
    description="Exchange a username and password for a token (`Authorization: Token <token>`, expires at "
                "`expiry`) and a JWT pair (`Authorization: Bearer <access>`; renew at /auth/refresh/). Use either. "
                "Wrong credentials or an inactive user: 400. At most API_THROTTLE_LOGIN attempts per client address.",
    examples=[OpenApiExample("Sign in", request_only=True, value={"username": "dispatch", "password": "…"})],
)
class TokenLoginView(knox_views.LoginView):
    """POST username and password, get a token that expires (REST_KNOX["TOKEN_TTL"]; only its digest is
    stored) and a JWT pair.

    The credentials are the only authentication here (no session, so no CSRF), and the view has the
    strict `api_login` throttle scope on top of the anonymous rate: password guessing is slowed per IP.
    The sign-in goes through the project's authentication backends, so django-axes' lockout per
    username and IP counts these failures too.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_scope = "api_login"

    def post(self, request, format=None):
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        request.user = serializer.validated_data["user"]
        return super().post(request, format=format)

    def get_post_response_data(self, request, token, instance) -> dict:
        return {**super().get_post_response_data(request, token, instance), **jwt_pair(user=request.user)}


@extend_schema(
    request=RefreshSerializer,
    responses={200: JWT_PAIR, 400: None, 401: None, 429: None},
    description="Exchange a refresh token for a new access and refresh token. The one sent is revoked: send it "
                "again and the answer is 401. An expired or revoked refresh token, or an inactive user: 401.",
)
class TokenRefreshView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_scope = "api_refresh"

    def get_authenticate_header(self, request) -> str:
        # With no authentication classes DRF would turn the 401 for a bad refresh token into a 403.
        return 'Bearer realm="api"'

    def post(self, request, format=None):
        serializer = RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(jwt_refresh(raw=serializer.validated_data["refresh"]))


@extend_schema(
    request=LogoutSerializer,
    responses={204: None, 400: None, 401: None, 429: None},
    description="Sign out: revokes the token this request is authenticated with (`Authorization: Token …`) and "
                "the refresh token in the body, if any. A JWT client sends its refresh token (its access token "
                "runs out by itself within minutes). With neither: 401; a refresh token that is not valid: 400, "
                "and nothing is revoked.",
)
class TokenLogoutView(APIView):
    permission_classes = [AllowAny]

    def post(self, request, format=None):
        serializer = LogoutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        raw = serializer.validated_data.get("refresh")
        token = request.auth if isinstance(request.auth, AuthToken) else None
        if token is None and raw is None:
            if request.user.is_authenticated:
                raise ValidationError({"refresh": ["Send the refresh token to revoke: an access token cannot be."]})
            raise NotAuthenticated()
        with transaction.atomic():
            if raw is not None:
                jwt_revoke(raw=raw)
            if token is not None:
                token.delete()
        if token is not None:
            user_logged_out.send(sender=request.user.__class__, request=request, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(request=None, responses={204: None, 401: None, 429: None},
               description="Sign out everywhere: revokes every token and refresh token of the signed-in user. "
                           "Access tokens already issued run out within minutes.")
class TokenLogoutAllView(APIView):
    permission_classes = [IsAuthenticated]

    def post(self, request, format=None):
        api_credentials_revoke_all(user=request.user)
        user_logged_out.send(sender=request.user.__class__, request=request, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

