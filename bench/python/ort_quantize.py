"""onnxruntime's static int8 quantization of an ONNX model, the reference for our int8 engine (bench/infer-int8.ts).

    python ort_quantize.py MODEL.onnx CALIBRATION.f32 N C H W OUT.onnx [int8|uint8]

CALIBRATION.f32: N*C*H*W little-endian float32 images, as the model takes them. onnxruntime.quantization's
quantize_static with its defaults for the CPU (QDQ format, signed 8-bit activations and weights, MinMax
calibration: the largest magnitudes, as ours) and per-channel weights (as ours), after its own pre-processing
(shape inference and graph optimisation); `uint8`: unsigned activations (U8S8, its other x86-64 choice). Prints
one JSON line: what it ran.
"""
import json
import sys
import tempfile

import numpy as np
import onnxruntime
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

model, data, n, c, h, w, out = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7]), sys.argv[7]
activations = sys.argv[8] if len(sys.argv) > 8 else "int8"
images = np.fromfile(data, dtype="<f4").reshape(n, c, h, w)


class Reader(CalibrationDataReader):
    def __init__(self):
        self.batches = iter([{"input": images[i : i + 32]} for i in range(0, n, 32)])

    def get_next(self):
        return next(self.batches, None)


with tempfile.NamedTemporaryFile(suffix=".onnx") as pre:
    quant_pre_process(model, pre.name)
    quantize_static(
        pre.name,
        out,
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8 if activations == "uint8" else QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
print(
    json.dumps(
        {
            "onnxruntime": onnxruntime.__version__,
            "format": "QDQ",
            "activations": activations,
            "weights": "int8 per channel",
            "calibration": "MinMax",
            "images": n,
        }
    )
)
