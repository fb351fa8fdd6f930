"""Tokens: sign in for one that expires (only its digest is stored), sign out to revoke it."""

from drf_spectacular.utils import extend_schema, inline_serializer
from knox import views as knox_views
from rest_framework import serializers as drf_serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny


@extend_schema(
    request=AuthTokenSerializer,
    responses={200: inline_serializer("Token", {"expiry": drf_serializers.DateTimeField(),
                                                "token": drf_serializers.CharField()}), 400: None, 429: None},
    description="Exchange a username and password for a token that expires. Send it as `Authorization: Token <token>`.",
)
class TokenLoginView(knox_views.LoginView):
    """POST username and password, get a token that expires (REST_KNOX["TOKEN_TTL"]); only its digest is stored.

    The credentials are the only authentication here (no session, so no CSRF), and the view has the
    strict `api_login` throttle scope on top of the anonymous rate: password guessing is slowed per IP.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_scope = "api_login"

    def post(self, request, format=None):
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        request.user = serializer.validated_data["user"]
        return super().post(request, format=format)


@extend_schema(request=None, responses={204: None, 401: None}, description="Revoke the token sent with this request.")
class TokenLogoutView(knox_views.LogoutView):
    pass


@extend_schema(request=None, responses={204: None, 401: None}, description="Revoke every token of the signed-in user.")
class TokenLogoutAllView(knox_views.LogoutAllView):
    pass
