"""Photo uploads: checked by content, re-encoded without EXIF, limited in size and number."""
import io
import struct
import zlib

import pytest
from PIL import Image

from rentpe.extensions import db
from rentpe.listings import services
from rentpe.listings.models import Listing, ListingPhoto
from tests.helpers import fetch, image_bytes, jpeg, listing_form, photo_files, upload


@pytest.fixture
def app_overrides(tmp_path):
    return {"UPLOAD_FOLDER": str(tmp_path / "uploads")}


@pytest.fixture
def owner(client, seller):
    client.login(seller)
    return client


def stored(app):
    return photo_files(app.config["UPLOAD_FOLDER"])


def add(client, listing, *files):
    return client.post(f"/listings/{listing.id}/photos", {"photos": [upload(data, name) for data, name in files]})


def png_header_only(width, height):
    """A tiny PNG file that claims to be width x height (a decompression bomb's header)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def half_of(data):
    return data[: len(data) // 2]


@pytest.mark.parametrize("fmt, name, mode", [("JPEG", "a.jpg", "RGB"), ("PNG", "b.png", "RGBA"), ("WEBP", "c.webp", "RGB")])
def test_jpeg_png_and_webp_are_stored_as_two_jpeg_renditions_and_a_preview(app, owner, listing, fmt, name, mode):
    response = add(owner, listing, (image_bytes(fmt, (2400, 1800), mode=mode, color=(10, 20, 30, 0) if mode == "RGBA" else (10, 20, 30)), name))
    assert response.status_code == 302 and response.headers["Location"] == f"/listings/{listing.id}/edit#photos"
    photo = db.session.scalars(db.select(ListingPhoto)).one()
    assert (photo.width, photo.height) == (1280, 960)
    assert stored(app) == sorted(f"{photo.key[:2]}/{photo.key}-{size}.jpg" for size in ("large", "preview", "thumb"))
    for size, expected in (("large", (1280, 960)), ("thumb", (480, 360)), ("preview", (1200, 630))):
        body = fetch(owner, f"/photos/{size}/{photo.key}").data
        with Image.open(io.BytesIO(body)) as image:
            assert (image.format, image.size) == ("JPEG", expected)
            if mode == "RGBA":  # transparency lands on white, not black
                assert image.getpixel((5, 5)) == (255, 255, 255)


def test_exif_is_stripped_and_orientation_applied(owner, listing):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    exif[0x010F] = "SecretCam"  # Make
    response = add(owner, listing, (jpeg((800, 600), exif=exif.tobytes()), "phone.jpg"))
    assert response.status_code == 302
    photo = db.session.scalars(db.select(ListingPhoto)).one()
    assert (photo.width, photo.height) == (600, 800)
    body = fetch(owner, f"/photos/large/{photo.key}").data
    assert b"SecretCam" not in body and b"Exif" not in body


def jpeg_markers(data):
    """The marker codes of a JPEG file's header segments, up to the image data (SOS)."""
    assert data[:2] == b"\xff\xd8"
    markers, at = [], 2
    while True:
        marker = data[at + 1]
        markers.append(marker)
        if marker == 0xDA:
            return markers
        at += 2 + struct.unpack(">H", data[at + 2:at + 4])[0]


def test_comments_and_every_other_metadata_are_dropped(owner, listing):
    """A JPEG comment survives a plain Pillow re-encode; XMP, ICC and EXIF ride along when passed on."""
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    icc = Image.new("RGB", (1, 1)).info.get("icc_profile") or b"\0" * 128 + b"acspSECRETICC"
    original = jpeg((900, 600), comment=b"call me on 98200 12345", exif=exif.tobytes(),
                    xmp=b"<x:xmpmeta>SecretXMP</x:xmpmeta>", icc_profile=icc, dpi=(300, 300))
    with Image.open(io.BytesIO(original)) as check:  # the upload really carries all of it
        assert check.info["comment"] == b"call me on 98200 12345" and "xmp" in check.info

    assert add(owner, listing, (original, "hall.jpg")).status_code == 302

    photo = db.session.scalars(db.select(ListingPhoto)).one()
    for size in ("large", "thumb", "preview"):
        body = fetch(owner, f"/photos/{size}/{photo.key}").data
        for secret in (b"98200", b"SecretCam", b"SecretXMP", b"SECRETICC", b"Exif", b"ICC_PROFILE"):
            assert secret not in body, (size, secret)
        markers = jpeg_markers(body)
        assert 0xFE not in markers  # COM
        assert [m for m in markers if 0xE1 <= m <= 0xEF] == []  # APP1..APP15: EXIF, XMP, ICC, …


def test_a_large_jpeg_is_still_welcome(owner, listing):
    """Over the PNG cap, under the camera cap: a JPEG decodes at a reduced scale."""
    assert add(owner, listing, (jpeg((6400, 4800), quality=30), "camera.jpg")).status_code == 302
    photo = db.session.scalars(db.select(ListingPhoto)).one()
    assert (photo.width, photo.height) == (1280, 960)


