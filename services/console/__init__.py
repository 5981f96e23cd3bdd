"""The web console: server-rendered pages over the users service's gRPC contract.

Why Flask + Jinja2 + htmx, served by waitress:
- Every page is rendered on the server from the gRPC answers, so the permission rules and the
  error texts stay in the services; the console owns no data and has no JavaScript build step.
- Flask is synchronous, like the gRPC stubs the other services already use: no event loop to
  bridge, no ASGI server to add. waitress already serves SCIM in the users service, so the
  console runs on the same, known HTTP server (threads, graceful close).
- Flask-WTF's CSRFProtect puts a token check in front of every POST; Flask's signed cookie
  session (itsdangerous) needs no store, which fits a console that owns no data.
- htmx (static/htmx.min.js, committed, never from a CDN) only enhances links and forms; every
  page works without it.
"""
