"""Photos in messages, on SQLite and PostgreSQL: sent with the message form (repeated multipart
`photos` on `POST /conversations/<id>/messages`), re-encoded without EXIF, thumbnails in the thread,
served with `Cache-Control: private` to current participants only (404 for anyone else), hostile
files refused in the composer with nothing stored, and moderators seeing them through a report."""
import io
from pathlib import Path

import pytest
from PIL import Image

from rentpe.chat import changes, hiding
from rentpe.chat.models import Conversation, MessagePhoto
from rentpe.extensions import db
from tests.board_helpers import make_board
from tests.chat_helpers import contact, conversation_id_from, messages_in
from tests.helpers import fetch, image_bytes, jpeg, upload
from tests.test_photos import half_of, png_header_only


@pytest.fixture
def app_overrides(tmp_path):
    return {"UPLOAD_FOLDER": str(tmp_path / "uploads")}


def logged_in(make_client, user):
    c = make_client()
    c.login(user)
    return c


def stored_files(app):
    root = Path(app.config["UPLOAD_FOLDER"]) / "chat-photos"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg")) if root.exists() else []


def send(client, cid, *files, body="The stage", key="photo-key-0001", htmx=False):
    return client.post(f"/conversations/{cid}/messages",
                       {"body": body, "client_key": key, "photos": [upload(data, name) for data, name in files]},
                       htmx=htmx)


@pytest.fixture
def private(make_client, buyer, seller, listing, make_user):
    clients = {name: logged_in(make_client, user) for name, user in
               (("buyer", buyer), ("seller", seller), ("stranger", make_user(display_name="Stranger")))}
    clients["cid"] = conversation_id_from(contact(clients["buyer"], listing, "Is the hall free?"))
    return clients


def photo_urls(html, message_id):
    import re

    return re.findall(rf'/messages/{message_id}/photos/(?:thumb|large)/[0-9a-f]{{32}}', html)


def test_photos_are_sent_reencoded_without_exif_and_shown_as_thumbnails(app, private, seller):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° to display
    exif[0x010F] = "SecretCam"
    exif[0x8825] = {2: (19.0, 4.0, 30.0)}  # GPS latitude
    response = send(private["seller"], private["cid"], (jpeg((800, 600), exif=exif.tobytes()), "stage.jpg"),
                    (image_bytes("PNG", (300, 200)), "stain.png"), (image_bytes("WEBP", (640, 480)), "m.webp"))
    assert response.status_code == 303
    message = messages_in(private["cid"])[-1]
    photos = db.session.scalars(db.select(MessagePhoto).where(MessagePhoto.message_id == message.id)
                                .order_by(MessagePhoto.position)).all()
    assert [(p.width, p.height) for p in photos] == [(600, 800), (300, 200), (640, 480)]
    assert len(stored_files(app)) == 6  # thumb + large each, nothing else
    page = private["buyer"].get(f"/conversations/{private['cid']}").get_data(as_text=True)
    item = page[page.index(f'<li id="msg-{message.id}"'):]
    item = item[:item.index("</li>")]
    assert item.count("<img") == 3 and "The stage" in item
    for url in photo_urls(item, message.id):
        response = fetch(private["buyer"], url)
        assert response.status_code == 200 and response.mimetype == "image/jpeg"
        assert "private" in response.headers["Cache-Control"] and "public" not in response.headers["Cache-Control"]
        assert b"SecretCam" not in response.data and b"Exif" not in response.data
        with Image.open(io.BytesIO(response.data)) as image:
            assert image.format == "JPEG" and not image.getexif()


def test_a_message_may_be_photos_alone_and_the_inbox_says_photo(private):
    assert send(private["buyer"], private["cid"], (jpeg(), "a.jpg"), body="").status_code == 303
    assert "📷 Photo" in private["seller"].get("/inbox").get_data(as_text=True)
    assert send(private["buyer"], private["cid"], body="", key="photo-key-0002").status_code == 422


ACCESS = [("buyer", 200), ("seller", 200), ("stranger", 404), ("anonymous", 404)]


