"""Real images made with Pillow for upload tests (no fixtures on disk)."""
import io
from pathlib import Path

from PIL import Image


def image_bytes(fmt="JPEG", size=(640, 480), color=(200, 80, 40), mode="RGB", **save_args):
    image = Image.new(mode, size, color)
    out = io.BytesIO()
    image.save(out, fmt, **save_args)
    return out.getvalue()


def upload(data, name="photo.jpg"):
    """A file part for the test client's multipart form data."""
    return (io.BytesIO(data), name)


def jpeg(size=(640, 480), **kwargs):
    return image_bytes("JPEG", size, **kwargs)


def listing_form(**overrides):
    """What a seller types into the listing form; override any field."""
    data = {
        "title": "Rooftop terrace in Bandra",
        "category": "venues",
        "description": "An open terrace with a bar counter and fairy lights.\nSeats 80 guests.",
        "city": "Mumbai",
        "area": "Bandra West",
        "price": "25,000",
        "price_unit": "event",
        "deposit": "5000",
        "capacity": "80",
    }
    data.update(overrides)
    return data


def photo_files(upload_folder):
    """Every stored photo file under UPLOAD_FOLDER, as relative paths."""
    root = Path(upload_folder) / "photos"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def fetch(client, url):
    """GET a file response fully and close it (a file left open is a ResourceWarning)."""
    response = client.get(url)
    response.get_data()
    response.close()
    return response
