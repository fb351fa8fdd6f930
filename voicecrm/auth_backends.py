"""Authentication backends (settings.AUTHENTICATION_BACKENDS)."""

from axes.backends import AxesStandaloneBackend


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check, for sign-ins that come with a request (the admin form, the API's
    token login). Code that calls authenticate() without one (scripts, the test client's login())
    has no client IP to count by, so it goes straight to the password check instead of failing."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
