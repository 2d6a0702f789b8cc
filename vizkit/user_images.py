"""The learner's own pictures: a path, a URL or the bytes of an upload -> an RGB uint8 array."""

from __future__ import annotations

import io
import sys
import urllib.error
import urllib.request
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# fmt: off
__all__ = [
    "MAX_BYTES", "MAX_PIXELS", "MAX_SIDE", "SOURCES", "TIMEOUT", "UPLOADED", "BadImage", "describe",
    "flatten", "load_image", "receive", "Source", "upload", "uploaded",
]
# fmt: on

MAX_PIXELS = 40_000_000  # larger pictures are refused before decoding (a decompression bomb)
MAX_SIDE = 1024  # larger pictures are downscaled to this longer side
MAX_BYTES = 25_000_000  # a URL's download stops here
TIMEOUT = 15  # seconds to wait for a URL
SOURCES = "a file path, an http(s) URL of an image, or the bytes of an uploaded image file"

Source = str | PathLike | bytes | bytearray | memoryview


class BadImage(ValueError):
    """A source that is not a readable picture; the message says what is accepted."""


def load_image(source: Source, max_side: int | None = MAX_SIDE, square: int | None = None) -> np.ndarray:
    """Read a picture from source (see SOURCES) as an HxWx3 uint8 RGB array.

    EXIF rotation is applied; grayscale is repeated to RGB; transparency is laid over white. The
    longer side is downscaled to max_side (None: keep); square: shorter side to `square`, then the
    central square x square crop. Pictures over MAX_PIXELS are refused. Nothing is written to disk.
    """
    img = _open_image(source)
    if img.width * img.height > MAX_PIXELS:
        raise BadImage(
            f"{describe(source)} is {img.width} x {img.height} pixels, over the limit of "
            f"{MAX_PIXELS:,}; use a smaller picture"
        )
    target = square or max_side
    if target and img.format == "JPEG":
        img.draft("RGB", (target, target))  # decode a JPEG at a reduced size where that is enough
    try:
        img = ImageOps.exif_transpose(img)
        img = flatten(img)
    except OSError as error:  # truncated or corrupt data shows up when the pixels are decoded
        raise BadImage(f"{describe(source)} could not be decoded ({error}); expected {SOURCES}") from error
    if square:
        return np.asarray(ImageOps.fit(img, (square, square), Image.BILINEAR))
    if max_side and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.BILINEAR)
    return np.asarray(img)


def _open_image(source: Source) -> Image.Image:
    """PIL image (not yet decoded) from a path, URL or bytes; BadImage says what is accepted."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise BadImage(f"the upload is empty; expected {SOURCES}")
        stream, what = io.BytesIO(data), "the uploaded bytes"
    elif isinstance(source, str) and source.startswith(("http://", "https://")):
        stream, what = io.BytesIO(_fetch_url(source)), source
    elif isinstance(source, (str, PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise BadImage(f"no file at {path}; expected {SOURCES}")
        stream, what = path, str(path)
    else:
        raise BadImage(f"got a {type(source).__name__}; expected {SOURCES}")
    try:
        return Image.open(stream)
    except (UnidentifiedImageError, OSError) as error:
        raise BadImage(f"{what} is not an image PIL can read; expected {SOURCES}") from error


def _fetch_url(url: str) -> bytes:
    """The bytes at an http(s) URL: at most MAX_BYTES, within TIMEOUT seconds, and an image type."""
    request = urllib.request.Request(url, headers={"User-Agent": "vizkit"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            kind = response.headers.get_content_type()
            if not kind.startswith("image/"):
                raise BadImage(f"{url} serves {kind!r}, not an image; expected {SOURCES}")
            data = response.read(MAX_BYTES + 1)
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise BadImage(f"could not read {url} ({error}); check the address and the connection") from error
    if len(data) > MAX_BYTES:
        raise BadImage(f"{url} is larger than {MAX_BYTES:,} bytes; download a smaller picture")
    return data


def flatten(img: Image.Image) -> Image.Image:
    """RGB version of img: transparency over white, palettes and grayscale expanded."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def describe(source: Source) -> str:
    """A short name for source in messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "the uploaded picture"
    return str(source)


# ----------------------------------------------------------------------------------------------
# Uploads from the notebook page

UPLOADED: dict[str, np.ndarray] = {}  # "upload" -> the last uploaded picture


def uploaded() -> np.ndarray:
    """The picture last given to upload() (HxWx3 uint8)."""
    if "upload" not in UPLOADED:
        raise BadImage(
            "no picture has been uploaded yet: run data.upload(), choose a file, then run this cell again"
        )
    return UPLOADED["upload"].copy()


def receive(name: str, content: bytes) -> str:
    """Decode one uploaded file and keep it as the picture named "upload"; returns what to say."""
    img = load_image(content)
    UPLOADED["upload"] = img
    return f'got {name} ({img.shape[1]} x {img.shape[0]}): set PHOTO = "upload" and run the cells below'


def upload():
    """Offer a file upload: Colab's upload dialog on Colab, an ipywidgets FileUpload elsewhere.

    The picture becomes data.photo("upload"). Returns the widget (None on Colab, where the dialog blocks).
    """
    if "google.colab" in sys.modules:
        from google.colab import files

        for name, content in files.upload().items():
            print(receive(name, content))
        return None
    import ipywidgets as widgets

    button = widgets.FileUpload(accept="image/*", multiple=False, description="Upload a picture")
    said = widgets.Label("")

    def on_upload(change) -> None:
        files = change["new"]
        files = files.values() if isinstance(files, dict) else files  # ipywidgets 7 used a dict
        for f in files:
            try:
                said.value = receive(f["name"], bytes(f["content"]))
            except BadImage as error:
                said.value = f"{f['name']}: {error}"

    button.observe(on_upload, names="value")
    return widgets.VBox([button, said])
