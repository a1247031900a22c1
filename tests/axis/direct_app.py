"""A WSGI application for tests/axis/test_gunicorn.py: reads its body with ``wsgi_body.direct``.

``X-Read: N`` reads only the first N bytes (gunicorn must drain the rest itself); the answer
says whether the socket was read directly, how many bytes came, and their SHA-256.
"""
import hashlib
import json

from devices.axis import wsgi_body


def application(environ, start_response):
    value = environ.get("CONTENT_LENGTH")
    length = int(value) if value not in (None, "") else None
    want = int(environ.get("HTTP_X_READ", "-1"))
    direct = wsgi_body.direct(environ, length)
    sha, count = hashlib.sha256(), 0
    while want < 0 or count < want:
        step = 1 << 20 if want < 0 else min(1 << 20, want - count)
        data = direct.read(step) if direct is not None else environ["wsgi.input"].read(step)
        if not data:
            break
        sha.update(data)
        count += len(data)
    out = json.dumps({"direct": direct is not None, "count": count, "sha256": sha.hexdigest(),
                      "path": environ["PATH_INFO"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]
