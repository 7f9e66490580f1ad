"""Shared start-up for the test fakes: serve on 127.0.0.1, port 0, publish the port atomically,
and stop by itself after `lifetime` seconds so no fake can outlive its test for long."""
import os
import threading
from http.server import ThreadingHTTPServer


def serve(handler, port_file, lifetime):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    threading.Timer(lifetime, server.shutdown).start()
    server.serve_forever()
