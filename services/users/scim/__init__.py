"""SCIM 2.0 (RFC 7643/7644) over HTTP: how identity providers provision Steward users and teams."""
