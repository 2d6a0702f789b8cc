"""The learner's own pictures: paths, URLs (a loopback server) and uploads, and what is refused."""

import datetime
import http.server
import io
import threading

import numpy as np
import pytest
from PIL import Image

from vizkit import data, user_images


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def gradient(w: int, h: int) -> Image.Image:
    """An RGB picture whose red grows to the right and green downwards (so rotations show)."""
    x, y = np.meshgrid(np.linspace(0, 255, w), np.linspace(0, 255, h))
    return Image.fromarray(np.stack([x, y, np.zeros_like(x)], -1).astype(np.uint8))


def test_paths_and_bytes_of_common_kinds(tmp_path):
    path = tmp_path / "pic.png"
    gradient(40, 30).save(path)
    assert data.load_image(path).shape == (30, 40, 3)
    assert data.photo(str(path)).shape == (30, 40, 3)  # a notebook's PHOTO may be a path
    grey = data.load_image(encoded(Image.new("L", (20, 10), 77), "PNG"))
    assert grey.shape == (10, 20, 3) and (grey == 77).all()
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    flat = data.load_image(encoded(rgba, "PNG"))
    assert tuple(flat[0, 0]) == (0, 0, 255) and tuple(flat[4, 4]) == (255, 255, 255)  # transparent -> white


def test_exif_rotation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned; the picture must be rotated 90 degrees clockwise
    img = data.load_image(encoded(gradient(64, 32), "JPEG", exif=exif.tobytes(), quality=95))
    assert img.shape == (64, 32, 3)
    assert (
        img[0, -1, 1] < 60 and img[0, 0, 1] > 190
    )  # the top row was the left column: green from high to low


def test_large_pictures_are_downscaled_and_huge_ones_refused_before_decoding():
    img = data.load_image(encoded(gradient(2000, 1500), "JPEG"))
    assert max(img.shape[:2]) == user_images.MAX_SIDE and img.shape[:2] == (768, 1024)
    assert data.load_image(encoded(gradient(300, 200), "PNG"), square=128).shape == (128, 128, 3)
    bomb = encoded(Image.new("1", (8000, 6000)), "PNG")  # 48 megapixels in a few kB
    assert len(bomb) < 100_000
    with pytest.raises(data.BadImage, match="8000 x 6000 pixels, over the limit of 40,000,000"):
        data.load_image(bomb)


@pytest.mark.parametrize(
    "source, message",
    [
        (b"", "the upload is empty"),
        (b"<html>not a picture</html>", "not an image PIL can read"),
        (12, "got a int"),
        ("/no/such/picture.jpg", "no file at /no/such/picture.jpg"),
    ],
)
def test_bad_input_says_what_is_accepted(source, message):
    with pytest.raises(data.BadImage, match=message) as error:
        data.load_image(source)
    assert "a file path, an http(s) URL" in str(error.value) or "upload" in str(error.value)


def test_unknown_photo_names_list_the_names_and_the_other_sources():
    with pytest.raises(KeyError, match="chelsea.*a file path, an http\\(s\\) URL, or 'upload'"):
        data.photo("lena")


@pytest.fixture
def server():
    """Loopback server: /cat.jpg an image, /page.html not one, /big.jpg an image over the byte cap."""
    files = {
        "/cat.jpg": ("image/jpeg", encoded(gradient(50, 40), "JPEG")),
        "/page.html": ("text/html", b"<html></html>"),
        "/big.jpg": ("image/jpeg", encoded(gradient(50, 40), "JPEG") + b"\0" * 5000),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            kind, body = files.get(self.path, ("text/plain", None))
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", kind)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_urls_are_read_with_a_type_check_and_a_byte_cap(server, monkeypatch):
    assert data.photo(server + "/cat.jpg").shape == (40, 50, 3)
    with pytest.raises(data.BadImage, match="serves 'text/html', not an image"):
        data.load_image(server + "/page.html")
    with pytest.raises(data.BadImage, match="could not read .*/missing.jpg"):
        data.load_image(server + "/missing.jpg")
    monkeypatch.setattr(user_images, "MAX_BYTES", 4000)
    with pytest.raises(data.BadImage, match="larger than 4,000 bytes"):
        data.load_image(server + "/big.jpg")


def upload_value(name: str, content: bytes) -> tuple:
    """What ipywidgets 8's FileUpload holds after a learner picks a file."""
    return (
        {
            "name": name,
            "type": "image/png",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.datetime.now(datetime.timezone.utc),
        },
    )


def test_the_upload_widget_makes_the_picture_photo_upload(monkeypatch):
    monkeypatch.setattr(user_images, "UPLOADED", {})
    with pytest.raises(data.BadImage, match="run data.upload\\(\\)"):
        data.photo("upload")
    box = data.upload()
    button, label = box.children
    button.value = upload_value("mine.png", encoded(gradient(33, 22), "PNG"))
    assert label.value.startswith("got mine.png (33 x 22)")
    assert data.photo("upload").shape == (22, 33, 3)
    button.value = upload_value("notes.txt", b"hello")
    assert "notes.txt: " in label.value and "not an image" in label.value
    assert data.photo("upload").shape == (22, 33, 3)  # the last good picture stays
