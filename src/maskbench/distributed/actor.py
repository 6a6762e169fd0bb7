"""The callable class Ray Data runs on each actor: the bundle loaded once, frames decoded and
predicted here, results leaving as COCO entries with RLE masks (a few KB a frame, where dense
masks would be MBs). Imports no torch (actors run the deployment bundle)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np

from ..data.images import load_image
from ..deploy import load
from ..pipeline.coco_results import ImageRecord
from ..utils.errors import MaskbenchError
from .shipping import unpack_bundle

# Test-only: a folder where each actor writes pid-<pid> when it starts (saying whether torch got
# imported: it must not), and where a file "kill-once"
# makes the first actor that claims it SIGKILL itself on receiving its second batch.
TEST_DIR_ENV = "MASKBENCH_RAY_TEST_DIR"
COLUMNS = ("image_id", "record", "entries", "actor", "seconds", "ended_at")


class FramePredictor:
    """``map_batches`` class: ``bundle`` is ``[ObjectRef]`` of the bundle's files (in a list,
    so Ray hands over the reference and the actor fetches the bytes once)."""

    def __init__(self, bundle: list, threads: int):
        import ray

        self.model = load(unpack_bundle(ray.get(bundle[0])), threads)
        self.actor = f"{os.getpid()}@{socket.gethostname()}"
        self.batches = 0
        self.test_dir = Path(os.environ[TEST_DIR_ENV]) if os.environ.get(TEST_DIR_ENV) else None
        if self.test_dir is not None:
            (self.test_dir / f"pid-{os.getpid()}").write_text(json.dumps({"torch": "torch" in sys.modules}))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.batches += 1
        if self.batches == 2:
            self._test_kill()
        out: dict[str, list] = {name: [] for name in COLUMNS}
        for i in range(len(batch["image_id"])):
            started = time.perf_counter()
            record, entries = self._predict(int(batch["image_id"][i]), str(batch["path"][i]),
                                            str(batch["file_name"][i]), str(batch["camera"][i]) or None,
                                            (int(batch["width"][i]), int(batch["height"][i])))
            out["image_id"].append(record.image_id)
            out["record"].append(json.dumps(record.__dict__))
            out["entries"].append(entries)
            out["actor"].append(self.actor)
            out["seconds"].append(time.perf_counter() - started)
            out["ended_at"].append(time.time())  # wall clock: the driver spans the frames of all actors
        return {name: np.array(values, dtype=np.int64 if name == "image_id"
                               else np.float64 if name in ("seconds", "ended_at")
                               else object) for name, values in out.items()}

    def _predict(self, image_id: int, path: str, file_name: str, camera: str | None,
                 expected: tuple[int, int]) -> tuple[ImageRecord, str]:
        """The frame's record and entries' JSON; a bad image or a failure is the record's error."""
        try:
            image = load_image(Path(path))
        except MaskbenchError as err:
            return ImageRecord(image_id, file_name, 0, 0, camera, error=str(err)), "[]"
        height, width = image.shape[:2]
        if expected != (0, 0) and expected != (width, height):
            error = (f"{path}: image is {width}x{height} but the annotation file says {expected[0]}x{expected[1]}; "
                     "wrong image folder or file")
            return ImageRecord(image_id, file_name, width, height, camera, error=error), "[]"
        try:
            entries = json.dumps(self.model.coco_results(self.model(image), image_id), allow_nan=False)
        except (MaskbenchError, RuntimeError, ValueError) as err:  # e.g. a size the bundle's graph cannot take
            error = f"{path}: model failed on this image ({err}); report it with the image attached"
            return ImageRecord(image_id, file_name, width, height, camera, error=error), "[]"
        return ImageRecord(image_id, file_name, width, height, camera), entries

    def _test_kill(self) -> None:
        if self.test_dir is None:
            return
        try:
            os.rename(self.test_dir / "kill-once", self.test_dir / f"killed-{os.getpid()}")
        except OSError:
            return
        os.kill(os.getpid(), signal.SIGKILL)
