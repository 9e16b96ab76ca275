from django.db import connection
from django.http import JsonResponse


def healthz(request):
    """Liveness for load balancers: answers after one trivial database query."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return JsonResponse({"ok": True})
