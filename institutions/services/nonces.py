from datetime import datetime

from django.db import IntegrityError, transaction

from institutions.models import Environment, UsedNonce


def nonce_consume(
    *, environment: Environment, purpose: str, nonce: str, expires_at: datetime
) -> bool:
    """Spend a single-use nonce; False when it was already spent (a replay)."""
    try:
        with transaction.atomic():
            UsedNonce.objects.create(
                environment=environment, purpose=purpose, nonce=nonce, expires_at=expires_at
            )
    except IntegrityError:
        return False
    return True
