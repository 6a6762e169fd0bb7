"""`benchmark --coco`: the AP column is measured on the very model x runtime that was timed."""

import pytest

from maskbench.benchmark.plan import JobSpec, plan_jobs
from maskbench.benchmark.worker import run_job
from maskbench.data.sources import embedded_nuscenes, find_images
from maskbench.evaluation.embedded import embedded_coco
from maskbench.utils.errors import MaskbenchError


def test_measured_ap_is_recorded_beside_the_zoo_ap(tmp_path):
    annotations, images = embedded_coco()
    frame = find_images(embedded_nuscenes(), ["CAM_FRONT"])[0].path
    (job,) = plan_jobs(["r50"], ["torch"], ["fp32"], JobSpec(images=frame, input_size=(256, 160), warmup=0, repeat=1,
                                                             coco=annotations, coco_max_images=2))
    assert job.coco_images == str(images.resolve())  # found beside the annotation file, COCO's layout
    record = run_job(job, tmp_path)
    assert record.status == "ok", record.error
    assert 0.0 <= record.measured_box_ap <= 100.0 and 0.0 <= record.measured_mask_ap <= 100.0
    assert "2 images scored, 0 failed" in record.measured_on
    assert record.zoo_box_ap == pytest.approx(38.2)  # the published number stays beside it


def test_a_wrong_coco_path_fails_before_any_timing(tmp_path):
    with pytest.raises(MaskbenchError, match="no such COCO annotation file"):
        plan_jobs(["r50"], ["torch"], ["fp32"], JobSpec(coco=tmp_path / "missing.json"))
    (tmp_path / "annotations").mkdir()
    ann = tmp_path / "annotations" / "instances_val.json"
    ann.write_text("{}")
    with pytest.raises(MaskbenchError, match="no such image folder"):
        plan_jobs(["r50"], ["torch"], ["fp32"], JobSpec(coco=ann))