@pytest.mark.parametrize("data, name, error", [
    (b"I am a text file, honest.\n" * 40, "holiday.jpg", "“holiday.jpg” is not a JPEG, PNG or WebP photo."),
    (image_bytes("GIF", (200, 200), mode="P", color=1), "party.gif", "“party.gif” is not a JPEG, PNG or WebP photo."),
    (image_bytes("BMP", (200, 200)), "hall.jpg", "“hall.jpg” is not a JPEG, PNG or WebP photo."),
    (half_of(jpeg((800, 600))), "cut.jpg", "“cut.jpg” is damaged or incomplete; try exporting it again."),
    (half_of(image_bytes("PNG", (300, 300))), "cut.png", "“cut.png” is damaged or incomplete; try exporting it again."),
    (b"", "empty.jpg", "“empty.jpg” is empty."),
    (png_header_only(9000, 9000), "bomb.png", "“bomb.png” has too many pixels (at most 12 megapixels for a PNG)."),
    (png_header_only(4001, 3000), "scan.png", "“scan.png” has too many pixels (at most 12 megapixels for a PNG)."),
    (png_header_only(30000, 30000), "bigbomb.png", "“bigbomb.png” has too many pixels."),
])
def test_bad_photo_is_a_form_error_and_nothing_is_stored(app, owner, listing, data, name, error):
    response = add(owner, listing, (jpeg(), "good.jpg"), (data, name))
    assert response.status_code == 422
    assert error in response.get_data(as_text=True)
    assert stored(app) == [] and db.session.scalar(db.select(db.func.count()).select_from(ListingPhoto)) == 0


def test_a_bad_photo_in_the_new_listing_form_creates_nothing(app, owner):
    response = owner.post("/listings/new", {**listing_form(), "publish": "Publish",
                                            "photos": [upload(jpeg()), upload(b"%PDF-1.4 not an image", "scan.jpg")]})
    assert response.status_code == 422
    assert "“scan.jpg” is not a JPEG, PNG or WebP photo." in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(Listing)) == 0 and stored(app) == []


def test_a_new_listing_keeps_its_photos_in_order(app, owner):
    owner.post("/listings/new", {**listing_form(), "photos": [upload(jpeg((300, 200)), "1.jpg"), upload(jpeg((200, 300)), "2.jpg")]})
    listing = db.session.scalars(db.select(Listing)).one()
    assert [(p.position, p.width, p.height) for p in listing.photos] == [(0, 300, 200), (1, 200, 300)]
    assert len(stored(app)) == 6


def test_photo_larger_than_the_limit_is_refused(app, owner, listing):
    app.config["MAX_PHOTO_BYTES"] = 20_000
    noisy = Image.effect_noise((600, 600), 80).convert("RGB")
    out = io.BytesIO()
    noisy.save(out, "JPEG", quality=95)
    response = add(owner, listing, (out.getvalue(), "noisy.jpg"))
    assert response.status_code == 422
    assert "“noisy.jpg” is larger than 19 KB." in response.get_data(as_text=True)
    assert stored(app) == []


def test_the_ninth_photo_is_refused(app, owner, listing):
    services.add_photos(listing, [jpeg((64, 48)) for _ in range(8)])
    response = add(owner, listing, (jpeg(), "ninth.jpg"))
    assert response.status_code == 422
    assert "A listing can have at most 8 photos; remove one to add another." in response.get_data(as_text=True)
    assert len(stored(app)) == 24
    assert "That's the most a listing can have." in owner.get(f"/listings/{listing.id}/edit").get_data(as_text=True)


def test_nine_photos_at_once_are_refused(app, owner, listing):
    services.add_photos(listing, [jpeg((64, 48))])
    response = add(owner, listing, *[(jpeg((64, 48)), f"{n}.jpg") for n in range(8)])
    assert response.status_code == 422
    assert "A listing can have at most 8 photos; you can add 7 more." in response.get_data(as_text=True)
    assert len(stored(app)) == 3


def test_uploading_without_choosing_a_file_is_a_form_error(owner, listing):
    response = owner.post(f"/listings/{listing.id}/photos", {"photos": [upload(b"", "")]})
    assert response.status_code == 422 and "Choose at least one photo." in response.get_data(as_text=True)


def test_an_oversized_request_gets_the_413_page(app, owner, listing):
    app.config["MAX_CONTENT_LENGTH"] = 50_000
    response = add(owner, listing, (b"\xff" * 80_000, "huge.jpg"))
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert '<h1 class="error-code"><span class="visually-hidden">Error </span>413</h1>' in page and "That upload is too large." in page
    assert stored(app) == []


def test_remove_photo_deletes_its_files_and_htmx_gets_the_photo_manager(app, owner, listing):
    services.add_photos(listing, [jpeg(), jpeg()])
    (first_id, first_key), (second_id, second_key) = [(p.id, p.key) for p in listing.photos]
    response = owner.post(f"/listings/{listing.id}/photos/{first_id}/delete", htmx=True)
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert fragment.startswith('<section class="card photo-manager" id="photo-manager">')
    assert f"photo-tile-{second_id}" in fragment and f"photo-tile-{first_id}" not in fragment
    assert stored(app) == sorted(f"{second_key[:2]}/{second_key}-{s}.jpg" for s in ("large", "preview", "thumb"))
    assert fetch(owner, f"/photos/large/{first_key}").status_code == 404


def test_make_cover_moves_the_photo_first(owner, listing):
    services.add_photos(listing, [jpeg(), jpeg(), jpeg()])
    third = listing.photos[2]
    owner.post(f"/listings/{listing.id}/photos/{third.id}/cover")
    db.session.refresh(listing)
    assert listing.cover.id == third.id and [p.position for p in listing.photos] == [0, 1, 2]


@pytest.mark.parametrize("url", [
    "/photos/huge/0123456789abcdef0123456789abcdef",
    "/photos/large/0123456789abcdef0123456789abcdef",
    "/photos/large/../../secret_key",
    "/photos/large/..%2F..%2Fsecret_key",
    "/photos/thumb/" + "a" * 5000,
])
def test_unknown_or_malformed_photo_urls_are_404(client, url):
    assert fetch(client, url).status_code == 404


def test_a_photo_row_without_its_file_is_404_not_500(client, listing):
    db.session.add(ListingPhoto(listing=listing, key="f" * 32, width=10, height=10))
    db.session.commit()
    assert fetch(client, f"/photos/large/{'f' * 32}").status_code == 404
