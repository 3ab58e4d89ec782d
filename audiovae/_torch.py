"""Import torch and torchaudio as a matching pair, or fail with a message that says how to fix it."""
from .errors import AudioVAEError

try:
    import torch
    import torchaudio
except (ImportError, OSError) as exc:  # OSError: torchaudio's C++ extension failed to load
    raise AudioVAEError(
        "audiovae needs torch and torchaudio of the same release, and the torchaudio Linux wheels load "
        "only against a CUDA build of torch (a CPU-only torch build makes `import torchaudio` fail). "
        "Install the pair with: pip install torch==2.11.0 torchaudio==2.11.0\n"
        f"The import failed with: {exc!r}"
    ) from exc

if torch.__version__.split("+")[0].rsplit(".", 1)[0] != torchaudio.__version__.split("+")[0].rsplit(".", 1)[0]:
    raise AudioVAEError(
        f"torch {torch.__version__} and torchaudio {torchaudio.__version__} are not a matching pair; "
        "install the same release of both, e.g. pip install torch==2.11.0 torchaudio==2.11.0"
    )

__all__ = ["torch", "torchaudio"]
