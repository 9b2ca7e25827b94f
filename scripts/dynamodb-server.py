#!/usr/bin/env python3
"""moto's server, answering one request at a time.

`moto_server` serves each connection on its own thread, and moto's DynamoDB model is not safe
for that: a Query iterates over every item of the table while another thread's write changes it,
and under a few hundred concurrent clients moto fails with "dictionary changed size during
iteration" (an HTML 500) or, worse, writes an item and still answers 500. Python runs one
thread at a time anyway, so serialising the requests costs moto almost nothing and makes it
behave as DynamoDB does: every request fully applied and answered, or not applied.

Usage: dynamodb-server.py [-H HOST] [-p PORT]   (the options moto_server takes)
"""

import argparse
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class OneAtATime:
    """A WSGI middleware that runs the application, body included, under one lock."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            result = self.app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=8000)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    # Keep-alive needs the threaded server; the lock keeps moto's model single-threaded.
    run_simple(
        args.host,
        args.port,
        OneAtATime(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
