"""CPU seconds per thread of a one-camera sync replay, as ``tools/rig_ceiling.py``'s pairs run it
(docs/rig.md, Open: do the replay's own threads take a core from OpenVINO's pinned ones?).

    .venv/bin/python tools/rig_thread_cpu.py [--rate-factor 0.125] [--seconds 15]

Threads are sampled from ``/proc/self/task`` every 0.2 s during the replay (threads that end
before the replay does are kept at their last sample); Python threads are named, the others
(OpenVINO's) are not. The executor is loaded and compiled before the span; the replay's one
warm-up call is inside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from rig_ceiling import rig_args  # noqa: E402

from maskbench.rig import cli  # noqa: E402
from maskbench.rig.bundle import bundle_executor  # noqa: E402
from maskbench.rig.configs import parse_config  # noqa: E402
from maskbench.rig.replay import ReplayOptions, replay  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu_s() -> dict[int, float]:
    """Thread id -> user + system CPU seconds, for this process's live threads."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="rtmdet-ins-s")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--rate-factor", type=float, default=0.125, help="of the camera's 12 Hz")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()

    rig = rig_args(args.model, args.precision, [])
    streams = cli.open_streams(rig)
    bundle = cli.cached_bundle(rig, streams)
    seen: dict[int, float] = {}
    names: dict[int, str] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for tid, cpu in thread_cpu_s().items():
                seen[tid] = max(cpu, seen.get(tid, 0.0))
            names.update({t.native_id: t.name for t in threading.enumerate() if t.native_id is not None})
            time.sleep(0.2)

    one = streams.with_cameras(1).scaled_rate(args.rate_factor)
    executor = bundle_executor(bundle, parse_config("sync"))  # loaded and compiled before the span
    options = ReplayOptions(args.seconds, deadline_ms=250.0, window_s=max(1.0, args.seconds / 10))
    before = thread_cpu_s()
    sampler = threading.Thread(target=sample, name="thread-cpu-sampler")
    sampler.start()
    start = time.time()
    result = replay(one.frames(), executor, options, cameras=list(one.cameras))
    wall = time.time() - start
    done.set()
    sampler.join()
    p50 = result.overall.latency.p50_ms if result.overall.latency else float("nan")
    print(f"{args.model} {args.precision} sync, {wall:.1f} s: p50 {p50:.1f} ms, stages {result.overall.stages_ms}")
    used = sorted(((cpu - before.get(tid, 0.0), tid) for tid, cpu in seen.items()), reverse=True)
    for seconds, tid in used:
        if seconds > 0:
            print(f"{seconds:7.2f} s  {seconds / wall:6.1%}  thread {tid} {names.get(tid, '')}")


if __name__ == "__main__":
    main()
