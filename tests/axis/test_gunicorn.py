"""Under gunicorn (the server of compose.yaml), clip bodies are read straight from the socket.

``devices.axis.wsgi_body`` takes over gunicorn's reader for a body of known length; these tests
run a real gunicorn and check what must not change when it does: the bytes (all of them, in
order), keep-alive, pipelined requests, a body the application reads only in part, a client that
stops sending, and chunked bodies (left to gunicorn). Then a body worn system's session against
Témoin itself under gunicorn.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import call_command

from audit.models import CustodyEvent
from evidence.models import Recording

from ..conftest import free_port
from ..workers import start_process, stop_process, wait_for
from .bws import BodyWornSystem
from .conftest import SERIAL, TRIGGER_ON, Registered, clip_metadata, open_recording, sha256, upload_clip

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def start_gunicorn(app: str, env: dict, log: Path, *, threads: int = 2) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = start_process([sys.executable, "-m", "gunicorn", app, "-b", f"127.0.0.1:{port}", "-k", "gthread",
                          "--workers", "1", "--threads", str(threads), "--timeout", "120"], env, log)
    try:
        wait_for(lambda: proc.poll() is not None or _listening(port), 60, "gunicorn listening", [log])
        assert proc.poll() is None, f"gunicorn exited: {log.read_text(errors='replace')[-3000:]}"
    except BaseException:
        stop_process(proc)
        raise
    return proc, port


@pytest.fixture(scope="module")
def direct_server(tmp_path_factory):
    log = tmp_path_factory.mktemp("gunicorn") / "direct.log"
    proc, port = start_gunicorn("tests.axis.direct_app:application", dict(os.environ), log)
    yield port
    stop_process(proc)


def answer(response) -> dict:
    assert response.status == 200
    return json.loads(response.read())


def test_bodies_are_read_from_the_socket_and_the_connection_stays_usable(direct_server):
    conn = http.client.HTTPConnection("127.0.0.1", direct_server, timeout=60)
    socks = set()
    for size in (3 * MIB + 7, MIB, 1, 0):
        body = os.urandom(size)
        conn.request("PUT", f"/clip-{size}", body=body)
        got = answer(conn.getresponse())
        assert got == {"direct": True, "count": size, "sha256": sha256(body), "path": f"/clip-{size}"}
        socks.add(conn.sock)
    assert len(socks) == 1  # one keep-alive connection throughout
    conn.close()


def test_a_body_read_in_part_is_drained_by_gunicorn_before_the_next_request(direct_server):
    """gunicorn drains what the application left (up to 64 KiB, else it closes the connection):
    it must know exactly how much is left, or the next request would start mid-body."""
    conn = http.client.HTTPConnection("127.0.0.1", direct_server, timeout=60)
    body = os.urandom(2 * MIB + 3)
    read = len(body) - 10_000
    conn.request("PUT", "/part", body=body, headers={"X-Read": str(read)})
    assert answer(conn.getresponse()) == {"direct": True, "count": read, "sha256": sha256(body[:read]),
                                          "path": "/part"}
    sock = conn.sock
    after = os.urandom(5000)
    conn.request("PUT", "/after", body=after)
    assert answer(conn.getresponse()) == {"direct": True, "count": 5000, "sha256": sha256(after), "path": "/after"}
    assert conn.sock is sock  # the same connection (http.client would silently reconnect)
    conn.close()


def _raw_request(path: str, body: bytes, declared: int | None = None) -> bytes:
    length = len(body) if declared is None else declared
    return (f"PUT {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {length}\r\n\r\n").encode() + body


def _read_answers(sock: socket.socket, count: int, data: bytes = b"") -> list[dict]:
    answers = []
    while len(answers) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = int([h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0])
            if len(rest) >= length:
                answers.append(json.loads(rest[:length]))
                data = rest[length:]
                continue
        more = sock.recv(65536)
        assert more, f"connection closed after {len(answers)} answers"
        data += more
    return answers


def test_pipelined_requests_stay_apart(direct_server):
    """The next request, already in gunicorn's buffer behind this body, is left to gunicorn."""
    first, second = os.urandom(3000), os.urandom(4000)
    with socket.create_connection(("127.0.0.1", direct_server), timeout=60) as sock:
        sock.sendall(_raw_request("/one", first) + _raw_request("/two", second))
        one, two = _read_answers(sock, 2)
    assert one == {"direct": True, "count": 3000, "sha256": sha256(first), "path": "/one"}
    assert two == {"direct": True, "count": 4000, "sha256": sha256(second), "path": "/two"}


