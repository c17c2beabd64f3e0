"""trainboard's KFP components: each folder holds a plain Python core (core.py, testable without KFP)
and a thin @dsl.component shim (component.py) that imports the core from the installed package."""

import os

# The component image (see Dockerfile). Compile with TRAINBOARD_IMAGE=REGISTRY/IMAGE@sha256:... to pin
# a digest; kfp.local's SubprocessRunner ignores it and runs the installed package directly.
IMAGE = os.environ.get("TRAINBOARD_IMAGE", "ghcr.io/trainboard/trainboard:0.1.0")
