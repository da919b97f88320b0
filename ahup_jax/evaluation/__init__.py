"""Evaluation: flip-test inference, back-projection, MPJPE / PA-MPJPE / 3DPCK / AUC, paper-shaped tables."""
