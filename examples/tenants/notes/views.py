"""The same views serve every tenant: the middleware binds notes to its database."""

from django.http import JsonResponse
from django.views.decorators.http import require_http_methods

from .models import Note


@require_http_methods(["GET", "POST"])
def notes(request, tenant=None):
    """List the latest notes (sync), or add one."""
    if request.method == "POST":
        note = Note.objects.create(
            token=request.POST["token"], text=request.POST.get("text", "")
        )
        return JsonResponse(
            {"token": note.token, "database": note._state.db}, status=201
        )
    tokens = Note.objects.order_by("-id").values_list("token", flat=True)[:20]
    return JsonResponse({"tokens": list(tokens)})


async def count(request, tenant=None):
    """How many notes (async)."""
    return JsonResponse({"count": await Note.objects.acount()})


async def note(request, token, tenant=None):
    """One note (async)."""
    try:
        found = await Note.objects.aget(token=token)
    except Note.DoesNotExist:
        return JsonResponse({"error": "no such note"}, status=404)
    return JsonResponse({"token": found.token, "database": found._state.db})
