"""Connectors: what reads account teams from an outside system (port.py says what one provides).

salesforce/                shared by the Salesforce connectors: client, connection, SOQL filter
salesforce_etm/            Enterprise Territory Management (AccountUserTerritory2View)
salesforce_account_team/   Account Team Members (AccountTeamMember)
registry.py                the connectors a service knows, by kind
"""
