import os

# The web processes never compute with numpy (only the media workers' redaction does): one
# OpenBLAS thread, instead of one per core spinning beside the request threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()


def _warm_up() -> None:
    """Import the URLconf (and through it every view) now, while the worker starts.

    Django imports it on the first request: about a second of CPU during which the worker's other
    request threads wait on the import lock, so the first clip a body worn system sends to each
    worker was held up (docs/benchmarks.md, "Axis content destination").
    """
    import gc

    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - the cached property imports the views
    # Everything imported so far lives as long as the process: out of the garbage collector's
    # sight, each collection has far fewer objects to walk.
    gc.freeze()


_warm_up()
