"""Photos sent with a message: checked and re-encoded by the listings' photo machinery
(listings/photos.py: content sniffing, the decompression-bomb guard, EXIF and GPS dropped,
orientation applied), stored apart from listings' photos (`chat-photos/`), served only through the
message's guard (routes.message_photo).

A chat photo is refused where a listing photo is re-encoded and kept: a file that is also
something else (a polyglot: a script or page inside it, or anything after the image's end) is
refused outright, with its reason, because someone sent it to a person, not to a catalogue.
"""
import io
import re
import struct

from flask import current_app

from ..listings import photos as machinery
from ..listings.photos import PhotoError, human_size, is_upload  # noqa: F401  (re-exported)

FOLDER = "chat-photos"
SIZES = tuple(machinery.RENDITIONS)
MAX_PER_MESSAGE = 4
# Markers of a page or a script inside an image file: what a browser or an interpreter would run.
_SMUGGLED = re.compile(rb"<\s*(script|html|svg|iframe|body|\?php|!doctype)|javascript:", re.IGNORECASE)
# Bytes a camera or an editor may leave after a JPEG's end marker (padding): more is something else.
_TRAILER_SLACK = 32


def prepare(uploads):
    """The uploads (FileStorage list) checked and re-encoded, not stored. Raises PhotoError."""
    uploads = [upload for upload in uploads if is_upload(upload)]
    if len(uploads) > MAX_PER_MESSAGE:
        raise PhotoError(f"At most {MAX_PER_MESSAGE} photos with one message.")
    prepared = []
    for upload in uploads:
        name = getattr(upload, "filename", "") or ""
        data = machinery.read_upload(upload)
        _refuse_polyglot(data, name)
        named = io.BytesIO(data)
        named.filename = name  # for the messages that name the file
        prepared.append(machinery.prepare_photo(named, preview=False))
    return prepared


def _refuse_polyglot(data, name):
    label = f"“{name}”" if name else "That file"
    if _SMUGGLED.search(data) or _trailing_bytes(data) > _TRAILER_SLACK:
        raise PhotoError(f"{label} holds something besides a photo; send the picture alone (export it again).")


def _trailing_bytes(data):
    """How many bytes follow the image's own end (0 when the format is not one we know here)."""
    if data[:3] == b"\xff\xd8\xff":  # JPEG: the last end-of-image marker
        end = data.rfind(b"\xff\xd9")
        return len(data) - end - 2 if end >= 0 else 0
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        end = data.rfind(b"IEND")
        return len(data) - end - 8 if end >= 0 else 0
    if data[:4] == b"RIFF" and len(data) >= 8:  # WebP: the RIFF size says where it ends
        return len(data) - 8 - struct.unpack("<I", data[4:8])[0]
    return 0


def store(prepared):
    for photo in prepared:
        machinery.write_files(photo, FOLDER)


def delete_files(key):
    machinery.delete_files(key, FOLDER)


def path_for(key, size):
    return machinery.path_for(key, size, FOLDER) if size in SIZES else None


def root():
    return machinery.storage_root(FOLDER)


def max_bytes_text():
    return human_size(current_app.config["MAX_PHOTO_BYTES"])


def send_with_photos(conversation, sender, body, client_key, uploads):
    """`services.send_message` with the photos of the message form: checked and stored before the
    transaction (the slow part holds no lock), their files removed again when the send is refused
    or was a retry of one stored before. Raises PhotoError or ChatError; nothing is kept then."""
    from .services import send_message

    prepared = prepare(uploads)
    store(prepared)
    created = False
    try:
        message, created = send_message(conversation, sender, body, client_key, photos=prepared)
    finally:
        if not created:
            for photo in prepared:
                delete_files(photo.key)
    return message, created


def send(key, size, max_age):
    """The rendition as a response for one viewer's browser only (`Cache-Control: private`)."""
    from flask import send_from_directory

    response = send_from_directory(root(), f"{key[:2]}/{key}-{size}.jpg", mimetype="image/jpeg", max_age=max_age)
    response.cache_control.public = False
    response.cache_control.private = True
    return response
