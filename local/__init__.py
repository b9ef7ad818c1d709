"""The local world: everything needed to run and test the stack without AWS or Buildkite.

Nothing in the product (`fargate_stack`) imports this package; it only ever talks to the
product over the same wires the cloud would use (HTTP for Buildkite, the AWS APIs via moto).
"""

import sys
from pathlib import Path

# Lambda puts a layer's python/ folder on sys.path; the local world does the same with the
# layer's source folder, so the handlers (and the local world's own reads of the product's
# constants) import fargate_stack exactly as deployed, whichever local module comes first.
_LAYER = str(Path(__file__).resolve().parents[1] / "layers" / "stack_core")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
