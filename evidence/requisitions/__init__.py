"""Requisitions: footage asked of a partner (another commune, a bus or car-park operator, a social
landlord), uploaded by the partner through a single-purpose tus 1.0 link (issue 22)."""
