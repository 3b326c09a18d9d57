"""Example third-party cranewatch detections (installed by `make test`)."""
