"""The body worn system's side of the Axis integration API, written from its specification.

A Swift client as the specification describes it: ``GET`` the AuthenticationTokenURI of the
connection file with ``X-Auth-User`` / ``X-Auth-Key``; then requests on ``X-Storage-Url`` with
``X-Auth-Token``; metadata as ``X-<Type>-Meta-<Key>`` headers whose key is lowercase except the
first letter and the letters after a hyphen, values URL-encoded UTF-8.
"""
from __future__ import annotations

import datetime as dt
import json
import socket
import struct
import time
from urllib.parse import quote, urlsplit

import requests


def meta_header(kind: str, key: str) -> str:
    """``("Object", "StartTime")`` → ``X-Object-Meta-Starttime`` (specification's letter case)."""
    return f"X-{kind}-Meta-" + "-".join(part.capitalize() for part in key.split("-"))


def meta_headers(kind: str, metadata: dict) -> dict:
    return {meta_header(kind, k): quote(str(v), safe="") for k, v in metadata.items()}


def epoch(when: dt.datetime) -> str:
    return str(int(when.timestamp()))


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def compact(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


class BodyWornSystem:
    def __init__(self, connection: dict):
        self.connection = connection
        self.http = requests.Session()
        self.token = ""
        self.storage_url = ""

    # -- Access token API --------------------------------------------------------------------------
    def authenticate(self, *, user: str | None = None, key: str | None = None) -> requests.Response:
        response = self.http.get(self.connection["AuthenticationTokenURI"][0], headers={
            "X-Auth-User": self.connection["BlobAPIUserName"] if user is None else user,
            "X-Auth-Key": self.connection["BlobAPIKey"] if key is None else key,
        })
        if response.status_code == 200:
            self.token = response.headers["X-Auth-Token"]
            self.storage_url = response.headers["X-Storage-Url"]
        return response

    # -- Swift requests ------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.storage_url}/{quote(path)}"

    def request(self, method: str, path: str, *, kind: str = "Object", metadata: dict | None = None,
                data: bytes | None = None, headers: dict | None = None) -> requests.Response:
        all_headers = {"X-Auth-Token": self.token, **meta_headers(kind, metadata or {}), **(headers or {})}
        return self.http.request(method, self.url(path), data=data, headers=all_headers)

    def get(self, path: str) -> requests.Response:
        return self.request("GET", path)

    def list(self, container: str) -> requests.Response:
        """What arrived in a container (Swift listing, JSON format)."""
        return self.http.get(self.url(container), params={"format": "json"}, headers={"X-Auth-Token": self.token})

    def head(self, path: str) -> requests.Response:
        return self.request("HEAD", path)

    def put_container(self, name: str, metadata: dict) -> requests.Response:
        return self.request("PUT", name, kind="Container", metadata=metadata, data=b"")

    def post_container(self, name: str, metadata: dict) -> requests.Response:
        return self.request("POST", name, kind="Container", metadata=metadata)

    def put_object(self, path: str, data: bytes = b"", metadata: dict | None = None, **kw) -> requests.Response:
        return self.request("PUT", path, metadata=metadata, data=data, **kw)

    def post_object(self, path: str, metadata: dict) -> requests.Response:
        return self.request("POST", path, metadata=metadata)

    def put_truncated(self, path: str, data: bytes, *, declared: int, metadata: dict,
                      reset: bool = False) -> int | None:
        """PUT announcing ``declared`` bytes, send ``data`` (fewer), stop sending: the dock lost its link.

        With ``reset``, the connection is reset (RST) instead of ended, and there is no answer.
        """
        url = urlsplit(self.url(path))
        lines = [f"PUT {url.path} HTTP/1.1", f"Host: {url.netloc}", f"X-Auth-Token: {self.token}",
                 f"Content-Length: {declared}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in meta_headers("Object", metadata).items()]
        with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
            if reset:
                time.sleep(0.5)  # the server is reading the body
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return None  # closed with a zero linger time: a reset, not an orderly end
            sock.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        return int(answer.split(b" ", 2)[1])


def recording_container_name(user_uuid: str, serial: str, trigger_on: dt.datetime) -> str:
    """``<UserID>_<BWCSerialNumber>_<TriggerOnTime>``, the time as YYYYMMDDTHHMMSSZ."""
    return f"{user_uuid}_{serial}_{compact(trigger_on)}"


def clip_name(start: dt.datetime, recording_id: str, container_type: str = "mp4") -> str:
    """``<StartTime>_<RecordingID>.<ContainerType>``."""
    return f"{compact(start)}_{recording_id}.{container_type}"


def gnss_track(points: list[tuple[float, float, dt.datetime]], start: dt.datetime) -> bytes:
    """The location object: ``LocationWKT`` is ``POINT(longitude latitude)``."""
    return json.dumps({"CoordinateEntries": [
        {"LocationWKT": f"POINT({lon} {lat})", "SecondsFromStart": (when - start).total_seconds(),
         "Timestamp": iso(when)} for lat, lon, when in points
    ]}).encode()
