from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.db import OperationalError, override_bindings
from django.http import JsonResponse

from . import tenancy


def tenant_name(request):
    """
    The tenant a request is for (/t/<name>/...), or None. Read from
    path_info, which URLs are resolved on: request.path also has the prefix
    the project is served under (FORCE_SCRIPT_NAME, or the ASGI root_path
    behind a proxy).
    """
    parts = request.path_info.split("/", 3)
    if len(parts) > 2 and parts[1] == "t":
        return parts[2]
    return None


def body(content):
    yield from content


async def abody(content):
    async for part in content:
        yield part


def in_override(response, bindings):
    """
    Serve a streaming response's body, which the server iterates after the
    middleware has returned, in the tenant's override too.
    """
    if response.streaming:
        wrap = bindings(abody if response.is_async else body)
        response.streaming_content = wrap(response.streaming_content)
    return response


def not_found(name):
    return JsonResponse({"error": f"There's no tenant {name!r}."}, status=404)


class TenantMiddleware:
    """Serve /t/<name>/... from tenant name's database, sync and async."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        name = tenant_name(request)
        if name is None:
            return self.get_response(request)
        alias = tenancy.known(name) or tenancy.connect(name)
        if alias is None:
            return not_found(name)
        bindings = override_bindings(dict.fromkeys(tenancy.TENANT_APPS, alias))
        with bindings:
            response = self.get_response(request)
        return in_override(response, bindings)

    async def __acall__(self, request):
        name = tenant_name(request)
        if name is None:
            return await self.get_response(request)
        alias = tenancy.known(name)
        if alias is None:
            # In the thread the ORM runs in: that's where connections live.
            alias = await sync_to_async(tenancy.connect)(name)
        if alias is None:
            return not_found(name)
        bindings = override_bindings(dict.fromkeys(tenancy.TENANT_APPS, alias))
        with bindings:
            response = await self.get_response(request)
        return in_override(response, bindings)

    def process_exception(self, request, exception):
        """A tenant deleted since this process added its database: 404."""
        name = tenant_name(request)
        if (
            name is not None
            and isinstance(exception, OperationalError)
            and tenancy.known(name)
            and not tenancy.exists(name)
        ):
            tenancy.forget(name)
            return not_found(name)
        return None
