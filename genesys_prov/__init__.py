"""genesys-prov: provision Microsoft Entra ID users into Genesys Cloud over SCIM 2.0."""

__version__ = "0.1.0"
