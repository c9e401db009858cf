"""Listing photos: checked by content, re-encoded, stored under UPLOAD_FOLDER with random keys.

An upload is trusted for nothing: its file name and Content-Type are ignored. Pillow must
recognise the bytes as JPEG, PNG or WebP, `verify()` them and decode them completely. We never
keep the original: every photo is re-encoded into the renditions below, which keeps the pixels
only: no EXIF (GPS position, camera serials), no comment, XMP or ICC profile, nothing smuggled after
the image data. EXIF orientation is applied first, so phone photos stand the right way up.

Decoding and re-encoding are CPU work that holds the worker's event loop: while a photo decodes,
no other request or stream of that worker moves. So each step is bounded (the pixel caps below:
about a third of a second for the largest decode) and the work yields to the loop between steps
and between photos (`_yield`), so a request with eight photos delays everyone else by one step at
a time, never by the whole request. (A pool of real threads was measured not to help under
gunicorn's gevent worker: the loop still stalled for the whole decode.) Uploads are rate-limited
per user (ratelimits.PHOTO_UPLOADS_PER_USER).

Files live at `UPLOAD_FOLDER/photos/<key[:2]>/<key>-<size>.jpg`; keys are 128-bit random hex, so
a URL can't be guessed and a file never changes (hence the year-long cache on the photo route).

Besides the two renditions, each photo has a **preview**: exactly PREVIEW_SIZE (1200 x 630, the
shape WhatsApp, Facebook, X and LinkedIn crop link previews to), cut from the middle of the large
rendition, for the `og:image` of a listing whose cover it is. It is made with the renditions; a
photo stored before previews existed gets its preview made from its large file the first time it
is asked for (`ensure_preview`): one decode of the large file, a crop and an encode, about 50 ms,
once.
"""
import io
import os
import re
import secrets
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from PIL import Image, ImageOps

# MPO is how Pillow names the multi-picture JPEGs many phone cameras write.
ALLOWED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP"}
# size name -> longest side in pixels. "thumb" for cards and the gallery strip, "large" for the page.
RENDITIONS = {"thumb": 480, "large": 1280}
# The link-preview image (Open Graph's recommended 1.91:1), in pixels; see the module's docstring.
PREVIEW = "preview"
PREVIEW_SIZE = (1200, 630)
SIZES = (*RENDITIONS, PREVIEW)
# Decoding needs width*height*4 bytes; 60 MP (a 50 MP phone sensor plus margin) is about 240 MB.
# Anything larger is refused before decoding: that is the decompression-bomb guard. A JPEG (every
# camera's format) is decoded at a reduced scale (`draft`), so even 60 MP costs a sixteenth of that.
MAX_PIXELS = 60_000_000
# PNG and WebP decode at full size, always: eight 59 MP PNGs took 852 MB and 17.6 s of one worker.
# 12 MP (4000 x 3000, 48 MB decoded, about 0.3 s) is more than any screenshot, scan or exported
# graphic a listing needs, and bounds both the memory of a request and each step's stall.
MAX_PIXELS_FULL_DECODE = 12_000_000
JPEG_FORMATS = {"JPEG", "MPO"}
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
        limit = MAX_PIXELS if probe.format in JPEG_FORMATS else MAX_PIXELS_FULL_DECODE
        if width * height > limit:
            kind = "" if probe.format in JPEG_FORMATS else f" for a {probe.format.replace('WEBP', 'WebP')}"
            raise PhotoError(f"{_label(name)} has too many pixels (at most {limit // 1_000_000} megapixels{kind}).")
        try:
            probe.verify()
        except Exception as exc:
            raise PhotoError(_damaged(name)) from exc
        return probe.format


def _damaged(name):
    return f"{_label(name)} is damaged or incomplete; try exporting it again."


