"""Writing to the SCIM target: the client and applying a plan."""
