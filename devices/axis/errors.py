"""Answers the specification gives a meaning to ("Error response descriptions"), as exceptions.

Services raise them; the views turn them into the status code with the message as plain text.
"""


class AxisError(Exception):
    status = 500  # "Any other error"
    reason = "Internal Server Error"

    def __init__(self, message: str = ""):
        super().__init__(message or self.reason)


class ContentRefused(AxisError):
    """400: we cannot store this recording, and never will (unknown user or device, no duration).

    The BWS then marks it "Recording not transferred"; with StoreRejectedContent it uploads it
    again to a rejected-content container, which we always accept, so the evidence is not lost.
    """

    status = 400
    reason = "Bad Request"


class NotAuthenticated(AxisError):
    status = 401
    reason = "Unauthorized"


class Forbidden(AxisError):
    status = 403
    reason = "Forbidden"


class NotFound(AxisError):
    status = 404
    reason = "Not Found"


class LengthRequired(AxisError):
    status = 411
    reason = "Length Required"


class TooLarge(AxisError):
    """413: a body larger than this kind of object may carry (metadata objects carry none)."""

    status = 413
    reason = "Request Entity Too Large"


class ChecksumMismatch(AxisError):
    """422, as Swift answers when the bytes received do not match the ETag the client sent."""

    status = 422
    reason = "Unprocessable Entity"


class UploadInterrupted(AxisError):
    """499, Swift's "Client Disconnect": the body ended before Content-Length bytes arrived."""

    status = 499
    reason = "Client Disconnect"


class Busy(AxisError):
    """503: try again soon (too many uploads at once, or this clip is being received already)."""

    status = 503
    reason = "Service Unavailable"


class OutOfSpace(AxisError):
    status = 507
    reason = "Insufficient Storage"
