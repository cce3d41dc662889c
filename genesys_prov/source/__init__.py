"""Reading Microsoft Graph: the client and who is in scope."""
