"""The routes of the Genesys emulator: its base and token paths, the methods each route
allows, the permission each (method, route) needs, and the routes that need no token."""

from __future__ import annotations

BASE_PATH = "/api/v2/scim/v2"
TOKEN_PATH = "/oauth/token"

#: permission each (method, route) needs (genesys-scim.md "Authentication").
PERMISSIONS = {
    ("POST", "/Users"): "directory:user:add",
    ("PUT", "/Users/{id}"): "directory:user:edit",
    ("PATCH", "/Users/{id}"): "directory:user:edit",
    ("DELETE", "/Users/{id}"): "directory:user:delete",
    ("GET", "/Groups"): "directory:group:edit",
    ("GET", "/Groups/{id}"): "directory:group:edit",
    ("PUT", "/Groups/{id}"): "directory:group:edit",
    ("PATCH", "/Groups/{id}"): "directory:group:edit",
}
PUBLIC_ROUTES = frozenset(
    {"/Schemas", "/Schemas/{id}", "/ResourceTypes", "/ResourceTypes/{name}",
     "/ServiceProviderConfig"}
)
ALLOWED = {
    "/Users": ("GET", "POST"),
    "/Users/{id}": ("GET", "PUT", "PATCH", "DELETE"),
    "/Groups": ("GET",),
    "/Groups/{id}": ("GET", "PUT", "PATCH"),
    "/Schemas": ("GET",),
    "/Schemas/{id}": ("GET",),
    "/ResourceTypes": ("GET",),
    "/ResourceTypes/{name}": ("GET",),
    "/ServiceProviderConfig": ("GET",),
}