@pytest.mark.parametrize("who, status", ACCESS)
def test_photo_urls_are_for_the_participants_only(client, private, who, status):
    send(private["seller"], private["cid"], (jpeg(), "a.jpg"))
    message = messages_in(private["cid"])[-1]
    key = message.photos[0].key
    viewer = client if who == "anonymous" else private[who]
    for size in ("thumb", "large"):
        assert fetch(viewer, f"/messages/{message.id}/photos/{size}/{key}").status_code == status
    # The key under another message of theirs, a size that isn't one, garbage: 404.
    other = private["buyer"].post(f"/conversations/{private['cid']}/messages", {"body": "x", "client_key": "other-0001"})
    assert other.status_code == 303
    wrong = messages_in(private["cid"])[-1]
    for url in (f"/messages/{wrong.id}/photos/thumb/{key}", f"/messages/{message.id}/photos/preview/{key}",
                f"/messages/{message.id}/photos/thumb/../../etc", f"/photos/thumb/{key}"):
        assert fetch(private["seller"], url).status_code == 404


def test_board_photos_a_removed_member_gets_404(app, make_client, buyer, seller, make_seller):
    from rentpe.chat.boards import services as board_services

    bid = make_board(buyer, sellers=[seller, make_seller(display_name="Decor")])
    owner_c, member_c = logged_in(make_client, buyer), logged_in(make_client, seller)
    assert send(owner_c, bid, (jpeg(), "mandap.jpg"), body="This mandap").status_code == 303
    message = messages_in(bid)[-1]
    url = f"/messages/{message.id}/photos/thumb/{message.photos[0].key}"
    assert fetch(member_c, url).status_code == 200
    board_services.remove_member(db.session.get(Conversation, bid), buyer, seller.id)
    assert fetch(member_c, url).status_code == 404
    assert fetch(owner_c, url).status_code == 200


def test_hidden_or_deleted_messages_photos_are_gone(private, buyer, seller, moderator):
    send(private["seller"], private["cid"], (jpeg(), "a.jpg"))
    send(private["seller"], private["cid"], (jpeg(), "b.jpg"), key="photo-key-0003")
    hidden, deleted = messages_in(private["cid"])[-2:]
    hiding.hide_message(hidden, moderator, hiding.BY_MODERATOR)
    changes.delete_message(db.session.get(Conversation, private["cid"]), deleted, seller)
    for message in (hidden, deleted):
        url = f"/messages/{message.id}/photos/thumb/{message.photos[0].key}"
        assert fetch(private["buyer"], url).status_code == 404
        assert fetch(private["seller"], url).status_code == 404
    page = private["buyer"].get(f"/conversations/{private['cid']}").get_data(as_text=True)
    assert not photo_urls(page, hidden.id) and not photo_urls(page, deleted.id)


def polyglot_jpeg_with_script():
    return jpeg() + b"<script>alert(document.cookie)</script>"


def polyglot_jpeg_with_zip():
    return jpeg() + b"PK\x03\x04" + b"\x00" * 200


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'


@pytest.mark.parametrize("data, name, error", [
    (b"I am a text file, honest.\n" * 40, "notes.jpg", "“notes.jpg” is not a JPEG, PNG or WebP photo."),
    (SVG, "logo.svg", "“logo.svg” holds something besides a photo"),
    (b"<?xml version='1.0'?>" + SVG, "logo.jpg", "“logo.jpg” holds something besides a photo"),
    (png_header_only(30000, 30000), "bomb.png", "“bomb.png” has too many pixels."),
    (png_header_only(9000, 9000), "bomb2.png", "“bomb2.png” has too many pixels"),
    (polyglot_jpeg_with_script(), "poly.jpg", "“poly.jpg” holds something besides a photo"),
    (polyglot_jpeg_with_zip(), "poly.jpg", "“poly.jpg” holds something besides a photo"),
    (b"GIF89a" + b"\x00" * 50 + b"/*<html>*/", "gifar.gif", "“gifar.gif” holds something besides a photo"),
    (half_of(jpeg((800, 600))), "cut.jpg", "“cut.jpg” is damaged or incomplete"),
])
@pytest.mark.parametrize("htmx", [False, True])
def test_hostile_files_are_refused_in_the_composer_and_nothing_is_stored(app, private, data, name, error, htmx):
    before = len(messages_in(private["cid"]))
    response = send(private["buyer"], private["cid"], (jpeg(), "good.jpg"), (data, name), htmx=htmx)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert error in html and 'class="field-error composer-error" role="alert"' in html
    assert 'name="body"' in html and "The stage" in html  # the composer, with what was typed
    assert stored_files(app) == [] and len(messages_in(private["cid"])) == before
    assert db.session.scalar(db.select(db.func.count()).select_from(MessagePhoto)) == 0


