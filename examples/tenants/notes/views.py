"""
The same views serve every tenant: the middleware binds notes to its
database, and tenant_view() refuses to serve a tenant's URL without it.
"""

import io

from django.http import FileResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_http_methods
from tenants_site.tenancy import tenant_view

from .models import Note


@require_http_methods(["GET", "POST"])
@tenant_view
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


@tenant_view
async def count(request, tenant=None):
    """How many notes (async)."""
    return JsonResponse({"count": await Note.objects.acount()})


@tenant_view
async def note(request, token, tenant=None):
    """One note (async)."""
    try:
        found = await Note.objects.aget(token=token)
    except Note.DoesNotExist:
        return JsonResponse({"error": "no such note"}, status=404)
    return JsonResponse({"token": found.token, "database": found._state.db})


def lines():
    """Every note, a line each, read while the body is sent."""
    for note in Note.objects.order_by("id").iterator(chunk_size=50):
        yield f"{note.token} {note._state.db}\n"


@tenant_view
def stream(request, tenant=None):
    """Every note, streamed (sync)."""
    return StreamingHttpResponse(lines(), content_type="text/plain")


@tenant_view
async def astream(request, tenant=None):
    """Every note, streamed (async)."""

    async def alines():
        async for note in Note.objects.order_by("id"):
            yield f"{note.token} {note._state.db}\n"

    return StreamingHttpResponse(alines(), content_type="text/plain")


class NotesFile(io.RawIOBase):
    """A file of every note, read from the database when it's first read."""

    def __init__(self):
        self.data = None

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.data is None:
            self.data = io.BytesIO("".join(lines()).encode())
        return self.data.readinto(buffer)


@tenant_view
def export(request, tenant=None):
    """Every note, as a file download (FileResponse)."""
    return FileResponse(NotesFile(), as_attachment=True, filename="notes.txt")