def test_a_client_that_stops_sending_gives_a_short_body(direct_server):
    """Fewer bytes than announced come back as such; Témoin's RequestBody turns that into a 499."""
    sent = os.urandom(MIB + 100)
    with socket.create_connection(("127.0.0.1", direct_server), timeout=60) as sock:
        sock.sendall(_raw_request("/cut", sent, declared=3 * MIB))
        sock.shutdown(socket.SHUT_WR)
        (got,) = _read_answers(sock, 1)
    assert got == {"direct": True, "count": len(sent), "sha256": sha256(sent), "path": "/cut"}


def test_a_client_that_waits_for_100_continue_gets_it_then_sends_the_body(direct_server):
    body = os.urandom(MIB + 11)
    with socket.create_connection(("127.0.0.1", direct_server), timeout=60) as sock:
        sock.sendall(f"PUT /expect HTTP/1.1\r\nHost: test\r\nContent-Length: {len(body)}\r\n"
                     "Expect: 100-continue\r\n\r\n".encode())
        interim = sock.recv(64)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        (got,) = _read_answers(sock, 1, interim[len(b"HTTP/1.1 100 Continue\r\n\r\n"):])
    assert got == {"direct": True, "count": len(body), "sha256": sha256(body), "path": "/expect"}


def test_chunked_bodies_are_left_to_gunicorn(direct_server):
    conn = http.client.HTTPConnection("127.0.0.1", direct_server, timeout=60)
    parts = [os.urandom(70000), os.urandom(5)]
    conn.request("PUT", "/chunked", body=iter(parts), encode_chunked=True)
    got = answer(conn.getresponse())
    assert got == {"direct": False, "count": 70005, "sha256": sha256(b"".join(parts)), "path": "/chunked"}
    conn.close()


def test_only_plain_sockets_of_gunicorn_bodies_of_known_length_are_taken_over():
    import ssl

    from gunicorn.http.body import Body, ChunkedReader, LengthReader
    from gunicorn.http.unreader import SocketUnreader

    from devices.axis import wsgi_body

    def environ(sock, length, reader=None):
        unreader = SocketUnreader(sock)
        return {"gunicorn.socket": sock, "wsgi.input": Body(reader or LengthReader(unreader, length))}

    a, b = socket.socketpair()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).wrap_socket(socket.socket(), server_side=True,
                                                          do_handshake_on_connect=False)
    try:
        assert isinstance(wsgi_body.direct(environ(a, 10), 10), wsgi_body.DirectBody)
        assert wsgi_body.direct(environ(a, 10), None) is None  # no Content-Length
        assert wsgi_body.direct(environ(a, 10), 11) is None  # not the length gunicorn reads
        assert wsgi_body.direct(environ(tls, 10), 10) is None  # gunicorn serving TLS itself
        assert wsgi_body.direct({"wsgi.input": io.BytesIO(b"x")}, 1) is None  # another server
        chunked = environ(a, 0, reader=ChunkedReader(None, SocketUnreader(a)))
        assert wsgi_body.direct(chunked, 10) is None
    finally:
        for s in (a, b, tls):
            s.close()


def test_slices_are_page_aligned_for_the_stores_direct_writes_and_are_reused(settings):
    """Issue 19: what the socket is read into can be written with O_DIRECT (whole 1 MiB slices of
    page-aligned memory); the short last slice too is a mapping, and the pool takes the full ones back."""
    from gunicorn.http.body import Body, LengthReader
    from gunicorn.http.unreader import SocketUnreader

    from devices.axis import wsgi_body
    from evidence.integrations.direct_io import aligned

    settings.TEMOIN_AXIS_BUFFER_POOL = 4 * wsgi_body.SLICE
    payload = os.urandom(2 * wsgi_body.SLICE + 1000)
    a, b = socket.socketpair()
    sender = threading.Thread(target=b.sendall, args=(payload,))
    sender.start()
    try:
        body = wsgi_body.direct({"gunicorn.socket": a, "wsgi.input": Body(LengthReader(SocketUnreader(a), len(payload)))},
                                len(payload))
        slices = []
        while data := body.read(wsgi_body.SLICE):
            slices.append(data)
    finally:
        sender.join()
        a.close()
        b.close()
    assert b"".join(slices) == payload
    assert [len(s) for s in slices] == [wsgi_body.SLICE, wsgi_body.SLICE, 1000]
    assert aligned(slices[0]) and aligned(slices[1])
    wsgi_body.POOL.free.clear()
    wsgi_body.POOL.give(slices)
    assert [id(buf) for buf in wsgi_body.POOL.free] == [id(slices[0].obj), id(slices[1].obj)]
    assert wsgi_body.POOL.take(wsgi_body.SLICE) is slices[1].obj


