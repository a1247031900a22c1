"""Media stage: playback copies and posters (services.py), and serving stored bytes with HTTP
Range (views.py)."""
