"""The embedded broker: kombu's filesystem transport, with messages that appear whole.

kombu's own ``Channel._put`` creates the message file under its final name in the folder that
workers poll, then writes it. A worker polling in between moves the still empty file away and
dies on ``JSONDecodeError`` (seen once under load with ``make run``). Here the message is written
under a name no queue matches (``.<name>.partial``), closed, then renamed into place: a rename within one folder is
atomic, so a worker sees either no file or the whole message.

``register()`` (called by config/celery.py) makes every ``filesystem://`` URL use it: kombu looks a
URL's scheme up in ``TRANSPORT_ALIASES``, so a Redis URL keeps kombu's own Redis transport (a
``broker_transport`` setting would apply to every URL a connection is opened with).
"""

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # kombu takes a file when the text after its first dot is "<queue>.msg", and the queue-depth
        # metric counts the names ending in ".msg" (config/ops/metrics.py): this one is neither.
        partial = os.path.join(self.data_folder_out, f".{name}.partial")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.rename(partial, final)
        except OSError as exc:
            try:
                os.unlink(partial)
            except OSError:
                pass
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def register() -> None:
    TRANSPORT_ALIASES["filesystem"] = "config.broker:Transport"
