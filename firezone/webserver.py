"""daphne with a deadline on the request head: `python -m firezone.webserver [daphne options]
[--request-head-timeout SECONDS] application`.

daphne bounds the rest of a WebSocket handshake (`--websocket_connect_timeout`: the upgrade must
be accepted by the application within it, or the socket is rejected) but not the HTTP request
head before it: Twisted only drops a connection after 60 s *without* data, so a client that
sends its head a byte at a time (slowloris) holds a connection for as long as it likes. Here a
connection whose first request head is not complete `--request-head-timeout` seconds after it
opened is aborted. Later requests on a keep-alive connection keep Twisted's idle timeout.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

import daphne.server
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel

logger = logging.getLogger(__name__)

REQUEST_HEAD_TIMEOUT = 10.0


class HeadDeadlineChannel(HTTPChannel):
    """An HTTP/1.1 channel (we serve no TLS, so no HTTP/2 to negotiate) that aborts the
    connection when its first request head takes longer than `head_timeout` seconds."""

    head_timeout = REQUEST_HEAD_TIMEOUT
    _head_deadline: Any = None  # a twisted IDelayedCall

    def connectionMade(self) -> None:
        super().connectionMade()
        if self.head_timeout > 0:
            self._head_deadline = self.callLater(self.head_timeout, self._head_too_slow)

    def allHeadersReceived(self) -> None:
        self._cancel_head_deadline()
        super().allHeadersReceived()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancel_head_deadline()
        super().connectionLost(reason)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None and self._head_deadline.active():
            self._head_deadline.cancel()
        self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        transport: Any = self.transport
        if transport is not None:
            logger.info(
                "%s: no complete request head within %gs: closed",
                transport.getPeer(),
                self.head_timeout,
            )
            transport.abortConnection()


class HeadDeadlineHTTPFactory(HTTPFactory):
    protocol = HeadDeadlineChannel


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--request-head-timeout", type=float, default=REQUEST_HEAD_TIMEOUT)
    ours, rest = parser.parse_known_args(argv)
    HeadDeadlineChannel.head_timeout = ours.request_head_timeout
    # daphne's Server builds its HTTP factory from this module-level name in run().
    daphne.server.HTTPFactory = HeadDeadlineHTTPFactory
    CommandLineInterface().run(rest)


if __name__ == "__main__":
    main(sys.argv[1:])
