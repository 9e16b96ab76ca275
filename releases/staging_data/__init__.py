"""Staging data: reproducible mock members, and an anonymized copy of production."""
