"""A Salesforce-compatible HTTP stand-in for the Salesforce connectors (ETM, Account Team Members).

It speaks the real REST protocol (OAuth token endpoint, `query` with `nextRecordsUrl` paging, `describe`,
JSON error lists) over an in-memory org of accounts, users, territory models, territories, their
associations and account teams, so the connector under test is a real HTTP client:

    org = Org()
    generate(org, accounts=500, users=80, territories=20, seed=7)
    with Emulator(org) as salesforce:            # ephemeral loopback port
        salesforce.url, salesforce.client_id, salesforce.client_secret
        salesforce.fail_next("429", retry_after=2)
        salesforce.expire_tokens()
        salesforce.count("query")                # requests received, by kind

From a shell: `python -m tools.salesforce_standin --port 8777 --rows 100000 --seed 1`.
See README.md next to this file for the endpoints, the data model and the choices made where Salesforce's
documentation is silent.
"""

from tools.salesforce_standin.org import (
    DEFAULT_ROLES,
    DEFAULT_TEAM_ROLES,
    Org,
    Summary,
    generate,
    generate_account_teams,
    generate_rows,
)
from tools.salesforce_standin.server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_USERNAME,
    Emulator,
    RequestRecord,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_ROLES",
    "DEFAULT_TEAM_ROLES",
    "DEFAULT_USERNAME",
    "Emulator",
    "Org",
    "RequestRecord",
    "Summary",
    "generate",
    "generate_account_teams",
    "generate_rows",
]
