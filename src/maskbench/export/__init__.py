"""From the eager model to the files the graph runtimes load: the detector as one traceable
function (:mod:`.graph`), its ONNX export and cache (:mod:`.onnx_export`), int8 post-training
quantization (:mod:`.quantize`) and the frames that calibrate it, and random weights
(:mod:`.calibration`). Depends on ``maskbench.models``, never the reverse; the runtimes
(``maskbench.runtimes``) depend on it."""
