"""Use cases of the users service: each takes a unit of work, checks permissions and domain
rules, changes aggregates and queues notifications, all inside the caller's transaction."""
