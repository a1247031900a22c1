"""The OpenAPI schema (/api/schema/, drf-spectacular)."""


def load_schema_extensions() -> int:
    """Resolve every drf-spectacular extension's target class now, once, in one thread.

    drf-spectacular resolves them on first use and not thread-safely: while one thread finds that an
    extension's target (an app we do not install, dj_rest_auth…) cannot be imported and sets it to
    None, another thread reads None as the dotted path and fails. Two first /api/schema/ requests at
    once in one gthread worker made one of them a 500 (the live probe, two roles at a time).
    Returns how many were resolved."""
    import importlib

    from drf_spectacular.plumbing import OpenApiGeneratorExtension

    importlib.import_module("drf_spectacular.openapi")  # imports drf_spectacular.contrib: its extensions
    resolved = 0
    for base in OpenApiGeneratorExtension.__subclasses__():  # one registry per kind (view, serializer…)
        for ext in list(base._registry):
            if isinstance(getattr(ext, "target_class", None), str):
                ext._load_class()
                resolved += 1
    return resolved
