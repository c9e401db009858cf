"""A real SMTP server in the test process (aiosmtpd) and what it received."""
import asyncio
import email
import socket
import threading
from email import policy

import pytest
from aiosmtpd.controller import Controller


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """The aiosmtpd handler: every message it accepted, parsed. `hold_after(n)` makes the server
    take the n+1th message's data and then hang before answering, until `release()`."""

    def __init__(self):
        self.messages = []
        self.received = threading.Condition()
        self._hold_after = None
        self._released = threading.Event()

    refuse = False  # answer every message with a permanent error

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            return "554 5.7.1 Message refused"
        with self.received:
            self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
            self.received.notify_all()
            hold = self._hold_after is not None and len(self.messages) > self._hold_after
        if hold:  # without blocking the server's loop: other connections go on being served
            await asyncio.get_running_loop().run_in_executor(None, self._released.wait, 60)
        return "250 OK"

    def hold_after(self, count):
        self._hold_after = count

    def release(self):
        self._released.set()

    def wait_for(self, count, timeout=30):
        with self.received:
            assert self.received.wait_for(lambda: len(self.messages) >= count, timeout), (
                f"{len(self.messages)} e-mails arrived, waited for {count}")

    def notification_ids(self):
        ids = []
        for message in self.messages:
            ids += [int(i) for i in message["X-RentPe-Notification"].split(",")]
        return ids

    def to(self, address):
        return [m for m in self.messages if m["To"] == address]


class SmtpServer:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.inbox = Inbox()
        self.controller = None

    def start(self):
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.inbox.release()
            self.controller.stop()
            self.controller = None

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"


def text_of(message):
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message):
    return message.get_body(preferencelist=("html",)).get_content()


@pytest.fixture
def smtp():
    """A real SMTP server (aiosmtpd) for the test; what it accepted is on `.messages`."""
    server = SmtpServer().start()
    yield server
    server.stop()
