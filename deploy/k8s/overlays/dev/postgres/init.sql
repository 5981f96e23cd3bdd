-- Dev only, run once when the data volume is first initialised: one database per service
-- (each service owns its database), all owned by the dev superuser `steward`.
CREATE DATABASE steward_users;
CREATE DATABASE steward_rules;
CREATE DATABASE steward_sync;
