"""Does a runtime keep the eager model's answers? The conversion check (:mod:`.conversion_check`,
``maskbench check-conversion``: detections per frame against eager, with per-precision
:mod:`.tolerances`), the FPN feature comparison (:mod:`.features`) and the fidelity summary the
benchmark records (:mod:`.fidelity`). Depends on the runtimes; nothing in the runtimes depends on it."""