def test_at_most_four_photos_and_eight_mb_each(app, private):
    response = send(private["buyer"], private["cid"], *[(jpeg(), f"{i}.jpg") for i in range(5)])
    assert response.status_code == 422 and "At most 4 photos" in response.get_data(as_text=True)
    app.config["MAX_PHOTO_BYTES"] = 20_000
    big = jpeg((1600, 1200), quality=95)
    assert len(big) > 20_000
    response = send(private["buyer"], private["cid"], (big, "big.jpg"))
    assert response.status_code == 422 and "is larger than 19 KB" in response.get_data(as_text=True)
    assert stored_files(app) == []


def test_a_retried_send_keeps_one_set_of_photos(app, private):
    assert send(private["buyer"], private["cid"], (jpeg(), "a.jpg"), key="retry-photo-01").status_code == 303
    assert send(private["buyer"], private["cid"], (jpeg(), "a.jpg"), key="retry-photo-01").status_code == 303
    assert len(stored_files(app)) == 2 and db.session.scalar(
        db.select(db.func.count()).select_from(MessagePhoto)) == 1


def test_the_purge_removes_a_deleted_messages_photo_files(app, private, buyer):
    from datetime import timedelta

    from rentpe.models_base import utcnow

    send(private["buyer"], private["cid"], (jpeg(), "a.jpg"))
    message = messages_in(private["cid"])[-1]
    changes.delete_message(db.session.get(Conversation, private["cid"]), message, buyer,
                           now=utcnow() - timedelta(days=31))
    assert len(stored_files(app)) == 2
    assert changes.purge_deleted() == 1
    assert stored_files(app) == [] and not db.session.scalars(db.select(MessagePhoto)).all()


def test_a_moderator_sees_the_photos_and_edit_history_through_a_report(make_client, private, buyer, moderator):
    send(private["buyer"], private["cid"], (jpeg(), "a.jpg"), body="Pay me on the side")
    message = messages_in(private["cid"])[-1]
    assert private["buyer"].post(f"/messages/{message.id}/edit", {"body": "Pay on RentPe"}).status_code == 303
    response = private["seller"].post(f"/report/message/{message.id}", {"reason": "scam", "details": "asks to pay outside"})
    assert response.status_code in (200, 303)
    from rentpe.moderation.models import Report

    report = db.session.scalars(db.select(Report)).one()
    mod = logged_in(make_client, moderator)
    page = mod.get(f"/admin/reports/{report.id}").get_data(as_text=True)
    assert "Pay on RentPe" in page and "Pay me on the side" in page  # the edit history
    key = message.photos[0].key
    assert f"/admin/reports/{report.id}/photos/thumb/{key}" in page
    assert fetch(mod, f"/admin/reports/{report.id}/photos/large/{key}").status_code == 200
    # Only through a report about it; and never for a non-moderator.
    assert fetch(private["seller"], f"/admin/reports/{report.id}/photos/large/{key}").status_code in (403, 404)
    assert fetch(mod, f"/messages/{message.id}/photos/large/{key}").status_code == 404


class TestUploadLimit:
    @pytest.fixture
    def app_overrides(self, tmp_path):
        return {"UPLOAD_FOLDER": str(tmp_path / "uploads"), "RATELIMIT_ENABLED": True}

    def test_messages_with_photos_are_limited_and_text_is_not_counted(self, app, private):
        small = jpeg((64, 48))
        statuses = [send(private["buyer"], private["cid"], (small, "a.jpg"), key=f"limit-photo-{i:03d}").status_code
                    for i in range(11)]
        assert statuses[:10] == [303] * 10 and statuses[10] == 429
        refused = send(private["buyer"], private["cid"], (small, "a.jpg"), key="limit-photo-999")
        assert "Too many messages with photos" in refused.get_data(as_text=True) and refused.headers["Retry-After"]
        assert len(stored_files(app)) == 20
        # Text still goes.
        assert private["buyer"].post(f"/conversations/{private['cid']}/messages",
                                     {"body": "text only", "client_key": "limit-text-0001"}).status_code == 303
