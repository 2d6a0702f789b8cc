"""Image sets that download: the real code run on archives built here, served from a loopback server."""

import dataclasses
import hashlib
import http.server
import io
import tarfile
import threading

import numpy as np
import pytest
from PIL import Image

from vizkit import data, image_sets

WNIDS = sorted(image_sets.IMAGE_SETS["imagenette"].wnids)


def jpeg(seed: int, size: tuple[int, int]) -> bytes:
    """A small generated JPEG (w, h)."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def archive(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A .tgz holding `members` (name -> content) and symbolic `links` (name -> target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def imagenette_like(per_class: int = 3) -> bytes:
    """An archive in imagenette2-160's layout: val/<wnid>/*.JPEG for all ten classes, one train class."""
    files = {}
    for k, wnid in enumerate(WNIDS):
        for j in range(per_class):
            files[f"imagenette2-160/val/{wnid}/{wnid}_{j}.JPEG"] = jpeg(10 * k + j, (160 + 40 * j, 160))
    files[f"imagenette2-160/train/{WNIDS[0]}/{WNIDS[0]}_0.JPEG"] = jpeg(999, (200, 160))
    files["imagenette2-160/noisy_imagenette.csv"] = b"path,noisy_labels_0\n"
    return archive(files)


class Server:
    """A loopback HTTP server of fixed files; truncate=True sends half of each file, then hangs up."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.truncate, self.requests = files, False, 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                body = server.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if server.truncate else body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path, monkeypatch):
    """imagenette pointed at a loopback server holding an imagenette-like archive; an empty cache."""
    body = imagenette_like()
    server = Server({"imagenette2-160.tgz": body})
    info = dataclasses.replace(
        image_sets.IMAGE_SETS["imagenette"],
        url=server.url + "imagenette2-160.tgz",
        md5=hashlib.md5(body).hexdigest(),
    )
    monkeypatch.setitem(image_sets.IMAGE_SETS, "imagenette", info)
    monkeypatch.setenv("VIZKIT_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("VIZKIT_OFFLINE", raising=False)
    yield server
    server.close()


def cache_listing(tmp_path) -> list[str]:
    root = tmp_path / "cache"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_download_checks_extracts_and_reads_in_the_archives_layout(served, tmp_path):
    images, labels = data.image_set("imagenette", size=64)
    assert len(images) == 30 and labels.dtype == np.int64
    assert sorted(set(labels.tolist())) == sorted(image_sets.IMAGE_SETS["imagenette"].wnids.values())
    assert (labels == 0).sum() == 3 and (labels == 701).sum() == 3  # tench, parachute
    first = images[0]
    assert first.shape == (64, 64, 3) and first.dtype == np.uint8
    assert np.stack(list(images[:4])).shape == (4, 64, 64, 3)  # a lazy slice stacks
    assert (tmp_path / "cache" / "imagenette2-160" / "val" / WNIDS[0]).is_dir()
    assert cache_listing(tmp_path) == ["imagenette2-160", "imagenette2-160.tgz"]  # no .part, no temp folder
    # own sizes without size=; the train split; a seeded subset
    assert data.image_set("imagenette")[0][2].shape == (160, 240, 3)
    assert len(data.image_set("imagenette", split="train")[0]) == 1
    sub, sub_labels = data.image_set("imagenette", n=7, seed=3)
    again, again_labels = data.image_set("imagenette", n=7, seed=3)
    assert sub.paths == again.paths and np.array_equal(sub_labels, again_labels) and len(set(sub.paths)) == 7
    # fetched once: later calls read the cache, also with the server gone
    requests = served.requests
    served.close()
    assert len(data.image_set("imagenette")[0]) == 30 and served.requests == requests


def test_offline_without_a_cached_copy_says_what_is_missing_and_where_to_put_it(
    served, tmp_path, monkeypatch
):
    monkeypatch.setenv("VIZKIT_OFFLINE", "1")
    with pytest.raises(data.DataUnavailable) as error:
        data.image_set("imagenette")
    message = str(error.value)
    assert "VIZKIT_OFFLINE=1" in message and str(tmp_path / "cache") in message
    assert "imagenette2-160.tgz" in message and served.url in message
    assert served.requests == 0


def test_an_archive_put_in_the_cache_by_hand_is_used_offline(served, tmp_path, monkeypatch):
    monkeypatch.setenv("VIZKIT_OFFLINE", "1")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "imagenette2-160.tgz").write_bytes(served.files["imagenette2-160.tgz"])
    assert len(data.image_set("imagenette")[0]) == 30 and served.requests == 0


def test_a_checksum_failure_leaves_nothing_in_the_cache(served, tmp_path, monkeypatch):
    info = dataclasses.replace(image_sets.IMAGE_SETS["imagenette"], md5="0" * 32)
    monkeypatch.setitem(image_sets.IMAGE_SETS, "imagenette", info)
    with pytest.raises(data.DataUnavailable, match="corrupt: md5 .*, expected 0000"):
        data.image_set("imagenette")
    assert cache_listing(tmp_path) == []


def test_an_interrupted_download_leaves_nothing_and_the_next_try_succeeds(served, tmp_path):
    served.truncate = True
    with pytest.raises(data.DataUnavailable, match="could not download|corrupt"):
        data.image_set("imagenette")
    assert cache_listing(tmp_path) == []
    served.truncate = False
    assert len(data.image_set("imagenette")[0]) == 30


@pytest.mark.parametrize(
    "members, links",
    [
        ({"imagenette2-160/val/x.JPEG": b"x", "../evil.txt": b"owned"}, None),
        ({"imagenette2-160/val/x.JPEG": b"x", "/tmp/vizkit-evil.txt": b"owned"}, None),
        ({"imagenette2-160/val/x.JPEG": b"x"}, {"imagenette2-160/val/link": "../../../evil.txt"}),
    ],
    ids=["dot-dot", "absolute", "symlink"],
)
def test_extraction_refuses_members_outside_the_cache(served, tmp_path, monkeypatch, members, links):
    body = archive(members, links)
    served.files["imagenette2-160.tgz"] = body
    info = dataclasses.replace(image_sets.IMAGE_SETS["imagenette"], md5=hashlib.md5(body).hexdigest())
    monkeypatch.setitem(image_sets.IMAGE_SETS, "imagenette", info)
    with pytest.raises(data.DataUnavailable, match="refusing the member"):
        data.image_set("imagenette")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "cache" / "imagenette2-160").exists()
    assert [p for p in cache_listing(tmp_path) if p.startswith(".extract")] == []


def test_size_and_first_mib_check_as_fast_ai_publishes_it(tmp_path):
    path = tmp_path / "a.tgz"
    path.write_bytes(bytes(range(256)) * 5000)  # 1.28 MB: more than the first MiB
    head = hashlib.md5(path.read_bytes()[: 2**20]).hexdigest()
    good = dataclasses.replace(image_sets.IMAGE_SETS["imagewoof"], size=1_280_000, head_md5=head)
    assert image_sets.check_archive(path, good) == ""
    assert "size" in image_sets.check_archive(path, dataclasses.replace(good, size=1_280_001))
    assert "first MiB" in image_sets.check_archive(path, dataclasses.replace(good, head_md5="f" * 32))


def test_wordnet_ids_map_to_the_imagenet_indices_of_the_sorted_synset_list(model):
    from timm.data import ImageNetInfo

    synsets = ImageNetInfo().label_names()  # the 1000 WordNet ids in ILSVRC-2012 order
    for name, info in image_sets.IMAGE_SETS.items():
        assert len(info.wnids) == 10, name
        for wnid, index in info.wnids.items():
            assert synsets.index(wnid) == index, (name, wnid)
    assert model.classes[701] == "parachute" and model.classes[207] == "golden retriever"


def test_labelled_images_fall_back_to_composites_offline_and_say_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIZKIT_DATA", str(tmp_path))
    monkeypatch.setenv("VIZKIT_OFFLINE", "1")
    images, labels, what = data.labelled_images("imagenette", n=6, size=64)
    assert what == "composites" and images.shape == (6, 64, 64, 3)
    classes = {data.OBJECTS[k][4] for k in data.OBJECTS} | {data.CUTOUTS[k][1] for k in data.cutout_names()}
    assert set(labels.tolist()) <= classes
    assert "offline composites instead" in capsys.readouterr().out
