"""Listing photos: checked by content, re-encoded, stored under UPLOAD_FOLDER with random keys.

An upload is trusted for nothing: its file name and Content-Type are ignored. Pillow must
recognise the bytes as JPEG, PNG or WebP, `verify()` them and decode them completely. We never
keep the original: every photo is re-encoded into the renditions below, which drops EXIF (GPS
position, camera serials) and anything smuggled after the image data. EXIF orientation is applied
first, so phone photos stand the right way up.

Files live at `UPLOAD_FOLDER/photos/<key[:2]>/<key>-<size>.jpg`; keys are 128-bit random hex, so
a URL can't be guessed and a file never changes (hence the year-long cache on the photo route).
"""
import io
import os
import re
import secrets
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from PIL import Image, ImageOps

# MPO is how Pillow names the multi-picture JPEGs many phone cameras write.
ALLOWED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP"}
# size name -> longest side in pixels. "thumb" for cards and the gallery strip, "large" for the page.
RENDITIONS = {"thumb": 480, "large": 1280}
# Decoding needs width*height*4 bytes; 60 MP (a 50 MP phone sensor plus margin) is about 240 MB.
# Anything larger is refused before decoding: that is the decompression-bomb guard.
MAX_PIXELS = 60_000_000
JPEG_QUALITY = 82
KEY_PATTERN = re.compile(r"^[0-9a-f]{32}$")


class PhotoError(ValueError):
    """This upload is not a photo we accept; the message is shown under the form field."""


@dataclass
class PreparedPhoto:
    """A checked photo, re-encoded in memory and not yet stored."""

    key: str
    width: int
    height: int
    renditions: dict  # size name -> JPEG bytes


def max_photo_bytes():
    return current_app.config["MAX_PHOTO_BYTES"]


def max_photos_per_listing():
    return current_app.config["MAX_PHOTOS_PER_LISTING"]


def human_size(num_bytes):
    """8388608 -> '8 MB', 20000 -> '19 KB' (rounded down, so the limit is never overstated)."""
    if num_bytes >= 1024 * 1024:
        return f"{num_bytes // (1024 * 1024)} MB"
    return f"{num_bytes // 1024} KB"


def _label(name):
    return f"“{name}”" if name else "That file"


def read_upload(upload):
    """The bytes of a Werkzeug FileStorage (or any binary file object), refusing oversize ones."""
    name = getattr(upload, "filename", "") or ""
    limit = max_photo_bytes()
    stream = getattr(upload, "stream", upload)
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise PhotoError(f"{_label(name)} is larger than {human_size(limit)}.")
    if not data:
        raise PhotoError(f"{_label(name)} is empty.")
    return data


def _open_checked(data, name):
    """Open and verify `data`; returns the image's format. Raises PhotoError for anything else.

    Pillow reports malformed files with many exception types (OSError, SyntaxError, ValueError,
    struct.error…); any of them means "not a photo we can use", hence the broad excepts.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise PhotoError(f"{_label(name)} has too many pixels.") from exc
        except Exception as exc:
            raise PhotoError(f"{_label(name)} is not a JPEG, PNG or WebP photo.") from exc
    with probe:
        if probe.format not in ALLOWED_FORMATS:
            raise PhotoError(f"{_label(name)} is not a JPEG, PNG or WebP photo.")
        width, height = probe.size
        if width * height > MAX_PIXELS:
            raise PhotoError(f"{_label(name)} has too many pixels (at most {MAX_PIXELS // 1_000_000} megapixels).")
        try:
            probe.verify()
        except Exception as exc:
            raise PhotoError(_damaged(name)) from exc
        return probe.format


def _damaged(name):
    return f"{_label(name)} is damaged or incomplete; try exporting it again."


def _decode(data, name):
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            # JPEG can decode straight at a reduced scale: much faster and far less memory.
            image.draft("RGB", (RENDITIONS["large"] * 2, RENDITIONS["large"] * 2))
            image.load()
            image = ImageOps.exif_transpose(image)
            return _flatten(image)
        except Exception as exc:  # see _open_checked: a broken file can fail in many ways
            raise PhotoError(_damaged(name)) from exc


def _flatten(image):
    """RGB on a white background (JPEG has no alpha; transparent PNG logos shouldn't go black)."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def _resized(image, longest):
    copy = image.copy()
    # reducing_gap: a cheap box reduction first, then Lanczos; visually the same, several times faster.
    copy.thumbnail((longest, longest), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return copy


def _encode(image):
    out = io.BytesIO()
    # Progressive JPEG also gets optimised Huffman tables: smaller files without `optimize`'s extra pass.
    image.save(out, "JPEG", quality=JPEG_QUALITY, progressive=True)
    return out.getvalue()


def prepare_photo(upload):
    """Check and re-encode one upload (FileStorage, file object or bytes). Raises PhotoError."""
    if isinstance(upload, (bytes, bytearray)):
        upload = io.BytesIO(upload)
    name = getattr(upload, "filename", "") or ""
    data = read_upload(upload)
    _open_checked(data, name)
    image = _decode(data, name)
    large = _resized(image, RENDITIONS["large"])
    thumb = _resized(large, RENDITIONS["thumb"])
    return PreparedPhoto(
        key=secrets.token_hex(16), width=large.width, height=large.height,
        renditions={"large": _encode(large), "thumb": _encode(thumb)},
    )


def is_upload(upload):
    """False for the empty part a browser sends when no file was chosen."""
    return upload is not None and bool(getattr(upload, "filename", None) or isinstance(upload, (bytes, bytearray)))


def storage_root():
    return Path(current_app.config["UPLOAD_FOLDER"]) / "photos"


def path_for(key, size):
    """Where a rendition lives, or None when `key`/`size` are not ours (garbage from a URL)."""
    if size not in RENDITIONS or not KEY_PATTERN.match(key or ""):
        return None
    return storage_root() / key[:2] / f"{key}-{size}.jpg"


def write_files(photo):
    """Store every rendition atomically (write to a temp file, then rename)."""
    for size, data in photo.renditions.items():
        target = path_for(photo.key, size)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def delete_files(key):
    for size in RENDITIONS:
        path = path_for(key, size)
        if path is not None:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                current_app.logger.warning("could not delete photo file %s", path)