def _decode(data, name):
    """The pixels, upright, in RGB, with no metadata. (`_open_checked` already refused the bombs.)"""
    try:
        image = Image.open(io.BytesIO(data))
        # JPEG can decode straight at a reduced scale: much faster and far less memory.
        image.draft("RGB", (RENDITIONS["large"] * 2, RENDITIONS["large"] * 2))
        image.load()
        image = _flatten(ImageOps.exif_transpose(image))
    except Exception as exc:  # see _open_checked: a broken file can fail in many ways
        raise PhotoError(_damaged(name)) from exc
    # Pillow writes a JPEG comment found here into every re-encode (and keeps XMP, ICC, DPI at
    # hand): the renditions carry pixels only.
    image.info = {}
    return image


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


def _yield():
    """Let the worker's other requests and streams run. Under gevent's patching this switches to
    the event loop for one round; a zero sleep would not do: gevent runs only greenlets already
    ready then, without polling sockets, so requests waiting on the network would still wait."""
    time.sleep(0.001)


def _renditions(data, name, preview=True):
    image = _decode(data, name)
    _yield()
    large = _resized(image, RENDITIONS["large"])
    del image
    _yield()
    thumb = _resized(large, RENDITIONS["thumb"])
    renditions = {"large": _encode(large), "thumb": _encode(thumb)}
    _yield()
    if preview:
        renditions[PREVIEW] = _encode(_preview_of(large))
        _yield()
    return large.size, renditions


def _preview_of(image):
    """PREVIEW_SIZE exactly: the middle of `image` at that shape, scaled (up, if it is smaller)."""
    return ImageOps.fit(image, PREVIEW_SIZE, Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def prepare_photo(upload, preview=True):
    """Check and re-encode one upload (FileStorage, file object or bytes). Raises PhotoError.
    `preview=False`: the two renditions only (a photo in a chat message has no link preview)."""
    if isinstance(upload, (bytes, bytearray)):
        upload = io.BytesIO(upload)
    name = getattr(upload, "filename", "") or ""
    data = read_upload(upload)
    _open_checked(data, name)
    _yield()
    (width, height), renditions = _renditions(data, name, preview)
    return PreparedPhoto(key=secrets.token_hex(16), width=width, height=height, renditions=renditions)


def is_upload(upload):
    """False for the empty part a browser sends when no file was chosen."""
    return upload is not None and bool(getattr(upload, "filename", None) or isinstance(upload, (bytes, bytearray)))


# Listings' photos live in `photos/`; other features keep theirs apart (chat's in `chat-photos/`),
# so no route ever serves one feature's file under another's access rules.
FOLDER = "photos"


def storage_root(folder=FOLDER):
    return Path(current_app.config["UPLOAD_FOLDER"]) / folder


def path_for(key, size, folder=FOLDER):
    """Where a rendition lives, or None when `key`/`size` are not ours (garbage from a URL)."""
    if size not in SIZES or not KEY_PATTERN.match(key or ""):
        return None
    return storage_root(folder) / key[:2] / f"{key}-{size}.jpg"


def write_files(photo, folder=FOLDER):
    """Store every rendition atomically (write to a temp file, then rename)."""
    for size, data in photo.renditions.items():
        _write(path_for(photo.key, size, folder), data)


def _write(target, data):
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_preview(key):
    """Make the preview of a photo stored before previews existed, from its large rendition.
    False when there is nothing to make it from. Two requests at once both write the same bytes
    atomically, so neither ever serves half a file."""
    target = path_for(key, PREVIEW)
    if target is None:
        return False
    if target.exists():
        return True
    source = path_for(key, "large")
    try:
        with Image.open(source) as large:
            large.load()
            preview = _preview_of(large.convert("RGB"))
    except (OSError, ValueError):
        return False
    _write(target, _encode(preview))
    return True


def delete_files(key, folder=FOLDER):
    for size in SIZES:
        path = path_for(key, size, folder)
        if path is not None:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                current_app.logger.warning("could not delete photo file %s", path)
