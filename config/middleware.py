"""French first: the interface is in French unless the user chose another language."""
from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import translation


class FrenchFirstLocaleMiddleware(LocaleMiddleware):
    """Like Django's, but the browser's Accept-Language is not followed: municipal police stations
    often run browsers in English; the users' language is French. English is a choice (the language
    switcher stores it in a cookie)."""

    def process_request(self, request):
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
        language = chosen if chosen in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()


class PlainNotFoundMiddleware:
    """With DEBUG on (`make run`), Django answers an unknown URL with its technical page, which lists
    every route of the project: a map for whoever probes the embedded default (issue 17, finding 7).
    The developer keeps DEBUG's tracebacks; the 404 is the same plain page as in production."""

    MARKERS = (b"Django tried these URL patterns", b"technical_404", b'<meta name="robots" content="NONE,NOARCHIVE">')

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (settings.DEBUG and response.status_code == 404 and not getattr(response, "streaming", False)
                and response.get("Content-Type", "").startswith("text/html")
                and any(marker in response.content for marker in self.MARKERS)):
            from django.views.defaults import page_not_found

            from django.http import Http404

            return page_not_found(request, Http404())
        return response
