"""Two first /api/schema/ requests at once in one gthread worker: one was a 500 (the live probe with
two roles at a time): drf-spectacular resolved its extensions' target classes lazily and not
thread-safely (config/schema.py)."""
import importlib
import sys
import threading

from drf_spectacular import extensions
from drf_spectacular.plumbing import OpenApiGeneratorExtension

importlib.import_module("config.urls")  # the URLconf resolves them when it is loaded, before any request

BASES = (extensions.OpenApiAuthenticationExtension, extensions.OpenApiSerializerExtension,
         extensions.OpenApiSerializerFieldExtension, extensions.OpenApiViewExtension,
         extensions.OpenApiFilterExtension)


def test_every_schema_extension_is_resolved_before_the_first_request():
    registered = [ext for base in BASES for ext in base._registry if ext not in BASES]
    assert len(registered) > 20  # drf-spectacular's contrib (rest_auth, simplejwt, …) and ours
    assert [e.__name__ for e in registered if isinstance(e.target_class, str)] == []


def test_an_unresolved_extension_races_as_it_did_and_the_loader_resolves_it_first():
    """The race itself, on a throw-away extension for an app that is not installed: many threads
    resolving it at once fail the way the probe's 500 did; config.schema's loader leaves nothing to
    resolve by the time requests come."""
    from config.schema import load_schema_extensions

    class Missing(OpenApiGeneratorExtension):
        _registry = []
        target_class = "dj_rest_auth.views.LoginView"

    errors = []

    def resolve():
        try:
            for _ in range(5000):
                if errors:
                    return
                Missing.target_class = "dj_rest_auth.views.LoginView"
                Missing._matches(object)
        except AttributeError as exc:
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads switch often, as a busy gthread worker's do
    try:
        threads = [threading.Thread(target=resolve) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors and "startswith" in str(errors[0])  # what the unguarded lazy resolution does
    Missing.target_class = "dj_rest_auth.views.LoginView"
    extensions.OpenApiViewExtension._registry.append(Missing)
    try:
        assert load_schema_extensions() == 1 and Missing.target_class is None
    finally:
        extensions.OpenApiViewExtension._registry.remove(Missing)

