"""Record the shared teacher networks' outputs on a fixed image with each one's reference runtime.

ONNX models run under ONNX Runtime, OpenVINO IRs under OpenVINO itself, both fed by the
preprocessing written out here from the publishers' model cards (not the project's code), so
``test_runtime_model.py`` checks the project's backend against them. Run from the project root::

    .venv/bin/pip install onnxruntime && PYTHONPATH=. .venv/bin/python tests/embedder/record_teacher_reference.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.embedder.teacher_reference import (
    REFERENCE_FILE,
    TEACHERS,
    fixed_person_image,
)

SAVED_DIMS = 16


def intel_input(image: np.ndarray) -> np.ndarray:
    """BGR 0..255, NCHW: the Open Model Zoo re-ID convention; the image is already 256x128."""
    return image.astype(np.float32).transpose(2, 0, 1)[None]


def osnet_input(image: np.ndarray) -> np.ndarray:
    """RGB in 0..1 minus ImageNet's mean over its std, NCHW: torchreid's convention."""
    rgb = image[..., ::-1].astype(np.float32) / 255.0
    rgb = (rgb - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    return rgb.transpose(2, 0, 1)[None].astype(np.float32)


def main() -> None:
    import onnxruntime
    import openvino as ov

    image = fixed_person_image()
    recorded = {}
    for name, relative in TEACHERS.items():
        path = TEACHERS_ROOT / relative
        if path.suffix == ".onnx":
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            output = session.run(None, {session.get_inputs()[0].name: osnet_input(image)})[0]
            runtime = f"onnxruntime {onnxruntime.__version__}"
        else:
            compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
            output = compiled(intel_input(image))[compiled.output(0)]
            runtime = f"openvino {ov.__version__}"
        vector = np.asarray(output, np.float64).reshape(-1)
        unit = vector / np.linalg.norm(vector)
        recorded[name] = {"runtime": runtime, "dim": len(unit), "head": unit[:SAVED_DIMS].round(6).tolist()}
    REFERENCE_FILE.write_text(json.dumps(recorded, indent=2) + "\n")
    print(f"wrote {REFERENCE_FILE}")


TEACHERS_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "teachers"

if __name__ == "__main__":
    main()