# --- Témoin itself under gunicorn ----------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_recording_uploaded_to_temoin_under_gunicorn(org, officer, local_store, child_env, tmp_path):
    env = {**child_env, "TEMOIN_DATA_DIR": str(tmp_path / "data"), "DJANGO_DEBUG": "false",
           "DJANGO_SECRET_KEY": "test-gunicorn"}
    log = tmp_path / "gunicorn.log"
    proc, port = start_gunicorn("config.wsgi", env, log, threads=4)
    try:
        out = io.StringIO()
        call_command("axis_connection_file", "--org", org.slug, "--url", f"http://127.0.0.1:{port}", stdout=out,
                     stderr=io.StringIO())
        bws = BodyWornSystem(json.loads(out.getvalue()))
        assert bws.authenticate().status_code == 200
        user_uuid = "6c8f1f0e-3f7e-4d55-9a53-5b1c7b3c2a10"
        assert bws.put_object(f"Users/{user_uuid}", metadata={
            "Name": "Jeanne Martin", "Active": "True", "UserID": officer.matricule}).status_code == 201
        assert bws.put_object(f"Devices/{SERIAL}", metadata={"Name": "Caméra 42", "Model": "W110"}).status_code == 201
        reg = Registered(bws=bws, user_uuid=user_uuid, serial=SERIAL)
        container = open_recording(reg)

        # Two clips on one keep-alive connection, one of them not a whole number of slices.
        clips = [os.urandom(3 * MIB + 5), os.urandom(MIB)]
        names = []
        for i, data in enumerate(clips):
            name, response = upload_clip(reg, container, data, TRIGGER_ON.replace(minute=31 + i), recording_id=str(i))
            assert response.status_code == 201, response.text
            names.append(name)
        # A dock that loses its link halfway: 499, nothing acknowledged; sent again, stored.
        third = os.urandom(2 * MIB)
        cut_name = f"{TRIGGER_ON.strftime('%Y%m%dT%H%M%SZ')}_9.mp4"
        status = bws.put_truncated(f"{container}/{cut_name}", third[:MIB], declared=len(third),
                                   metadata=clip_metadata(TRIGGER_ON, 3))
        assert status == 499
        assert bws.put_object(f"{container}/{cut_name}", third, clip_metadata(TRIGGER_ON, 3)).status_code == 201
        # A dock whose connection is reset mid-body (RST): the same, an interrupted upload.
        fourth = os.urandom(2 * MIB)
        reset_name = f"{TRIGGER_ON.strftime('%Y%m%dT%H%M%SZ')}_8.mp4"
        bws.put_truncated(f"{container}/{reset_name}", fourth[:MIB // 2], declared=len(fourth),
                          metadata=clip_metadata(TRIGGER_ON, 3), reset=True)
        wait_for(lambda: Recording.objects.filter(source_path__endswith=reset_name,
                                                  status=Recording.Status.FAILED).exists(),
                 30, "the reset upload marked failed", [log])
        failed = Recording.objects.get(source_path__endswith=reset_name)
        assert failed.status_message.startswith(f"upload ended after {MIB // 2} of {len(fourth)} bytes")
        assert bws.put_object(f"{container}/{reset_name}", fourth, clip_metadata(TRIGGER_ON, 3)).status_code == 201
        assert bws.post_container(container, {"Status": "Complete"}).status_code == 204
    finally:
        stop_process(proc)

    stored = Recording.objects.filter(status=Recording.Status.STORED).order_by("source_path")
    by_name = {r.source_path.rsplit("/", 1)[1]: r for r in stored}
    assert set(by_name) == {*names, cut_name, reset_name}
    for name, data in [*zip(names, clips), (cut_name, third), (reset_name, fourth)]:
        rec = by_name[name]
        assert rec.sha256 == sha256(data) and rec.size == len(data)
        with local_store.open(rec.store_key) as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == sha256(data)
        verified = CustodyEvent.objects.get(recording=rec, action="recording.verified")
        assert verified.details["read_back"] == "byte-for-byte"
    # The interrupted uploads failed on the record, then the same recordings were received again.
    for name in (cut_name, reset_name):
        assert list(CustodyEvent.objects.filter(recording=by_name[name]).values_list("action", flat=True)) == [
            "recording.collected", "recording.store_failed", "recording.collect_retried", "recording.stored",
            "recording.verified"]
    assert Recording.objects.count() == 4
