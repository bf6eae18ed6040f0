"""``fltiny dashboard``: a local web page over a run store, live during a run and after it.

``state`` reads the store into JSON (read-only, fresh on every request), ``app`` is the
Starlette app (pages, JSON, control actions), ``serve`` runs it with uvicorn in the foreground
or beside a running aggregator, ``static/`` holds the page's own HTML, CSS and JavaScript (its
charts are SVG drawn by ``dashboard.js``; nothing is fetched from another host). The web stack
is imported only by the commands that serve the page.
"""
