"""SPA: skeletal pose adaptation (SPEC §7): descriptor, target sources (poses, tailor files), fit, apply."""
