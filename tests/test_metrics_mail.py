"""Metrics of the missed-message e-mail: sent and failed e-mails are counted, against a real SMTP
server (aiosmtpd) and one that is not there."""
import pytest
from sqlalchemy import select

from rentpe.chat.services import get_or_create_direct_conversation, send_message
from rentpe.extensions import db
from rentpe.notifications import worker
from rentpe.notifications.models import Notification
from tests.mail_helpers import smtp  # noqa: F401 (fixture)

from .test_metrics import Moves


@pytest.fixture(params=["up", "down"])
def mail_server(request):
    return request.param


@pytest.fixture
def app_overrides(request, mail_server):
    url = request.getfixturevalue("smtp").url if mail_server == "up" else "smtp://127.0.0.1:1"
    return {"MAIL_URL": url, "NOTIFY_DELAY_S": 0}


def test_emails_sent_and_failed_are_counted(app, make_user, make_seller, mail_server):
    seller = make_seller()
    for n in range(3):
        buyer = make_user()
        conversation = get_or_create_direct_conversation(buyer.id, seller.id)
        db.session.commit()
        send_message(conversation, buyer, f"Message {n}", f"mail-metrics-{n:04d}")
    assert len(db.session.scalars(select(Notification.id)).all()) == 3
    moves = Moves()
    worker.run_once(limit=10)
    if mail_server == "up":
        assert (moves("rentpe_emails_sent_total"), moves("rentpe_emails_failed_total")) == (3, 0)
    else:
        assert (moves("rentpe_emails_sent_total"), moves("rentpe_emails_failed_total")) == (0, 3)
