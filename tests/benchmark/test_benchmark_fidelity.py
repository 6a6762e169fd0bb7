"""`benchmark --fidelity`: the record carries the runtime's agreement with fp32 eager PyTorch
(FPN features, detections) and, with --coco, the AP it loses to eager; old job keys still hold."""

import hashlib
import json

import pytest

from maskbench.benchmark.plan import JobSpec, plan_jobs
from maskbench.benchmark.worker import run_job
from maskbench.data.sources import embedded_nuscenes, find_images
from maskbench.evaluation.embedded import embedded_coco
from maskbench.results.records import BenchmarkJob, BenchmarkRecord
from maskbench.verify.fidelity import RANDOM_WEIGHTS_NOTE


def test_fidelity_and_ap_drop_are_recorded(tmp_path):
    annotations, _ = embedded_coco()
    frame = find_images(embedded_nuscenes(), ["CAM_FRONT"])[0].path
    # RTMDet-Ins tiny: bf16 is emulated (slowly) where the CPU lacks it; r50 took 124 s on an AVX2 machine
    spec = JobSpec(images=frame, input_size=(160, 96), warmup=0, repeat=1, coco=annotations, coco_max_images=1,
                   fidelity=True)
    (job,) = plan_jobs(["rtmdet-ins-t"], ["torch"], ["bf16"], spec)
    record = run_job(job, tmp_path)
    assert record.status == "ok", record.error
    # bf16 rounding, visible (random RTMDet-Ins weights amplify it: cosine 0.28 on an AVX2 machine)
    assert 0 < record.feature_cosine < 0.9999 and record.feature_rel_error > 1e-3
    assert record.fidelity_reference_count == 100 and 0 <= record.fidelity_matched <= 100
    assert 0 <= record.mean_mask_iou <= 1 and 0 <= record.area_weighted_mask_iou <= 1
    assert record.fidelity_note == RANDOM_WEIGHTS_NOTE  # random weights: read the features
    assert record.ap_drop == pytest.approx(record.reference_mask_ap - record.measured_mask_ap)
    again = BenchmarkRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again.feature_cosine == record.feature_cosine and again.ap_drop == record.ap_drop


def test_job_keys_without_fidelity_are_the_old_ones():
    job = BenchmarkJob(model="mask-rcnn_r50_fpn_1x_coco", runtime="torch")
    old = {k: v for k, v in job.to_dict().items() if k != "fidelity"}  # the dict before the field existed
    assert job.key().endswith("#" + hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:10])
    assert BenchmarkJob.from_dict(old) == job
    assert BenchmarkJob(model=job.model, runtime="torch", fidelity=True).key() != job.key()
