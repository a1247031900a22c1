"""Access: who sees which recording (selectors.py), consultations and individual grants (services.py)."""
